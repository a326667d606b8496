"""`mdsemu-osd -c CONF -i ID`: run the object store daemon in the foreground.

Data lives in `osd_data`; the address it serves on is written to `<osd_data>/addr` and
announced to the monitor. SIGTERM or SIGINT is a clean shutdown.
"""

from __future__ import annotations

import sys

import structlog

from common import daemon
from osd.server import OSDServer
from osd.store import StoreError

log = structlog.get_logger("osd")


def main(argv: list[str] | None = None) -> None:
    config, _ = daemon.parse(sys.argv[1:] if argv is None else argv, "osd", "mdsemu-osd")
    try:
        server = OSDServer(config)
    except ValueError as e:
        log.error("bad osd id", error=str(e))
        sys.exit(22)  # EINVAL
    daemon.run_foreground(server.run, "osd", fatal=(OSError, StoreError))


if __name__ == "__main__":
    main()
