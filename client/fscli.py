"""`mdsemu client`: filesystem operations from the command line (DESIGN §3).

    mdsemu client -c CONF [--id ID] [-k KEYRING] [--fs NAME] [-f plain|json|json-pretty]
                  [--timeout S] OP ARGS...

OP is one of `mkdir [-p] PATH...`, `touch PATH...`, `ls [PATH...]`, `stat PATH...`,
`mv SRC DST`, `rm PATH...`, `rmdir PATH...`, `setfattr -n NAME -v VALUE PATH...`,
`load --clients N --duration S --history FILE` (client/load.py) and
`verify --history FILE [--json]` (client/verify.py). Every path
is tried; each failure is one line on stderr (`mdsemu client: mkdir /a: File exists`) and the
exit status is the errno of the first one. With `-f json`, `ls` and `stat` print one JSON
document per PATH (one per line). As with `mdsemu`, `-c`, `-f`, `--connect-timeout` (the
wait for the monitor, 5 s), and with cephx `--id` and `-k/--keyring` (who the client is;
`-n` is setfattr's) may stand anywhere; `--timeout` bounds each request, failovers included
(60 s).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import stat
import sys
import time
from datetime import UTC, datetime
from typing import TextIO

import trio

from client.conf import auth_key, entity_name, load_config, split_global_options
from client.fsclient import FSClient, FSClientError, MonUnreachable
from common import log as logsetup
from common.net import use_messenger

PROG = "mdsemu client"
FORMATS = ("plain", "json", "json-pretty")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{self.format_usage()}{self.prog}: {message}")


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)  # allowed before or after OP
    common.add_argument("--fs", default=argparse.SUPPRESS, help="file system name")
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS,
                        help="seconds each request may take, failovers included (60)")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="log what the client does (failovers, retries) on stderr")
    p = _Parser(prog=PROG, parents=[common], usage=f"{PROG} [-c CONF] [--fs NAME] "
                "[-f plain|json|json-pretty] [--timeout S] OP ...")
    sub = p.add_subparsers(dest="op", required=True, metavar="OP", parser_class=_Parser,
                           prog=PROG)

    def op(name: str, help: str, paths: str = "+") -> argparse.ArgumentParser:
        sp = sub.add_parser(name, parents=[common], help=help)
        if paths:
            sp.add_argument("paths", nargs=paths, default=["/"], metavar="PATH")
        return sp

    op("mkdir", "make directories").add_argument(
        "-p", "--parents", action="store_true", help="make parents as needed, no error if existing")
    op("touch", "create empty files (or update their mtime)")
    op("ls", "list directory contents", "*")
    op("stat", "show inodes")
    mv = op("mv", "rename SRC to DST", "")
    mv.add_argument("src", metavar="SRC")
    mv.add_argument("dst", metavar="DST")
    op("rm", "remove files")
    op("rmdir", "remove empty directories")
    sf = op("setfattr", "set an extended attribute")
    sf.add_argument("-n", "--name", required=True)
    sf.add_argument("-v", "--value", default="")
    ld = op("load", "run N clients doing metadata operations; write a history", "")
    ld.add_argument("--clients", type=int, default=4)
    ld.add_argument("--duration", type=float, default=10.0, help="seconds (10)")
    ld.add_argument("--history", required=True, metavar="FILE", help="JSON lines to write")
    ld.add_argument("--seed", type=int, default=None)
    ld.add_argument("--pause", type=float, default=0.01, help="seconds between a client's ops")
    ld.add_argument("--pin-ranks", action="store_true",
                    help="pin client k's subtree to rank k %% max_mds (ceph.dir.pin), and its "
                         "directory x to the next rank (renames across ranks)")
    ld.add_argument("--remount", action="store_true",
                    help="a client the MDS evicts mounts again with a fresh session (the "
                         "thrasher's load); without it an evicted client stops")
    vf = op("verify", "check the namespace against a load history", "")
    vf.add_argument("--history", required=True, metavar="FILE")
    vf.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line as a namespace: op, paths/src/dst, fs, timeout, conf, format,
    connect_timeout, debug, entity (--id: client.<id>) and keyring. Raises UsageError."""
    opts, words = split_global_options(argv, identity=False)
    args = parser().parse_args(words)
    if opts["format"] not in FORMATS:
        raise UsageError(f"{PROG}: unknown format '{opts['format']}'")
    try:
        connect_timeout = float(opts["timeout"]) if opts["timeout"] else 5.0
    except ValueError:
        raise UsageError(f"{PROG}: bad --connect-timeout '{opts['timeout']}'") from None
    args.fs = getattr(args, "fs", None)
    args.timeout = getattr(args, "timeout", 60.0)
    args.debug = getattr(args, "debug", False)
    args.conf, args.format, args.connect_timeout = opts["conf"], opts["format"], connect_timeout
    args.entity, args.keyring = entity_name(opts), opts["keyring"]
    return args


def error_line(what: str, code: int, detail: str = "") -> str:
    return f"{PROG}: {what}: {os.strerror(code)}" + (f" ({detail})" if detail else "")


# -- output
def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S.%f +0000")


def _kind(inode: dict) -> str:
    mode = inode["mode"]
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "regular empty file" if inode.get("size", 0) == 0 else "regular file"
    return "unknown"


def stat_plain(path: str, inode: dict) -> str:
    """A small block in the manner of coreutils' stat."""
    mode = inode["mode"]
    lines = [
        f"  File: {path}",
        f"  Size: {inode.get('size', 0):<15} {_kind(inode)}",
        f" Inode: {inode['ino']:<15} Links: {inode.get('nlink', 1)}",
        f"Access: ({stat.S_IMODE(mode):04o}/{stat.filemode(mode)})  "
        f"Uid: {inode.get('uid', 0)}  Gid: {inode.get('gid', 0)}",
        f"Modify: {_stamp(inode.get('mtime', 0.0))}",
        f"Change: {_stamp(inode.get('ctime', 0.0))}",
    ]
    xattrs = inode.get("xattrs") or {}
    if xattrs:
        lines.append("Xattrs: " + ", ".join(f"{k}={v}" for k, v in sorted(xattrs.items())))
    return "\n".join(lines)


class _Output:
    def __init__(self, fmt: str, stream: TextIO) -> None:
        self.fmt = fmt
        self.stream = stream

    def json(self, doc: dict) -> None:
        self.text(json.dumps(doc, indent=4 if self.fmt == "json-pretty" else None))

    def text(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


# -- the operations
async def _mkdir_p(fs: FSClient, path: str) -> None:
    parts = [p for p in path.split("/") if p]
    for i in range(1, len(parts) + 1):
        sub = "/" + "/".join(parts[:i])
        try:
            await fs.mkdir(sub)
        except FSClientError as e:
            if e.code != errno.EEXIST or not stat.S_ISDIR((await fs.stat(sub))["mode"]):
                raise


async def _touch(fs: FSClient, path: str) -> None:
    try:
        await fs.create(path)
    except FSClientError as e:
        if e.code != errno.EEXIST:
            raise
        await fs.setattr(path, mtime=time.time())


async def _ls(fs: FSClient, path: str, out: _Output, header: bool) -> None:
    try:
        entries = await fs.ls(path)
    except FSClientError as e:
        if e.code != errno.ENOTDIR:
            raise
        entries = [(path, await fs.stat(path))]  # like ls: a file lists as itself
    if out.fmt != "plain":
        out.json({"path": path, "entries": [dict(inode, name=n) for n, inode in entries]})
        return
    lines = [f"{path}:"] if header else []
    lines += [name for name, _ in entries]
    if lines:
        out.text("\n".join(lines))


async def _stat(fs: FSClient, path: str, out: _Output) -> None:
    inode = await fs.stat(path)
    if out.fmt == "plain":
        out.text(stat_plain(path, inode))
    else:
        out.json(dict(inode, path=path))


def _steps(fs: FSClient, args: argparse.Namespace, out: _Output):
    """(what, coroutine function) for each thing to do, in order."""
    if args.op == "mv":
        return [(f"mv {args.src} {args.dst}", lambda: fs.rename(args.src, args.dst))]
    many = len(args.paths) > 1
    do = {
        "mkdir": lambda p: _mkdir_p(fs, p) if args.parents else fs.mkdir(p),
        "touch": lambda p: _touch(fs, p),
        "ls": lambda p: _ls(fs, p, out, many),
        "stat": lambda p: _stat(fs, p, out),
        "rm": fs.unlink,
        "rmdir": fs.rmdir,
        "setfattr": lambda p: fs.setattr(p, xattrs={args.name: args.value}),
    }[args.op]
    return [(f"{args.op} {p}", lambda p=p: do(p)) for p in args.paths]


async def run_op(fs: FSClient, args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Do the operation on every path; return the errno of the first failure (0 if none).
    A timeout ends the run: the cluster is not answering, the next path would wait too. Then
a sync: a mutation returned on its unsafe reply and then lost is a failure (EIO)."""
    first = 0
    for what, step in _steps(fs, args, _Output(args.format, out or sys.stdout)):
        try:
            await step()
        except FSClientError as e:
            timed_out = e.code == errno.ETIMEDOUT
            print(error_line(what, e.code, e.message if timed_out else ""), file=sys.stderr)
            first = first or e.code
            if timed_out:
                break
    for lost in await fs.sync():  # answered unsafe, but never made safe (the MDS failed)
        what = " ".join([lost.op, *(str(lost.args[k]) for k in ("path", "src", "dst")
                                    if k in lost.args)])
        print(error_line(what, errno.EIO, f"acknowledged, then lost: {lost.reason}"),
              file=sys.stderr)
        first = first or errno.EIO
    return first


async def run(config, args: argparse.Namespace) -> int:
    use_messenger(config, config.name)  # ms_inject_* / ms_blackhole_* of [client] apply
    if args.op in ("load", "verify"):
        from client import load, verify

        return await (load if args.op == "load" else verify).cli(config, args)
    async with FSClient.open(
        config.get("mon_host"), fs_name=args.fs, timeout=args.timeout, auth=auth_key(config),
        connect_timeout=args.connect_timeout,
        hunt_interval=config.get("mon_client_hunt_interval"),
    ) as fs:
        return await run_op(fs, args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
    except UsageError as e:
        print(e, file=sys.stderr)
        return errno.EINVAL
    config = load_config(args.conf, args.entity, args.keyring)
    # The client's own log (failovers, retries) only with --debug: stderr has the one-line
    # messages of failed operations.
    logsetup.setup(config.get("log_format"), "", "debug" if args.debug else "error")
    try:
        return trio.run(run, config, args)
    except MonUnreachable as e:
        print(f"{PROG}: error connecting to the cluster: {e}", file=sys.stderr)
        return errno.ETIMEDOUT
    except FSClientError as e:  # from open: no such file system
        print(f"{PROG}: {e.message}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return errno.EINTR
