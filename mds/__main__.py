"""`mdsemu-mds -c CONF -i NAME`: run an MDS daemon in the foreground.

SIGTERM or SIGINT is a clean shutdown (B10); being removed from the map re-executes this
process (B8), keeping its pid and getting a new gid.
"""

from __future__ import annotations

import signal
import sys

import structlog
import trio

from common import daemon
from mds.daemon import MDSDaemon, exec_respawn

log = structlog.get_logger("mds")


async def _serve(mds: MDSDaemon) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(mds.run)
            async for sig in signals:
                log.info("shutting down on signal", signal=signal.Signals(sig).name)
                await mds.shutdown()
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> None:
    config, _ = daemon.parse(sys.argv[1:] if argv is None else argv, "mds", "mdsemu-mds")
    try:
        trio.run(_serve, MDSDaemon(config, respawn=exec_respawn))
    except* OSError as group:
        log.error("mds failed to start", error="; ".join(str(e) for e in group.exceptions))
        sys.exit(1)


if __name__ == "__main__":
    main()
