"""`mdsemu-mds -c CONF -i NAME`: run an MDS daemon in the foreground.

SIGTERM or SIGINT is a clean shutdown (B10); being removed from the map re-executes this
process (B8), keeping its pid and getting a new gid.
"""

from __future__ import annotations

import sys

from common.lean import skip_rich


def main(argv: list[str] | None = None) -> None:
    skip_rich()  # before structlog: about 4 MB less in every MDS
    from common import daemon
    from mds.daemon import MDSDaemon
    from mds.process import exec_respawn

    config, _ = daemon.parse(sys.argv[1:] if argv is None else argv, "mds", "mdsemu-mds")
    mds = MDSDaemon(config, respawn=exec_respawn)
    daemon.run_foreground(mds.run, "mds", on_signal=mds.shutdown)


if __name__ == "__main__":
    main()
