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
"""

from __future__ import annotations

import argparse
import json
import sys

import trio

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


def main(argv: list[str]) -> int:
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
