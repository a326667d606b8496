"""`mdsemu`: the `ceph` command's grammar against an mdsemu cluster (DESIGN §3).

`mdsemu [-c CONF] [-f plain|json|json-pretty] <words...>` sends the words to the monitor and
prints the answer: output on stdout, the status line on stderr, exit status = errno. As with
`ceph`, -c and -f may stand anywhere. `vstart`, `vstop`, `demo` and `-w` are handled here.
"""

from __future__ import annotations

import errno
import sys

import trio

from client.admin import AdminClient, MonUnreachable
from client.conf import auth_key, entity_name, load_config, split_global_options
from common import config as cfg
from common import messages as m
from common import render
from common.fsmap import FSMap, MDSInfo
from common.net import (
    Connection,
    ConnectionClosed,
    HandshakeError,
    ProtocolError,
    connect,
    parse_hostport,
)

USAGE = """usage: mdsemu [-c CONF] [-f plain|json|json-pretty] [--connect-timeout S] <command>

commands (Ceph's grammar):
  fs new|ls|get|dump|status|set|fail|rm|rename|lsflags|compat|set-default ...
  fs flag set enable_multiple <bool>                      osd blocklist ls|add|rm ...
  mds fail|stat|freeze|repaired|rmfailed|rm|ok-to-stop|metadata ...
  health [detail]   status | -s   -w (watch the cluster log)   config set|get|rm|dump ...
  log last [N]
  tell mds.<who> status|session ls|session evict ID|session config ID timeout [S]|
                 get subtrees|damage ls|config get|set ...
  daemon mds.<name>|PATH.asok <same as tell>   (the admin socket: also once out of the map)
  client [--fs NAME] mkdir|touch|ls|stat|mv|rm|rmdir|setfattr|load|verify ...
  osd pool create|ls|rm ...   rados [-p POOL] [-N NS] lspools|ls|stat|get|put|rm|
        listomapkeys|listomapvals|setomapval ...   (Ceph's rados tool)
  nfs-client --server HOST:PORT ls|stat|mkdir|touch|rm|open|lock|unlock|reclaim-complete ...
  nfs-client load --servers A,B --clients N --duration S --history FILE   nfs-client verify ...
  nfs cluster ls   nfs cluster info [<cluster_id>]   (the NFS heads, as the mgr nfs module)
  vstart -d DIR ...   vstop -d DIR   demo   thrash -c CONF --faults N|--duration S ...
"""


def _read_import_file(words: list[str]) -> list[str]:
    """`auth import -i FILE`: the monitor gets the file's text (as Ceph's gets its input)."""
    if len(words) != 4 or words[2] != "-i":
        raise SystemExit("mdsemu: usage: auth import -i <file>")
    try:
        with open(words[3]) as f:
            return words[:3] + [f.read()]
    except OSError as e:
        raise SystemExit(f"mdsemu: cannot read {words[3]}: {e.strerror}") from None


def _errname(code: int) -> str:
    return errno.errorcode.get(code, str(code))


async def run_command(config: cfg.Config, words: list[str], fmt: str, timeout: float) -> int:
    async with AdminClient.open(config.get("mon_host"), config.name, auth_key(config),
                                timeout=timeout,
                                hunt_interval=config.get("mon_client_hunt_interval")) as admin:
        reply_timeout = max(config.get("mon_client_timeout"), timeout)
        reply = None
        with trio.move_on_after(reply_timeout):  # connected, but the monitor hangs (stopped)
            reply = await admin.command(words, fmt)
        if reply is None:
            raise MonUnreachable(f"no reply from the monitor within {reply_timeout:g}s")
        rc, outs, outb = reply
    if outb:
        sys.stdout.write(outb if outb.endswith("\n") else outb + "\n")
    if rc < 0:
        print(f"Error {_errname(-rc)}: {outs}", file=sys.stderr)
        return -rc
    if outs:
        print(outs, file=sys.stderr)
    return 0


def find_mds(fsmap: FSMap, who: str) -> MDSInfo | None:
    """`mds.<name>`, `mds.<gid>`, `mds.<rank>` or `mds.<fs>:<rank>` (the daemon holding it)."""
    who = who.removeprefix("mds.")
    gid = fsmap.gid_by_name(who)
    if gid is None:
        try:
            fs, rank = fsmap.parse_role(who)
            gid = fs.up.get(rank)
        except ValueError:
            gid = None
    if gid is None and who.isdigit() and fsmap.gid_exists(int(who)):
        gid = int(who)
    return fsmap.info(gid) if gid is not None else None


async def tell(config: cfg.Config, words: list[str], fmt: str, timeout: float) -> int:
    """`ceph tell mds.<who> <command>`: ask one MDS daemon directly."""
    if len(words) < 2 or not words[0].startswith("mds."):
        print("Error EINVAL: usage: tell mds.<name|gid|rank|fs:rank> <command>",
              file=sys.stderr)
        return errno.EINVAL
    auth = auth_key(config)  # the tickets of this session open the MDS connection
    async with AdminClient.open(config.get("mon_host"), config.name, auth,
                                timeout=timeout,
                                hunt_interval=config.get("mon_client_hunt_interval")) as admin:
        await admin.subscribe("fsmap")
        msg = await admin.pushes.receive()
        info = find_mds(FSMap.from_wire(msg.fsmap), words[0])
        if info is None:
            print(f"Error ENOENT: problem getting command descriptions from {words[0]}",
                  file=sys.stderr)
            return errno.ENOENT
        host, port = parse_hostport(info.addr.split("/")[0])

        async def open_conn() -> Connection:  # cephx: with the ticket this session fetched
            return (await connect(host, port, config.name, auth=auth))[0]

        return await _ask_daemon(open_conn, words[1:], fmt, timeout, errno.ETIMEDOUT,
                                 f"cannot reach mds.{info.name} at {info.addr}")


async def daemon_command(config: cfg.Config, words: list[str], fmt: str, timeout: float,
                         conf_path: str | None) -> int:
    """`mdsemu daemon <name> <command>` (Ceph's `ceph daemon`): through the daemon's admin
    socket, found from the conf file's `admin_socket` for that name, or a path."""
    if len(words) < 2:
        print("Error EINVAL: usage: daemon <mds.NAME|PATH.asok> <command>", file=sys.stderr)
        return errno.EINVAL
    target = words[0]
    path = target if "/" in target else load_config(conf_path, target).get("admin_socket")

    async def open_conn() -> Connection:
        return Connection(await trio.open_unix_socket(path))

    return await _ask_daemon(open_conn, words[1:], fmt, timeout, errno.ECONNREFUSED,
                             f"admin socket {path}")


async def _ask_daemon(open_conn, args: list[str], fmt: str, timeout: float, unreachable: int,
                      where: str) -> int:
    """One command to one daemon; print its answer; return the exit status (an errno)."""
    try:
        with trio.fail_after(timeout):
            conn = await open_conn()
            try:
                await conn.send(m.Command(tid=1, args=args, format=fmt))
                reply = await conn.recv()
            finally:
                await conn.aclose()
    except (OSError, HandshakeError, ConnectionClosed, ProtocolError, trio.TooSlowError) as e:
        print(f"Error {_errname(unreachable)}: {where}: {e}", file=sys.stderr)
        return unreachable
    if reply.outb:
        print(reply.outb)
    if reply.rc < 0:
        print(f"Error {_errname(-reply.rc)}: {reply.outs}", file=sys.stderr)
        return -reply.rc
    return 0


def format_log_entry(e: dict) -> str:
    return render.log_line(e)


async def watch(config: cfg.Config, timeout: float) -> int:
    """`ceph -w`: the status, then every cluster-log line as it is written."""
    async with AdminClient.open(config.get("mon_host"), config.name, auth_key(config),
                                timeout=timeout,
                                hunt_interval=config.get("mon_client_hunt_interval")) as admin:
        _, _, status = await admin.command(["status"])
        print(status, flush=True)
        await admin.subscribe("log")
        async for msg in admin.pushes:
            for e in getattr(msg, "entries", []):
                print(format_log_entry(e), flush=True)
    print("mdsemu: lost the connection to the monitor", file=sys.stderr)
    return errno.ECONNRESET


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "demo":
        from client import demo

        raise SystemExit(demo.main(argv))
    if argv and argv[0] in ("vstart", "vstop"):
        from client import vstart

        raise SystemExit(vstart.main(argv))
    _, words = split_global_options(argv)
    if words and words[0] == "rados":  # `mdsemu rados ...`: Ceph's rados tool
        from client import rados_cli

        rest = list(argv)
        rest.remove("rados")
        raise SystemExit(rados_cli.main(rest))
    if words and words[0] == "nfs-client":  # `mdsemu nfs-client ...`: an NFS head's client
        from nfs import cli as nfs_cli

        rest = list(argv)
        rest.remove("nfs-client")
        raise SystemExit(nfs_cli.main(rest))
    if words and words[0] == "thrash":  # `mdsemu [-c CONF] thrash ...` (client/thrash.py)
        from client import thrash

        rest = list(argv)
        rest.remove("thrash")
        raise SystemExit(thrash.main(rest))
    if words and words[0] == "client":  # `mdsemu [-c CONF] client ...`: options anywhere
        from client import fscli

        rest = list(argv)
        rest.remove("client")
        raise SystemExit(fscli.main(rest))
    opts, words = split_global_options(argv)
    if not words or words == ["--help"]:
        print(USAGE, end="")
        raise SystemExit(0 if words else errno.EINVAL)
    if opts["format"] not in ("plain", "json", "json-pretty"):
        print(f"mdsemu: unknown format '{opts['format']}'", file=sys.stderr)
        raise SystemExit(errno.EINVAL)
    try:
        config = load_config(opts["conf"], entity_name(opts), opts["keyring"])
    except ValueError as e:
        raise SystemExit(f"mdsemu: {e}") from None
    if words[:2] == ["auth", "import"]:
        words = _read_import_file(words)
    try:
        timeout = float(opts["timeout"]) if opts["timeout"] else 5.0
    except ValueError:
        raise SystemExit(f"mdsemu: bad --connect-timeout '{opts['timeout']}'") from None
    try:
        if words == ["-w"]:
            rc = trio.run(watch, config, timeout)
        elif words[0] == "daemon":
            rc = trio.run(daemon_command, config, words[1:], opts["format"], timeout,
                          opts["conf"])
        elif words[0] == "tell":
            rc = trio.run(tell, config, words[1:], opts["format"], timeout)
        else:
            rc = trio.run(run_command, config, words, opts["format"], timeout)
    except MonUnreachable as e:
        print(f"mdsemu: error connecting to the cluster: {e}", file=sys.stderr)
        rc = errno.ETIMEDOUT
    except KeyboardInterrupt:
        rc = 0
    except BaseExceptionGroup as group:  # Ctrl-C that surfaced through a nursery
        if group.subgroup(KeyboardInterrupt) is None:
            raise
        rc = 0
    raise SystemExit(rc)


if __name__ == "__main__":
    main()
