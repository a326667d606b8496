"""`mdsemu-osd -c CONF -i ID`: run the object store daemon in the foreground.

Data lives in `osd_data`; the address it serves on is written to `<osd_data>/addr` and
announced to the monitor. SIGTERM or SIGINT is a clean shutdown.
"""

from __future__ import annotations

import signal
import sys

import structlog
import trio

from common import daemon
from osd.server import OSDServer
from osd.store import StoreError

log = structlog.get_logger("osd")


async def _serve(server: OSDServer) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            async for sig in signals:
                log.info("shutting down on signal", signal=signal.Signals(sig).name)
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> None:
    config, _ = daemon.parse(sys.argv[1:] if argv is None else argv, "osd", "mdsemu-osd")
    try:
        server = OSDServer(config)
    except ValueError as e:
        log.error("bad osd id", error=str(e))
        sys.exit(22)  # EINVAL
    try:
        trio.run(_serve, server)
    except* (OSError, StoreError) as group:  # arrives wrapped by the nurseries
        log.error("osd failed to start", error="; ".join(_messages(group)))
        sys.exit(1)


def _messages(error: BaseException) -> list[str]:
    if isinstance(error, BaseExceptionGroup):
        return [text for e in error.exceptions for text in _messages(e)]
    return [str(error)]


if __name__ == "__main__":
    main()
