"""`mdsemu client verify`: check the live namespace against a load history (client/load.py).

The history is JSON lines: a `start` record (the clients and their subtrees), then for every
operation an `invoke` and a `complete` record (`result`: ok, error with `errno`, or unknown).
Each load client is the only writer of its subtree, so its final state follows from its own
operations. Per client, the checker replays them in order on a `Model` of the subtree:

- an acknowledged (ok) operation must be one the model allows (else it took effect out of
  order, or was acknowledged twice) and its effect is applied; an acknowledged `stat` must
  show the type, mode and mtime the model has;
- a failed operation must fail for a reason the model agrees with (its errno), and changes
  nothing;
- an operation with an unknown outcome makes the paths it touches uncertain: they and
  everything below them are left out of the strict checks.

An operation acknowledged on its unsafe reply and later reported `lost` by its client (a
`lost` record: it was never made safe, see client/load.py) counts as lost, not acknowledged:
its outcome is unknown, and the summary lists it. "Acknowledged" thus means answered and not
reported lost: every acknowledged operation must be in the live namespace.

Then it lists the live subtree and compares: every path the model holds exists with its type
and last acknowledged mode (and mtime, for files), and nothing else exists. `longest
unavailability` per client is the longest time without an answer from the MDS: between the
completions of consecutive answered operations (ok or errno), or from the first invoke.
"""

from __future__ import annotations

import errno
import json
import posixpath
import stat as st
from dataclasses import dataclass, field

from client.fsclient import FSClient, FSClientError

__all__ = ["Model", "Summary", "check_history", "read_history", "tally", "verify"]

UNSURE = "?"  # a lookup whose answer depends on an operation with an unknown outcome

# Errors that refuse a request whatever the namespace holds (EBLOCKLISTED: the client was
# evicted, C6), so the model cannot predict them; the operation has no effect.
REFUSALS = frozenset({errno.ESHUTDOWN})


@dataclass
class Entry:
    kind: str  # "dir" or "file"
    mode: int | None  # permission bits; None: unknown (a setattr with an unknown outcome)
    mtime: float | None = None  # set by an acknowledged setattr (checked for files)
    by: str = ""  # the operation that made or last changed it (for messages)


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _ename(code: int) -> str:
    return errno.errorcode.get(code, str(code))


class Model:
    """What one client's subtree must hold, given its operations so far."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.known: dict[str, Entry] = {root: Entry("dir", None, by="load setup")}
        self.maybe: set[str] = set()  # tops of uncertain subtrees
        self.failed_on: dict[str, str] = {}  # path -> a failed op that named it

    # -- lookups
    def uncertain(self, path: str) -> bool:
        return any(_under(path, top) for top in self.maybe)

    def children(self, path: str) -> list[str]:
        return [p for p in self.known if p != path and posixpath.dirname(p) == path]

    def certain(self) -> list[str]:
        return [p for p in self.known if not self.uncertain(p)]

    def resolve(self, path: str) -> str | int:
        """'dir' or 'file', an errno (ENOENT, ENOTDIR) as the MDS would answer, or UNSURE."""
        if not _under(path, self.root):
            return UNSURE  # outside the subtree: not modelled
        rel = path[len(self.root):].strip("/")
        walk = self.root
        for name in [""] + [n for n in rel.split("/") if n]:
            walk = posixpath.join(walk, name) if name else walk
            if self.uncertain(walk):
                return UNSURE
            e = self.known.get(walk)
            if e is None:
                return errno.ENOENT
            if walk != path and e.kind != "dir":
                return errno.ENOTDIR
        return self.known[path].kind

    def _parent(self, path: str) -> str | int:
        """The parent as a directory: 0, an errno, or UNSURE."""
        r = self.resolve(posixpath.dirname(path))
        return errno.ENOTDIR if r == "file" else 0 if r == "dir" else r

    def _lookup(self, path: str) -> str | None:
        """With the parent known to be a directory: 'dir', 'file', None (absent) or UNSURE."""
        if self.uncertain(path):
            return UNSURE
        e = self.known.get(path)
        return e.kind if e else None

    def _emptiness(self, path: str) -> int | None:
        """0 if certainly empty, ENOTEMPTY if certainly not, None if unsure."""
        if any(not self.uncertain(c) for c in self.children(path)):
            return errno.ENOTEMPTY
        if any(top != path and _under(top, path) for top in self.maybe) or self.children(path):
            return None
        return 0

    def predict(self, op: str, args: dict) -> int | None:
        """The errno the MDS must answer (0: success), or None when it depends on an
        operation with an unknown outcome. Mirrors mds/namespace.py's checks and order."""
        path = args.get("path", "")
        if op in ("mkdir", "create"):
            r = self._parent(path)
            if r:
                return None if r == UNSURE else r
            t = self._lookup(path)
            return None if t == UNSURE else errno.EEXIST if t else 0
        if op == "rename":
            return self._predict_rename(args["src"], args["dst"])
        r = self.resolve(path)
        if r == UNSURE:
            return None
        if isinstance(r, int):
            return r
        if op == "unlink":
            return errno.EISDIR if r == "dir" else 0
        if op == "rmdir":
            if r != "dir":
                return errno.ENOTDIR
            return self._emptiness(path)
        return 0  # setattr, stat

    def _predict_rename(self, src: str, dst: str) -> int | None:
        s = self.resolve(src)
        if s == UNSURE:
            return None
        if isinstance(s, int):
            return s
        r = self._parent(dst)
        if r:
            return None if r == UNSURE else r
        if s == "dir" and _under(posixpath.dirname(dst), src):
            return errno.EINVAL
        if dst == src:
            return 0
        t = self._lookup(dst)
        if t == UNSURE:
            return None
        if t == "dir" and s == "file":
            return errno.EISDIR
        if t == "file" and s == "dir":
            return errno.ENOTDIR
        if t == "dir":
            return self._emptiness(dst)
        return 0

    # -- outcomes
    def _drop(self, top: str) -> None:
        for p in [p for p in self.known if _under(p, top)]:
            del self.known[p]
        self.maybe = {m for m in self.maybe if not _under(m, top)}

    def apply(self, op: str, args: dict, by: str = "") -> None:
        """An acknowledged operation: its effect is now part of the subtree."""
        path = args.get("path", "")
        if op in ("mkdir", "create"):
            self._drop(path)
            self.known[path] = Entry("dir" if op == "mkdir" else "file",
                                     int(args.get("mode", 0o755 if op == "mkdir" else 0o644))
                                     & 0o7777, by=by)
        elif op in ("unlink", "rmdir"):
            self._drop(path)
        elif op == "rename":
            src, dst = args["src"], args["dst"]
            if src == dst:
                return
            was_unsure = self.uncertain(src)
            moved = {dst + p[len(src):]: e for p, e in self.known.items() if _under(p, src)}
            maybes = {dst + m[len(src):] for m in self.maybe if _under(m, src)}
            self._drop(src)
            self._drop(dst)
            self.known.update(moved)
            self.maybe |= maybes
            if was_unsure:
                self.maybe.add(dst)
            if dst in self.known:
                self.known[dst].by = by
        elif op == "setattr":
            e = self.known.get(path)
            if e is not None:
                if "mode" in args:
                    e.mode = int(args["mode"]) & 0o7777
                if "mtime" in args:
                    e.mtime = args["mtime"]
                e.by = by

    def forget(self, op: str, args: dict) -> None:
        """An operation with an unknown outcome: what it touches becomes uncertain."""
        if op in ("mkdir", "create", "unlink", "rmdir"):
            self.maybe.add(args["path"])
        elif op == "rename":
            self.maybe |= {args["src"], args["dst"]}
        elif op == "setattr":
            e = self.known.get(args["path"])
            if e is not None:
                if "mode" in args:
                    e.mode = None
                if "mtime" in args:
                    e.mtime = None

    def record(self, rec: dict) -> list[str]:
        """Take one completion record; return the violations it shows."""
        op, args, result = rec["op"], rec.get("args", {}), rec.get("result")
        what = _describe(rec)
        if result == "unknown":
            self.forget(op, args)
            return []
        expected = self.predict(op, args)
        out = []
        if result == "ok":
            if expected:
                out.append(f"{what}: acknowledged, but the model says it must fail with "
                           f"{_ename(expected)}")
            if op == "stat" and expected == 0:
                out += self._check_inode(args["path"], rec.get("value") or {}, what)
            self.apply(op, args, by=what)
        elif result == "error":
            code = int(rec.get("errno", 0))
            if code in REFUSALS:
                pass  # refused before the namespace was looked at: no effect, any state
            elif expected == 0:
                out.append(f"{what}: failed with {_ename(code)}, but the model says it "
                           f"must succeed")
            elif expected is not None and expected != code:
                out.append(f"{what}: failed with {_ename(code)}, the model says "
                           f"{_ename(expected)}")
            for key in ("path", "dst"):
                if key in args:
                    self.failed_on[args[key]] = f"{what} failed with {_ename(code)}"
        else:
            out.append(f"{what}: bad result {result!r} in the history")
        return out

    def _check_inode(self, path: str, inode: dict, what: str) -> list[str]:
        e = self.known.get(path)
        if e is None or "mode" not in inode:
            return []
        out = []
        kind = "dir" if st.S_ISDIR(inode["mode"]) else "file"
        if kind != e.kind:
            out.append(f"{what}: is a {kind}, the model says {e.kind} ({e.by})")
        elif e.mode is not None and st.S_IMODE(inode["mode"]) != e.mode:
            out.append(f"{what}: mode {st.S_IMODE(inode['mode']):04o}, last acknowledged "
                       f"{e.mode:04o} ({e.by})")
        elif e.kind == "file" and e.mtime is not None and inode.get("mtime") != e.mtime:
            out.append(f"{what}: mtime {inode.get('mtime')}, last acknowledged {e.mtime} "
                       f"({e.by})")
        return out

    def compare(self, live: dict[str, dict] | None) -> list[str]:
        """Compare with the live subtree (path -> inode, the root included; None: the root
        does not exist)."""
        if live is None:
            return [f"{self.root}: the client's subtree does not exist"]
        out = []
        for path, e in sorted(self.known.items()):
            if self.uncertain(path):
                continue
            inode = live.get(path)
            if inode is None:
                out.append(f"{path}: missing ({e.by})")
            else:
                out += self._check_inode(path, inode, f"{path}")
        for path in sorted(live):
            if path not in self.known and not self.uncertain(path):
                why = self.failed_on.get(path)
                out.append(f"{path}: exists, but no acknowledged operation made it"
                           + (f" ({why})" if why else ""))
        return out


def _describe(rec: dict) -> str:
    args = rec.get("args", {})
    target = f"{args['src']} -> {args['dst']}" if rec["op"] == "rename" else args.get("path", "")
    extra = "".join(f" {k}={v:o}" if k == "mode" else f" {k}={v}"
                    for k, v in args.items() if k in ("mode", "mtime"))
    return f"{rec.get('client')} #{rec.get('n')} {rec['op']} {target}{extra}"


# -- the summary
@dataclass
class Summary:
    ops: int = 0
    acknowledged: int = 0
    failed: int = 0
    unknown: int = 0
    lost: list[str] = field(default_factory=list)  # acknowledged unsafe, then lost (reported)
    unavailability: dict[str, float] = field(default_factory=dict)  # client -> seconds
    violations: list[str] | None = field(default_factory=list)  # None: not checked (load)

    @property
    def ok(self) -> bool:
        return not self.violations

    def text(self) -> str:
        lines = [f"violation: {v}" for v in self.violations or []]
        lines += [f"lost: {x}" for x in self.lost]
        worst = ", ".join(f"{c} {s:.2f}s" for c, s in self.unavailability.items()) or "-"
        line = (f"ops {self.ops}, acknowledged {self.acknowledged}, failed {self.failed}, "
                f"unknown {self.unknown}, lost {len(self.lost)}; longest unavailability per client: {worst}")
        if self.violations is not None:
            line += f"; violations: {len(self.violations)}"
        return "\n".join(lines + [line])

    def to_json(self) -> dict:
        doc = {"ops": self.ops, "acknowledged": self.acknowledged, "failed": self.failed,
               "unknown": self.unknown, "lost": list(self.lost),
               "longest_unavailability": {c: round(s, 6) for c, s in
                                          self.unavailability.items()}}
        if self.violations is not None:
            doc["violations"] = list(self.violations)
        return doc


def _client_key(name: str):
    return (len(name), name)  # c2 before c10


def tally(records: list[dict], clients: list[str] | None = None) -> Summary:
    """Counts and longest unavailability from history records (no namespace check).
    An invoke without a completion counts as unknown."""
    s = Summary(violations=None)
    last: dict[str, float] = {}  # client -> time of the last answer (or the first invoke)
    worst: dict[str, float] = {c: 0.0 for c in clients or []}
    completed = {(r.get("client"), r.get("n")) for r in records if r.get("type") == "complete"}
    pending = 0
    for rec in records:
        c, t = rec.get("client"), float(rec.get("time", 0.0))
        if rec.get("type") == "lost":
            s.acknowledged -= 1  # it was counted when its unsafe reply came
            s.unknown += 1
            s.lost.append(f"{_describe(rec)}: {rec.get('reason', '')}")
        elif rec.get("type") == "invoke":
            last.setdefault(c, t)
            worst.setdefault(c, 0.0)
            pending += (c, rec.get("n")) not in completed
        elif rec.get("type") == "complete":
            last.setdefault(c, t)
            s.ops += 1
            gap = t - last[c]
            worst[c] = max(worst.get(c, 0.0), gap)
            result = rec.get("result")
            if result == "ok":
                s.acknowledged += 1
            elif result == "error":
                s.failed += 1
            else:
                s.unknown += 1
            if result in ("ok", "error"):
                last[c] = t
    s.ops += pending
    s.unknown += pending
    s.unavailability = {c: worst[c] for c in sorted(worst, key=_client_key)}
    return s


# -- reading the history and the live tree
def read_history(path: str) -> tuple[dict[str, str], list[dict]]:
    """(client -> subtree root, records). Raises ValueError for a malformed file."""
    roots: dict[str, str] = {}
    records: list[dict] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not JSON ({e.msg})") from None
            if not isinstance(rec, dict) or "type" not in rec:
                raise ValueError(f"{path}:{lineno}: not a history record")
            if rec["type"] == "start":
                roots.update(rec.get("clients", {}))
            elif rec["type"] in ("invoke", "complete", "lost"):
                if "client" not in rec or "op" not in rec:
                    raise ValueError(f"{path}:{lineno}: record without client or op")
                records.append(rec)
    return roots, records


def check_history(roots: dict[str, str], records: list[dict],
                  live: dict[str, dict[str, dict] | None]) -> Summary:
    """The whole check, without I/O: `live` maps each client to its subtree listing."""
    summary = tally(records, list(roots))
    violations: list[str] = []
    models: dict[str, Model] = {}
    lost = {(r["client"], r.get("n")) for r in records if r["type"] == "lost"}
    for rec in records:
        c = rec["client"]
        if c not in roots:
            roots[c] = f"/load/{c}"
        model = models.setdefault(c, Model(roots[c]))
        if rec["type"] == "complete":
            if (c, rec.get("n")) in lost:  # answered, then reported lost: outcome unknown
                rec = dict(rec, result="unknown")
            violations += model.record(rec)
    invoked = {(r["client"], r.get("n")): r for r in records if r["type"] == "invoke"}
    for r in records:
        if r["type"] == "complete":
            invoked.pop((r["client"], r.get("n")), None)
    for (c, _), rec in invoked.items():  # never completed: outcome unknown
        models[c].forget(rec["op"], rec.get("args", {}))
    for c in sorted(roots, key=_client_key):
        model = models.setdefault(c, Model(roots[c]))
        violations += model.compare(live.get(c))
    summary.violations = violations
    return summary


async def list_tree(fs: FSClient, root: str) -> dict[str, dict] | None:
    """path -> inode for root and everything below it; None if root does not exist."""
    try:
        tree = {root: await fs.stat(root)}
    except FSClientError as e:
        if e.code == errno.ENOENT:
            return None
        raise
    todo = [root] if st.S_ISDIR(tree[root]["mode"]) else []
    while todo:
        d = todo.pop()
        for name, inode in await fs.ls(d):
            p = posixpath.join(d, name)
            tree[p] = inode
            if st.S_ISDIR(inode["mode"]):
                todo.append(p)
    return tree


async def verify(mon_host: str, history_path: str, *, fs_name: str | None = None,
                 timeout: float = 60.0, auth: str = "", connect_timeout: float | None = None,
                 hunt_interval: float = 1.0) -> Summary:
    """Read the history, list each client's live subtree, check. Raises ValueError for a
    malformed history, FSClientError/MonUnreachable when the cluster cannot be read."""
    roots, records = read_history(history_path)
    for rec in records:
        roots.setdefault(rec["client"], f"/load/{rec['client']}")
    async with FSClient.open(mon_host, fs_name=fs_name, timeout=timeout, auth=auth,
                             connect_timeout=connect_timeout,
                             hunt_interval=hunt_interval) as fs:
        live = {c: await list_tree(fs, root) for c, root in roots.items()}
    return check_history(roots, records, live)


async def cli(config, args) -> int:
    """`mdsemu client verify --history FILE [--json]`: 0 if no violation, 1 otherwise."""
    import sys

    from client.conf import auth_key

    try:
        summary = await verify(config.get("mon_host"), args.history, fs_name=args.fs,
                               timeout=args.timeout, auth=auth_key(config),
                               connect_timeout=args.connect_timeout,
                               hunt_interval=config.get("mon_client_hunt_interval"))
    except (OSError, ValueError) as e:
        print(f"mdsemu client: verify: {e}", file=sys.stderr)
        return errno.EINVAL
    if args.json or args.format != "plain":
        print(json.dumps(summary.to_json(), indent=4 if args.format == "json-pretty" else None))
    else:
        print(summary.text())
    return 0 if summary.ok else 1
