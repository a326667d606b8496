"""`mdsemu client load`: N concurrent clients doing metadata operations, with a history.

Client k works in `<prefix>/c<k>` (default `/load/c<k>`; emptied and made at the start) with
its own FSClient, so its own monitor and MDS sessions, and is the only writer there. It keeps a
`verify.Model` of its subtree and picks operations (mkdir, create, rename, setattr, unlink,
rmdir, stat) that are valid most of the time and sometimes on purpose not (an existing name,
rmdir of a non-empty directory, a directory into itself...), so that the history also holds
failed operations with their errno. A request that gets no answer within `op_timeout`
(FSClientError ETIMEDOUT, failovers included) is recorded as `unknown`; the model then treats
the paths it touched as uncertain and the client no longer uses them. A client the MDS evicts
(blocklisted: its requests fail from then on) stops; with `--remount` it mounts again with a
fresh session and goes on, as an operator (or ceph-fuse with `client_reconnect_stale`) would.

The history (JSON lines, written as it goes) starts with
`{"type": "start", "wall": ..., "clients": {"c0": "/load/c0", ...}, "seed": ...}` and has for
every operation
`{"type": "invoke", "time": T, "client": "c0", "n": 7, "op": "mkdir", "args": {...}}` and
`{"type": "complete", ..., "result": "ok"|"error"|"unknown", "errno": 17, "error": "EEXIST"}`
(`value` holds the mode and mtime for a `stat`). `time` is seconds since the start (monotonic
clock). `mdsemu client verify` checks the cluster against it.

A mutation completes `ok` on its unsafe reply (as Ceph's client returns, client/fscore.py); if
it is then lost (never made safe, e.g. its client's session was refused after a failover) a
`{"type": "lost", "client": "c0", "n": 7, "op": ..., "args": ..., "reason": ...}` record
follows, and the client treats what it touched as uncertain. Each client syncs (waits for
every safe reply) before it ends, so the history is complete when `run_load` returns.
"""

from __future__ import annotations

import errno
import json
import posixpath
import random
import stat as st
import sys
import time
from datetime import UTC, datetime

import structlog
import trio

from client.fsclient import (
    EBLOCKLISTED,
    FSClient,
    FSClientError,
    LostRequest,
    MonUnreachable,
)
from client.verify import Model, Summary, tally

__all__ = ["History", "run_load"]

log = structlog.get_logger("client.load")

OPS = ("mkdir", "create", "rename", "setattr", "unlink", "rmdir", "stat")
WEIGHTS = (14, 20, 14, 20, 12, 8, 12)
SHRINK = (4, 6, 14, 16, 30, 20, 10)  # once the subtree holds max_entries
INVALID = 0.08  # the share of operations picked to fail
MAX_DEPTH = 4
REMOUNT_PAUSE = 1.0  # seconds between attempts to mount again after an eviction


class History:
    """Appends records to a JSON-lines file (line-buffered, so a crash loses little) and keeps
    them in memory for the summary."""

    def __init__(self, path: str, clients: dict[str, str], seed: int) -> None:
        self.f = open(path, "w", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed in close)
        self.t0 = trio.current_time()
        self.records: list[dict] = []
        self.f.write(json.dumps({"type": "start", "time": 0.0,
                                 "wall": datetime.now(UTC).isoformat(),
                                 "clients": clients, "seed": seed}) + "\n")

    def add(self, rec: dict) -> dict:
        rec = dict(rec, time=round(trio.current_time() - self.t0, 6))
        self.records.append(rec)
        self.f.write(json.dumps(rec) + "\n")
        return rec

    def close(self) -> None:
        self.f.close()


class _Client:
    def __init__(self, name: str, root: str, history: History, rng: random.Random,
                 max_entries: int) -> None:
        self.name = name
        self.root = root
        self.history = history
        self.rng = rng
        self.max_entries = max_entries
        self.model = Model(root)
        self.n = 0
        self.evicted: str | None = None  # why the MDS evicted this client
        self.keep: set[str] = set()  # never moved or removed (a directory pinned elsewhere)

    # -- picking an operation
    def _fresh(self, kind: str) -> str:
        return f"{kind}{self.n}"

    def pick(self) -> tuple[str, dict]:
        rng = self.rng
        paths = self.model.certain()
        dirs = [p for p in paths if self.model.known[p].kind == "dir"]
        shallow = [d for d in dirs if d.count("/") - self.root.count("/") < MAX_DEPTH]
        files = [p for p in paths if self.model.known[p].kind == "file"]
        others = [p for p in paths if p != self.root and p not in self.keep]
        bad = rng.random() < INVALID
        op = rng.choices(OPS, SHRINK if len(paths) >= self.max_entries else WEIGHTS)[0]
        if op in ("mkdir", "create"):
            parent = rng.choice(shallow or [self.root])
            path = posixpath.join(parent, self._fresh("d" if op == "mkdir" else "f"))
            if bad and others:  # EEXIST, or ENOENT/ENOTDIR for a missing or file parent
                path = rng.choice([rng.choice(others), posixpath.join(path, "x"),
                                   posixpath.join(rng.choice(files or others), "x")])
            mode = rng.choice((0o700, 0o750, 0o755, 0o775)) if op == "mkdir" else \
                rng.choice((0o600, 0o640, 0o644, 0o664))
            return op, {"path": path, "mode": mode}
        if op == "unlink" and files:
            if bad:  # EISDIR or ENOENT
                return op, {"path": rng.choice([rng.choice(dirs),
                                                posixpath.join(self.root, "missing")])}
            return op, {"path": rng.choice(files)}
        if op == "rmdir":
            empty = [d for d in dirs if d != self.root and d not in self.keep and
                     self.model.predict("rmdir", {"path": d}) == 0]
            full = [d for d in dirs if d != self.root and d not in empty and d not in self.keep]
            if bad and (full or files):  # ENOTEMPTY or ENOTDIR
                return op, {"path": rng.choice(full or files)}
            if empty:
                return op, {"path": rng.choice(empty)}
        if op == "rename" and others:
            src = rng.choice(others)
            kind = self.model.known[src].kind
            if bad:
                if kind == "dir":  # EINVAL: into itself
                    return op, {"src": src, "dst": posixpath.join(src, "x")}
                if len(dirs) > 1:  # EISDIR: a file over a directory
                    return op, {"src": src, "dst": rng.choice([d for d in dirs
                                                               if d != self.root])}
            targets = [d for d in shallow if not (kind == "dir" and d.startswith(src + "/"))
                       and d != src]
            replace = [p for p in (files if kind == "file" else dirs) if p != src and
                       p not in self.keep and
                       self.model.predict("rename", {"src": src, "dst": p}) == 0]
            if replace and rng.random() < 0.25:
                return op, {"src": src, "dst": rng.choice(replace)}
            parent = rng.choice(targets or [self.root])
            return op, {"src": src, "dst": posixpath.join(parent, self._fresh("r"))}
        if op == "setattr":
            path = rng.choice(paths)
            if path in files and rng.random() < 0.3:
                return op, {"path": path, "mtime": round(1.7e9 + rng.random() * 1e7, 3)}
            return op, {"path": path, "mode": rng.choice((0o700, 0o711, 0o750, 0o755, 0o770,
                                                          0o775, 0o600, 0o644, 0o664))}
        if op == "stat":
            if bad:
                return op, {"path": posixpath.join(self.root, "missing")}
            return op, {"path": rng.choice(paths)}
        parent = rng.choice(shallow or [self.root])  # nothing fits the pick: create a file
        return "create", {"path": posixpath.join(parent, self._fresh("f")), "mode": 0o644}

    # -- doing it
    async def one(self, fs: FSClient, op: str | None = None, args: dict | None = None) -> dict:
        self.n += 1
        if op is None:
            op, args = self.pick()
        base = {"client": self.name, "n": self.n, "op": op, "args": args}
        self.history.add(dict(base, type="invoke"))
        done = dict(base, type="complete")
        try:
            value = await _do(fs, op, args, lambda lost: self.lost(base, lost))
        except FSClientError as e:
            if e.code == errno.ETIMEDOUT or e.unknown:
                done.update(result="unknown", message=e.message)
            else:
                done.update(result="error", errno=e.code,
                            error=errno.errorcode.get(e.code, str(e.code)))
            if e.code == EBLOCKLISTED:
                self.evicted = e.message
        except trio.Cancelled:
            done.update(result="unknown", message="cancelled")
            self.history.add(done)
            raise
        except Exception as e:  # noqa: BLE001 - a load generator keeps going; it is recorded
            log.warning("operation ended unexpectedly", client=self.name, op=op, reason=repr(e))
            done.update(result="unknown", message=repr(e))
        else:
            done.update(result="ok")
            if value is not None:
                done["value"] = value
        rec = self.history.add(done)
        self.model.record(rec)
        return rec

    def lost(self, base: dict, lost: LostRequest) -> None:
        """An operation acknowledged (unsafe) and then lost: recorded, and uncertain now."""
        self.history.add(dict(base, type="lost", reason=lost.reason))
        self.model.forget(base["op"], base["args"])


async def _do(fs: FSClient, op: str, args: dict, on_lost) -> dict | None:
    if op == "stat":
        inode = await fs.stat(args["path"])
        return {"mode": inode["mode"], "mtime": inode.get("mtime")}
    await fs.request(op, dict(args), on_lost=on_lost)  # the args are the request's own
    return None


async def _remove_tree(fs: FSClient, path: str) -> None:
    for name, inode in await fs.ls(path):
        child = posixpath.join(path, name)
        if st.S_ISDIR(inode["mode"]):
            await _remove_tree(fs, child)
            await fs.rmdir(child)
        else:
            await fs.unlink(child)


async def _setup(fs: FSClient, root: str) -> None:
    """Make root's parents, and root itself empty."""
    parts = [p for p in root.split("/") if p]
    for i in range(1, len(parts)):
        try:
            await fs.mkdir("/" + "/".join(parts[:i]))
        except FSClientError as e:
            if e.code != errno.EEXIST:
                raise
    try:
        await fs.mkdir(root)
    except FSClientError as e:
        if e.code != errno.EEXIST:
            raise
        await _remove_tree(fs, root)


async def run_load(mon_host: str, clients: int, duration: float, history_path: str, *,
                   fs_name: str | None = None, prefix: str = "/load", op_timeout: float = 30.0,
                   pause: float = 0.01, seed: int | None = None, max_entries: int = 120,
                   auth: str = "", connect_timeout: float | None = None,
                   hunt_interval: float = 1.0, pin_ranks: bool = False,
                   remount: bool = False) -> Summary:
    """Run the load for `duration` seconds (then each client finishes the operation it is in)
    and return the summary (violations None: not checked; see verify). `pause` is the think
    time between a client's operations; `pin_ranks` pins client k's subtree to rank
    k % max_mds (ceph.dir.pin) and, with several ranks, its directory `x` (kept: never moved
    or removed) to the next rank, so that renames in and out of it cross ranks. `remount`:
    a client the MDS evicts mounts again (without it, it stops: C6, as a blocklisted client
    stays refused)."""
    seed = random.randrange(2**32) if seed is None else seed
    names = {f"c{k}": posixpath.join(prefix, f"c{k}") for k in range(clients)}
    history = History(history_path, names, seed)
    ready = trio.Semaphore(0)
    go = trio.Event()
    end: list[float] = []

    def mount():
        return FSClient.open(mon_host, fs_name=fs_name, timeout=op_timeout, auth=auth,
                             connect_timeout=connect_timeout, hunt_interval=hunt_interval)

    async def work(c: _Client, fs: FSClient) -> None:
        while trio.current_time() < end[0] and c.evicted is None:
            await c.one(fs)
            await trio.sleep(pause)
        await fs.sync()  # every safe reply (or loss) is in the history

    async def worker(k: int, name: str, root: str) -> None:
        c = _Client(name, root, history, random.Random(f"{seed}:{k}"), max_entries)
        async with mount() as fs:
            await _setup(fs, root)
            if pin_ranks:  # spread the clients' subtrees over the active ranks (export pins)
                max_mds = fs.core.filesystem().max_mds
                await fs.setattr(root, xattrs={"ceph.dir.pin": str(k % max_mds)})
                if max_mds > 1:  # and /x beneath it on the next rank: cross-rank renames
                    x = posixpath.join(root, "x")
                    if (await c.one(fs, "mkdir", {"path": x, "mode": 0o755}))["result"] != "ok":
                        raise FSClientError(errno.EIO, f"mkdir {x} failed")
                    c.keep.add(x)
                    await fs.setattr(x, xattrs={"ceph.dir.pin": str((k + 1) % max_mds)})
            ready.release()
            await go.wait()
            await work(c, fs)
        if c.evicted is not None and not remount:  # C6: refused from now on; it stops
            print(f"mdsemu client: load: {name}: {c.evicted}", file=sys.stderr, flush=True)
        while remount and c.evicted is not None and trio.current_time() < end[0]:
            # C6: this session is refused from now on (blocklisted). Mount again, as an
            # operator would (or ceph-fuse with client_reconnect_stale): a new session with a
            # new global id and address; the model goes on (the lost operations are unknown).
            print(f"mdsemu client: load: {name}: {c.evicted}; mounting again",
                  file=sys.stderr, flush=True)
            c.evicted = None
            try:
                async with mount() as fs:
                    await work(c, fs)
            except (FSClientError, MonUnreachable, OSError) as e:  # no MDS or monitor yet: try again
                c.evicted = getattr(e, "message", None) or str(e)
                await trio.sleep(REMOUNT_PAUSE)

    try:
        async with trio.open_nursery() as nursery:
            for k, (name, root) in enumerate(names.items()):
                nursery.start_soon(worker, k, name, root)
            for _ in names:
                await ready.acquire()
            end.append(trio.current_time() + duration)
            go.set()
    except BaseExceptionGroup as group:  # a client could not start: hand back its error
        first = next((e for e in group.exceptions if isinstance(e, Exception)), None)
        if first is None:
            raise
        raise first from None
    finally:
        history.close()
    return tally(history.records, list(names))


async def cli(config, args) -> int:
    """`mdsemu client load --clients N --duration S --history FILE`."""
    from client.conf import auth_key

    if args.clients < 1 or args.duration < 0:
        print("mdsemu client: load: --clients must be >= 1 and --duration >= 0",
              file=sys.stderr)
        return errno.EINVAL
    started = time.monotonic()
    try:
        summary = await run_load(config.get("mon_host"), args.clients, args.duration,
                                 args.history, fs_name=args.fs, op_timeout=args.timeout,
                                 pause=args.pause, seed=args.seed, auth=auth_key(config),
                                 pin_ranks=args.pin_ranks, remount=args.remount,
                                 connect_timeout=args.connect_timeout,
                                 hunt_interval=config.get("mon_client_hunt_interval"))
    except OSError as e:
        print(f"mdsemu client: load: {e}", file=sys.stderr)
        return errno.EIO
    except FSClientError as e:  # setting up the subtrees failed
        print(f"mdsemu client: load: setup: {e.message}", file=sys.stderr)
        return e.code
    if args.format != "plain":
        doc = dict(summary.to_json(), seconds=round(time.monotonic() - started, 3),
                   history=args.history)
        print(json.dumps(doc, indent=4 if args.format == "json-pretty" else None))
    else:
        print(summary.text())
    return 0
