"""How a tool finds its cluster: the conf file, the options every `mdsemu` command takes
anywhere on its line, and the key it says hello with. Shared by `mdsemu` (client/cli.py), its
`client` commands (client/fscli.py) and the load and verify tools, which import nothing else
of each other's front ends."""

from __future__ import annotations

import errno
import os
import sys

from common import config as cfg
from common.auth import NoKeyring, hello_key


def default_conf() -> str:
    if os.environ.get("CEPH_CONF"):
        return os.environ["CEPH_CONF"]
    return "ceph.conf" if os.path.exists("ceph.conf") else "/etc/ceph/ceph.conf"


def take_options(argv: list[str], takes: dict[str, str], opts: dict, other,
                 missing) -> None:
    """The one option walker of the tools: an option named in `takes` (`-c x`, `--conf x`,
    `--conf=x`) sets `opts[takes[option]]`, wherever it stands; an option without its value
    raises `missing(option)`; every other word goes to `other(word)` in order."""
    i = 0
    while i < len(argv):
        a = argv[i]
        key, eq, val = a.partition("=")
        if key in takes and a.startswith("--") and eq:
            opts[takes[key]] = val
        elif a in takes:
            if i + 1 >= len(argv):
                raise missing(a)
            opts[takes[a]] = argv[i + 1]
            i += 1
        else:
            other(a)
        i += 1


def split_global_options(argv: list[str], identity: bool = True) -> tuple[dict, list[str]]:
    """Pull -c/--conf, -f/--format, --connect-timeout, -s, -w, and who we are (-n/--name,
    --id, -k/--keyring; with `identity` False only --id and -k/--keyring, since `client
    setfattr` has its own -n/--name) out of anywhere in argv."""
    opts = {"conf": None, "format": "plain", "timeout": None, "name": None, "id": None,
            "keyring": None}
    words: list[str] = []

    def other(a: str) -> None:
        if a == "-s":
            words.append("status")
        elif a in ("-w", "--watch"):
            words.append("-w")
        elif a in ("-h", "--help") and not words:
            words.append("--help")
        else:
            words.append(a)

    takes = {"-c": "conf", "--conf": "conf", "-f": "format", "--format": "format",
             "--connect-timeout": "timeout"}
    takes |= {"--id": "id", "-k": "keyring", "--keyring": "keyring"}
    if identity:
        takes |= {"-n": "name", "--name": "name"}
    take_options(argv, takes, opts, other,
                 lambda a: SystemExit(f"mdsemu: option {a} needs a value"))
    return opts, words


def entity_name(opts: dict) -> str:
    """Ceph's -n/--name client.x, or --id x; client.admin by default."""
    if opts.get("name"):
        return opts["name"]
    return f"client.{opts['id']}" if opts.get("id") else "client.admin"


def load_config(conf_path: str | None, name: str = "client.admin",
                keyring: str | None = None) -> cfg.Config:
    path = conf_path or default_conf()
    try:
        return cfg.Config(name, cfg.load_conf(path),
                          overrides={"keyring": keyring} if keyring else None)
    except cfg.ConfError as e:
        print(f"mdsemu: {e}", file=sys.stderr)
        raise SystemExit(errno.EINVAL) from None


def auth_key(config: cfg.Config):
    """This tool's cephx credentials (None with auth off); exits with Ceph's complaint when
    cephx is required and the keyring has no key for it."""
    try:
        return hello_key(config)
    except NoKeyring as e:
        print(f"mdsemu: {e}", file=sys.stderr)
        raise SystemExit(errno.ENOENT) from None
