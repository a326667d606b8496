"""`mdsemu-mon -c CONF -i NAME`: run a monitor in the foreground."""

from __future__ import annotations

import signal
import sys

import structlog
import trio

from common import daemon
from mon.server import MonServer

log = structlog.get_logger("mon")


async def _serve(server: MonServer) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            async for sig in signals:
                log.info("shutting down on signal", signal=signal.Signals(sig).name)
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> None:
    config, _ = daemon.parse(sys.argv[1:] if argv is None else argv, "mon", "mdsemu-mon")
    try:
        trio.run(_serve, MonServer(config))
    except* OSError as group:
        log.error("mon failed to start", error="; ".join(str(e) for e in group.exceptions))
        sys.exit(1)


if __name__ == "__main__":
    main()
