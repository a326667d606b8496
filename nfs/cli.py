"""`mdsemu nfs-client`: one-shot operations on an NFS head (nfs/daemon.py).

    mdsemu nfs-client --server HOST:PORT [--owner OWNER] OP ARGS

OP: `ls PATH`, `stat PATH`, `mkdir PATH`, `touch PATH`, `rm PATH`,
`open PATH [--claim null|previous]`, `lock PATH [--type read|write] [--offset N]
[--length N] [--reclaim]`, `unlock LOCK_STATEID [--offset N] [--length N]`,
`reclaim-complete`.

Each run is the client OWNER (default `mdsemu-nfs-client`): the same owner gets the same client
id from the same head incarnation, so its opens and locks of an earlier run are still there
while the lease lasts (each run renews it). State-changing ops other than `open --claim
previous` and `lock --reclaim` send RECLAIM_COMPLETE first unless the client did already.
Output: a JSON result per run; an NFSv4 error is `mdsemu nfs-client: OP PATH: NFS4ERR_x
(number)` on stderr and exit status 1.

    mdsemu nfs-client load --servers A,B --clients N --duration S --history FILE
                           [--files K] [--shared-files] [--seed N] [--reads FRACTION]
    mdsemu nfs-client verify --history FILE [--format json]

`load` (nfs/load.py) runs N clients taking conflicting locks through the heads and reclaiming
after a head restarts, writing the history; `verify` (nfs/history.py) checks it: exit status 0
when no rule is broken, 1 with the violations, 2 for a history that cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys

import trio

from nfs import history
from nfs import load as nfs_load
from nfs.client import NFSClient
from nfs.nfs4 import TO_EOF, NFS4Error

PROG = "mdsemu nfs-client"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG)
    p.add_argument("--server", required=True, help="HOST:PORT of the head")
    p.add_argument("--owner", default="mdsemu-nfs-client", help="the client owner string")
    sub = p.add_subparsers(dest="op", required=True)
    for name in ("ls", "stat", "mkdir", "touch", "rm"):
        sub.add_parser(name).add_argument("path")
    o = sub.add_parser("open")
    o.add_argument("path")
    o.add_argument("--claim", choices=("null", "previous"), default="null")
    lk = sub.add_parser("lock")
    lk.add_argument("path")
    lk.add_argument("--type", choices=("read", "write"), default="write")
    lk.add_argument("--offset", type=int, default=0)
    lk.add_argument("--length", type=int, default=TO_EOF)
    lk.add_argument("--reclaim", action="store_true")
    u = sub.add_parser("unlock")
    u.add_argument("lock_stateid", type=int)
    u.add_argument("--offset", type=int, default=0)
    u.add_argument("--length", type=int, default=TO_EOF)
    sub.add_parser("reclaim-complete")
    return p


async def run(a: argparse.Namespace) -> dict:
    async with NFSClient.connect(a.server) as c:
        await c.mount(a.owner)
        reclaiming = (a.op == "open" and a.claim == "previous") or \
            (a.op == "lock" and a.reclaim)

        async def complete() -> None:
            try:
                await c.call("reclaim_complete")
            except NFS4Error as e:
                if e.name != "NFS4ERR_COMPLETE_ALREADY":
                    raise

        if a.op == "reclaim-complete":
            await c.call("reclaim_complete")
            return {}
        if not reclaiming and a.op in ("open", "lock", "touch"):
            await complete()
        if a.op == "ls":
            return {"entries": [e[0] for e in (await c.call("readdir", path=a.path))["entries"]]}
        if a.op == "stat":
            return (await c.call("getattr", path=a.path))["inode"]
        if a.op == "mkdir":
            return await c.call("mkdir", path=a.path)
        if a.op == "rm":
            return await c.call("unlink", path=a.path)
        if a.op == "touch":
            return await c.call("open", path=a.path, create=True)
        if a.op == "open":
            return await c.call("open", path=a.path, claim=a.claim, create=a.claim == "null")
        if a.op == "lock":
            claim = "previous" if a.reclaim else "null"
            sid = (await c.call("open", path=a.path, claim=claim))["stateid"]
            return await c.call("lock", stateid=sid, type=a.type, offset=a.offset,
                                length=a.length, reclaim=a.reclaim)
        return await c.call("locku", lock_stateid=a.lock_stateid, offset=a.offset,
                            length=a.length)


def load_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"{PROG} load")
    p.add_argument("--servers", required=True, help="HOST:PORT,HOST:PORT,... of the heads")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--duration", type=float, default=30.0, help="seconds")
    p.add_argument("--history", required=True, help="the history file to write")
    p.add_argument("--files", type=int, default=2, help="files per head")
    p.add_argument("--shared-files", action="store_true",
                   help="every client uses the same files, whatever its head")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--reads", type=float, default=0.25, help="the fraction of read locks")
    return p


def verify_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"{PROG} verify")
    p.add_argument("--history", required=True)
    p.add_argument("--format", "-f", choices=("plain", "json"), default="plain")
    return p


def load_main(argv: list[str]) -> int:
    a = load_parser().parse_args(argv)
    servers = [s for s in a.servers.split(",") if s]
    if not servers or a.clients < 1 or a.files < 1 or a.duration < 0 or \
            not 0 <= a.reads <= 1:
        print(f"{PROG} load: need at least one server, client and file", file=sys.stderr)
        return 22
    try:
        stats = trio.run(nfs_load.run, servers, a.clients, a.duration, a.history, a.files,
                         a.shared_files, a.seed, a.reads)
    except NFS4Error as e:
        print(f"{PROG} load: {e.name} ({e.status}) {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{PROG} load: {e.strerror or e}", file=sys.stderr)
        return 1
    print(json.dumps(stats))
    return 0


def verify_main(argv: list[str]) -> int:
    a = verify_parser().parse_args(argv)
    try:
        with open(a.history) as f:
            events = [json.loads(line) for line in f if line.strip()]
        v = history.verify(events)
    except OSError as e:
        print(f"{PROG} verify: {a.history}: {e.strerror or e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as e:  # bad JSON or a bad event
        print(f"{PROG} verify: {a.history}: {e}", file=sys.stderr)
        return 2
    if a.format == "json":
        print(json.dumps(v.as_dict(), indent=2))
    else:
        print(history.render(v, a.history))
    return 0 if v.ok else 1


def main(argv: list[str]) -> int:
    if argv and argv[0] == "load":
        return load_main(argv[1:])
    if argv and argv[0] == "verify":
        return verify_main(argv[1:])
    a = parser().parse_args(argv)
    try:
        result = trio.run(run, a)
    except NFS4Error as e:
        what = f"{a.op} {getattr(a, 'path', '')}".strip()
        extra = f" held by {json.dumps(e.denied)}" if e.denied else ""
        print(f"{PROG}: {what}: {e.name} ({e.status}){extra}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{PROG}: cannot reach {a.server}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0
