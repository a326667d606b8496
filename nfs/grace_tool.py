"""`mdsemu-grace`: NFS-Ganesha's `ganesha-rados-grace` against an mdsemu cluster.

    mdsemu-grace [--cephconf|-c CONF] [--ns|-n NS] [--oid|-o OID] [--pool|-p POOL]
                 [--userid|-u ID] [dump|add|start|join|lift|remove|enforce|noenforce|member]
                 [nodeid ...]

The semantics are nfs/grace.py's; this is the shell around them: the read-modify-write loop
(read data and omap with the object's version, write asserting it, again on ERANGE), a notify
to the watchers after each write, and the tool's output and exit status (0, or 1 after
`Failure: <-errno>` on stderr), as Ganesha's src/tools/ganesha-rados-grace.c has them.
"""

from __future__ import annotations

import errno
import sys

import trio

from client.rados import IoCtx, Rados, RadosError
from common import config as cfg
from nfs import grace

PROG = "mdsemu-grace"
COMMANDS = ("dump", "add", "start", "join", "lift", "remove", "enforce", "noenforce", "member")
SHORT = {"c": "cephconf", "n": "ns", "o": "oid", "p": "pool", "u": "userid"}


class Usage(Exception):
    pass


def usage() -> str:
    return (f"Usage:\n{PROG} [ --cephconf /path/to/ceph.conf ] [ --ns namespace ] "
            f"[ --oid obj_id ] [ --pool pool_id ] [ --userid cephuser ] "
            f"{'|'.join(COMMANDS)} [ nodeid ... ]\n")


def parse(argv: list[str]) -> tuple[dict, list[str]]:
    """getopt_long("c:n:o:p:u:") with GNU argument permutation: options may follow the
    command; `--` ends them."""
    opts = {"cephconf": None, "ns": "", "oid": grace.DEFAULT_OID,
            "pool": grace.DEFAULT_POOL, "userid": None}
    args: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            args += argv[i + 1:]
            break
        if a.startswith("--"):
            name, eq, val = a[2:].partition("=")
            if name not in SHORT.values():
                raise Usage(f"{PROG}: unrecognized option '{a}'")
            if not eq:
                if i + 1 >= len(argv):
                    raise Usage(f"{PROG}: option '--{name}' requires an argument")
                i += 1
                val = argv[i]
            opts[name] = val
        elif a.startswith("-") and len(a) > 1:
            letter = a[1]
            if letter not in SHORT:
                raise Usage(f"{PROG}: invalid option -- '{letter}'")
            val = a[2:]
            if not val:
                if i + 1 >= len(argv):
                    raise Usage(f"{PROG}: option requires an argument -- '{letter}'")
                i += 1
                val = argv[i]
            opts[SHORT[letter]] = val
        else:
            args.append(a)
        i += 1
    return opts, args


# -- the read-modify-write loop (rados_grace.c's do { ... } while (ret == -ERANGE))
async def read(io: IoCtx, oid: str, data: bool = True) -> tuple[grace.GraceDB, int]:
    """The database and the object's version, in one read; RadosError(ENOENT) if absent."""
    ops = [["read"], ["omap_get", None]] if data else [["omap_get", None]]
    reply = await io.operate(oid, ops)
    try:
        return grace.decode(reply.data if data else None, reply.values), reply.version
    except grace.GraceError as e:
        raise RadosError(e.code, str(e)) from None


async def update(io: IoCtx, oid: str, command, data: bool = True) -> grace.GraceDB:
    """Apply `command(db) -> Change | None` until a write is not overtaken by another one;
    notify the watchers after a write. Returns the database as the command left it."""
    while True:
        db, version = await read(io, oid, data)
        try:
            change = command(db)
        except grace.GraceError as e:
            raise RadosError(e.code, str(e)) from None
        if change is None:
            return db
        try:
            await io.operate(oid, [["assert_version", version], *change.ops()])
        except RadosError as e:
            if e.code == errno.ERANGE:
                continue  # the object changed since we read it: again
            raise
        await io.notify(oid, b"", timeout=grace.NOTIFY_TIMEOUT)
        flags = {**db.flags, **change.set}
        for key in change.rm:
            flags.pop(key, None)
        return grace.GraceDB(change.cur, change.rec, dict(sorted(flags.items())))


async def _command(io: IoCtx, oid: str, cmd: str, nodes: list[str], out) -> int | None:
    """One command after the connection; returns Ganesha's `ret` (0 or -errno), or None
    for a failure already reported (exit status 1, no `Failure:` line)."""
    try:
        if cmd == "dump":
            try:
                db, _ = await read(io, oid)
            except RadosError as e:
                if e.code != errno.ENOTRECOVERABLE:
                    out.write(f"rados_grace_dump: ret={-e.code}")
                raise
            out.write(grace.dump(db))
            return 0
        if not nodes:
            print("Need at least one nodeid.", file=sys.stderr)
            return -errno.EINVAL
        if cmd == "add":
            try:
                await io.operate(oid, grace.create_ops())
            except RadosError as e:
                if e.code != errno.EEXIST:
                    print(f"Can't create grace db: {-e.code}", file=sys.stderr)
                    return None  # exit 1 with no `Failure:` line, as Ganesha's tool
            await update(io, oid, lambda db: grace.add(db, nodes), data=False)
        elif cmd in ("start", "join"):
            await update(io, oid, lambda db: grace.join(db, nodes, cmd == "start"))
        elif cmd in ("lift", "remove"):
            await update(io, oid, lambda db: grace.lift(db, nodes, cmd == "remove"))
        elif cmd in ("enforce", "noenforce"):
            await update(io, oid, lambda db: grace.enforce(db, nodes, cmd == "enforce"))
        elif cmd == "member":
            try:
                grace.member(await io.omap_get(oid, nodes), nodes)
            except grace.GraceError as e:
                return -e.code
        else:
            sys.stderr.write(usage())
            return -errno.EINVAL
    except RadosError as e:
        return -e.code
    return 0


async def run(config: cfg.Config, opts: dict, cmd: str, nodes: list[str], out) -> int:
    entity = f"client.{opts['userid'] or 'admin'}"
    timeout = config.get("mon_client_timeout")
    try:
        async with Rados.connect(config, entity, timeout=timeout) as rados:
            if cmd == "add":
                try:
                    await rados.pool_create(opts["pool"])
                except RadosError as e:
                    if e.code != errno.EEXIST:
                        return _cant_connect("rados_pool_create", e.code)
            try:
                io = rados.ioctx(opts["pool"], opts["ns"])
            except RadosError as e:
                return _cant_connect("rados_ioctx_create", e.code)
            ret = await _command(io, opts["oid"], cmd, nodes, out)
    except RadosError as e:
        return _cant_connect("rados_connect", e.code)
    if ret is None:
        return 1
    if ret:
        print(f"Failure: {ret}", file=sys.stderr)
        return 1
    return 0


def _cant_connect(step: str, code: int) -> int:
    print(f"{step}: {-code}", file=sys.stderr)
    print(f"Can't connect to cluster: {-code}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts, args = parse(argv)
    except Usage as e:
        print(e, file=sys.stderr)
        sys.stderr.write(usage())
        raise SystemExit(1) from None
    cmd, nodes = (args[0], args[1:]) if args else ("dump", [])
    from client.conf import default_conf

    path = opts["cephconf"] or default_conf()
    try:
        config = cfg.Config(f"client.{opts['userid'] or 'admin'}", cfg.load_conf(path))
    except cfg.ConfError:
        raise SystemExit(_cant_connect("rados_conf_read_file", errno.ENOENT)) from None
    try:
        rc = trio.run(run, config, opts, cmd, nodes, sys.stdout)
    except KeyboardInterrupt:
        rc = 1
    sys.stdout.flush()
    raise SystemExit(rc)


if __name__ == "__main__":
    main()
