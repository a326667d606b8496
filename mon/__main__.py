"""`mdsemu-mon -c CONF -i NAME`: run a monitor in the foreground."""

from __future__ import annotations

import sys

from common import daemon
from mon.server import MonServer


def main(argv: list[str] | None = None) -> None:
    config, _ = daemon.parse(sys.argv[1:] if argv is None else argv, "mon", "mdsemu-mon")
    daemon.run_foreground(MonServer(config).run, "mon")


if __name__ == "__main__":
    main()
