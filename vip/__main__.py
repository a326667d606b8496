"""`mdsemu-keepalived -f keepalived.conf`: run the VRRP daemon in the foreground.

`mdsemu-keepalived -f keepalived.conf --status [--format json]` asks the running one.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys

from common import daemon
from common import log as logsetup
from vip import conf, status
from vip.daemon import Keepalived


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="mdsemu-keepalived",
                                 description="keepalived-compatible VRRP for loopback VIPs")
    ap.add_argument("-f", "--use-file", dest="conf", default="/etc/keepalived/keepalived.conf",
                    help="keepalived.conf to read")
    ap.add_argument("-p", "--pid", dest="pid_file", default="", help="write the pid here")
    ap.add_argument("--log-file", default="")
    ap.add_argument("--log-format", choices=("console", "json"), default="")
    ap.add_argument("-t", "--config-test", action="store_true",
                    help="check the configuration and exit")
    ap.add_argument("--status", action="store_true",
                    help="print the state of a running daemon (same -f)")
    ap.add_argument("--format", choices=("plain", "json", "json-pretty"), default="plain")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = conf.load(args.conf)
    except conf.ConfigError as e:
        print(f"mdsemu-keepalived: {e}", file=sys.stderr)
        sys.exit(e.errno)
    if args.status:
        try:
            st = status.query(config.control_socket)
        except status.Unreachable as e:
            print(f"mdsemu-keepalived: {e}", file=sys.stderr)
            sys.exit(errno.ENOENT)
        if args.format == "plain":
            print(status.render_plain(st))
        else:
            print(json.dumps(st, indent=4 if args.format == "json-pretty" else None))
        return
    if args.config_test:
        for w in config.warnings:
            print(w, file=sys.stderr)
        return
    logsetup.setup(args.log_format, args.log_file)
    logsetup.bind(entity=f"keepalived.{config.router_id}")
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    ka = Keepalived(config)
    daemon.run_foreground(ka.run, "mdsemu-keepalived", on_signal=ka.stop)


if __name__ == "__main__":
    main()
