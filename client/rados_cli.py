"""`mdsemu rados`: Ceph's `rados` tool against an mdsemu cluster (src/tools/rados/rados.cc).

    mdsemu rados [-c CONF] [-p POOL] [-N NS] [--all] lspools | ls | stat OBJ | get OBJ FILE |
        put OBJ FILE | rm OBJ... | listomapkeys OBJ | listomapvals OBJ |
        setomapval OBJ KEY [VALUE]

FILE `-` is standard output (get) or input (put); setomapval without VALUE reads standard
input. Output formats, messages and exit codes are rados's: 0 on success, 1 on any failure
with a message on stderr such as `error getting p/o: (2) No such file or directory`.
"""

from __future__ import annotations

import sys
from datetime import datetime

import trio

from client.conf import load_config, take_options
from client.rados import Rados, RadosError, strerror
from common import config as cfg

USAGE = """usage: rados [options] [commands]
POOL COMMANDS
   lspools                          list pools
OBJECT COMMANDS
   get <obj-name> <outfile>         fetch object
   put <obj-name> <infile>          write object
   rm <obj-name> ...                remove object(s)
   ls                               list objects in pool
   stat <obj-name>                  stat the named object
   listomapkeys <obj-name>          list the keys in the object map
   listomapvals <obj-name>          list the keys and vals in the object map
   setomapval <obj-name> <key> [value]  set the value of key in the object map of object name
GLOBAL OPTIONS:
   -c FILE, --conf FILE             read configuration from the given file
   -p pool, --pool=pool             select given pool by name
   -N namespace, --namespace=namespace  specify the namespace to use for the object
   --all                            with ls, list objects in all namespaces
"""

OBJECT_COMMANDS = {"ls", "stat", "get", "put", "rm", "listomapkeys", "listomapvals",
                   "setomapval"}


class Usage(Exception):
    pass


def hexdump(data: bytes) -> str:
    """Ceph's bufferlist::hexdump (as `hexdump -C`): 16 bytes a row, a row repeating the one
    before as `*`, then the length; nothing for no bytes."""
    if not data:
        return ""
    out: list[str] = []
    last, was_same, did_star = data[0], False, False
    for o in range(0, len(data), 16):
        if o + 16 < len(data):
            row_is_same = True
            for i in range(16):
                if data[o + i] != last:
                    if i == 0:
                        last, was_same, did_star = data[o + i], False, False
                    else:
                        row_is_same = False
            if row_is_same:
                if was_same:
                    if not did_star:
                        out.append("\n*")
                        did_star = True
                    continue
                was_same = True
            else:
                was_same = did_star = False
        if o:
            out.append("\n")
        row = data[o:o + 16]
        hexes = "".join((" " if i == 8 else "") + f" {b:02x}" for i, b in enumerate(row))
        hexes += "".join((" " if i == 8 else "") + "   " for i in range(len(row), 16))
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        out.append(f"{o:08x} {hexes}  |{text}|")
    out.append(f"\n{len(data):08x}\n")
    return "".join(out)


def parse(argv: list[str]) -> tuple[dict, list[str]]:
    opts = {"conf": None, "pool": None, "ns": "", "all": False}
    args: list[str] = []

    def other(a: str) -> None:
        if a == "--all":
            opts["all"] = True
        elif a in ("-h", "--help"):
            raise Usage("")
        elif a.startswith("-") and a != "-":
            raise Usage(f"unrecognized option {a}")
        else:
            args.append(a)

    take_options(argv, {"-c": "conf", "--conf": "conf", "-p": "pool", "--pool": "pool",
                        "-N": "ns", "--namespace": "ns"}, opts, other,
                 lambda a: Usage(f"Option {a} requires an argument."))
    return opts, args


async def run(config: cfg.Config, opts: dict, args: list[str], stdin, stdout) -> int:
    cmd = args[0]
    pool = opts["pool"]
    if cmd in OBJECT_COMMANDS and not pool:
        if cmd == "ls":
            print("either pool name or pg id needs to be specified", file=sys.stderr)
            return 1
        raise Usage("")
    async with Rados.connect(config, timeout=config.get("mon_client_timeout")) as rados:
        if cmd == "lspools":
            stdout.write(b"".join(f"{n}\n".encode() for n in rados.pool_list()))
            return 0
        if cmd not in OBJECT_COMMANDS:
            print(f"unrecognized command {cmd}; -h or --help for usage", file=sys.stderr)
            return 1
        try:
            io = rados.ioctx(pool, opts["ns"])
        except RadosError as e:
            print(f"error opening pool {pool}: {strerror(e.code)}", file=sys.stderr)
            return 1
        return await _object_command(io, cmd, args[1:], opts, stdin, stdout)


async def _object_command(io, cmd: str, rest: list[str], opts: dict, stdin, stdout) -> int:
    pool = io.pool
    need = {"stat": 1, "get": 2, "put": 2, "rm": 1, "listomapkeys": 1, "listomapvals": 1,
            "setomapval": 2}.get(cmd, 0)
    if len(rest) < need or (cmd == "setomapval" and len(rest) > 3):
        raise Usage("")
    what, obj = "", rest[0] if rest else ""
    try:
        if cmd == "ls":
            if rest and rest[0] != "-":
                print("Please use --output to specify the output file name", file=sys.stderr)
                return 1
            if opts["all"] and not opts["ns"]:
                lines = [f"{ns}\t{name}" for ns, name in await io.list_all()]
            else:
                lines = await io.list()
            stdout.write(b"".join(f"{x}\n".encode() for x in lines))
        elif cmd == "stat":
            what = f" error stat-ing {pool}/{obj}"
            st = await io.stat(obj)
            stamp = datetime.fromtimestamp(int(st.mtime)).astimezone()
            stdout.write(f"{pool}/{obj} mtime {stamp.strftime('%Y-%m-%dT%H:%M:%S.000000%z')}, "
                         f"size {st.size}\n".encode())
        elif cmd == "get":
            what = f"error getting {pool}/{obj}"
            data = await io.read(obj)
            if rest[1] == "-":
                stdout.write(data)
            else:
                with open(rest[1], "wb") as f:
                    f.write(data)
        elif cmd == "put":
            what = f"error putting {pool}/{obj}"
            if rest[1] == "-":
                data = stdin.read()
            else:
                try:
                    with open(rest[1], "rb") as f:
                        data = f.read()
                except OSError as e:
                    print(f"error reading input file {rest[1]}: {strerror(e.errno)}",
                          file=sys.stderr)
                    return 1
            await io.write_full(obj, data)
        elif cmd == "rm":
            for oid in rest:
                what = f"error removing {pool}>{io.ns + '/' if io.ns else ''}{oid}"
                await io.remove(oid)
        elif cmd == "listomapkeys":
            what = f"error getting omap key set {pool}/{obj}"
            keys = await io.omap_get(obj)
            stdout.write(b"".join(f"{k}\n".encode() for k in keys))
        elif cmd == "listomapvals":
            what = f"error getting omap keys {pool}/{obj}"
            for key, value in (await io.omap_get(obj)).items():
                if all(32 <= ord(c) < 127 for c in key):  # C's isprint
                    head = key
                else:
                    head = f"key ({len(key.encode())} bytes):\n" + hexdump(key.encode())
                stdout.write(f"{head}\nvalue ({len(value)} bytes) :\n{hexdump(value)}\n"
                             .encode())
        elif cmd == "setomapval":
            key = rest[1]
            what = f"error setting omap value {pool}/{obj}/{key}"
            value = rest[2].encode() if len(rest) == 3 else stdin.read()
            await io.omap_set(obj, {key: value})
    except RadosError as e:
        print(f"{what}: {strerror(e.code)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    try:
        opts, args = parse(argv)
        if not args:
            print("rados: you must give an action. Try --help", file=sys.stderr)
            return 1
        config = load_config(opts["conf"])
        return trio.run(run, config, opts, args, sys.stdin.buffer, _Out())
    except Usage as e:
        if str(e):
            print(e, file=sys.stderr)
        sys.stderr.write(USAGE)
        return 1
    except RadosError as e:
        print(f"couldn't connect to cluster: {strerror(e.code)}", file=sys.stderr)
        return 1


class _Out:
    """Standard output as bytes, flushed as it goes (a `get -` may be large)."""

    def write(self, data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

