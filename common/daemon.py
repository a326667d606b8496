"""What every daemon's command line shares: `-c CONF -i ID`, `--option value` overrides
(Ceph style, `--mds_beacon_grace 5` or `--mds-beacon-grace=5`), pid files and logging.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import structlog
import trio

from common import config as cfg
from common import log as logsetup


def parse(argv: list[str], entity_type: str, prog: str) -> tuple[cfg.Config, argparse.Namespace]:
    ap = argparse.ArgumentParser(prog=prog, description=f"mdsemu {entity_type} daemon")
    ap.add_argument("-c", "--conf", default=os.environ.get("CEPH_CONF", "/etc/ceph/ceph.conf"))
    ap.add_argument("-i", "--id", required=True, help="daemon id, e.g. a for mds.a")
    ap.add_argument("--cluster", default="ceph")
    ap.add_argument("--pid-file", default="")
    ap.add_argument("--profile", choices=sorted(cfg.PROFILES), default=None)
    args, rest = ap.parse_known_args(argv)
    overrides: dict[str, object] = {}
    i = 0
    while i < len(rest):
        word = rest[i]
        if not word.startswith("--"):
            ap.error(f"unexpected argument '{word}'")
        name, eq, value = word[2:].partition("=")
        if not eq:
            if i + 1 >= len(rest):
                ap.error(f"option --{name} needs a value")
            value = rest[i + 1]
            i += 1
        i += 1
        canon = cfg.canonical(name)
        try:
            overrides[canon] = cfg.parse_value(canon, value)
        except (KeyError, ValueError) as e:
            ap.error(str(e).strip("'\""))
    try:
        conf = cfg.load_conf(args.conf) if args.conf else None
        config = cfg.Config(f"{entity_type}.{args.id}", conf, overrides, args.profile,
                            cluster=args.cluster)
    except cfg.ConfError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        sys.exit(22)  # EINVAL
    logsetup.setup(config.get("log_format"), config.get("log_file"), config.get("log_level"))
    logsetup.bind(entity=config.name)
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    return config, args


def _messages(error: BaseException) -> list[str]:
    if isinstance(error, BaseExceptionGroup):
        return [text for e in error.exceptions for text in _messages(e)]
    return [str(error)]


async def _serve(run, on_signal) -> None:
    log = structlog.get_logger()
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(run)
            async for sig in signals:
                log.info("shutting down on signal", signal=signal.Signals(sig).name)
                if on_signal is not None:
                    await on_signal()
                nursery.cancel_scope.cancel()
                break


def run_foreground(run, what: str, on_signal=None, fatal: tuple = (OSError,)) -> None:
    """Run a daemon's `run(task_status=...)` until SIGTERM/SIGINT (then `on_signal()`, e.g.
    B10's down:dne beacon); a start-up failure is one logged line and exit status 1."""
    try:
        trio.run(_serve, run, on_signal)
    except* fatal as group:  # arrives wrapped by the nurseries
        structlog.get_logger().error(f"{what} failed to start",
                                     error="; ".join(_messages(group)))
        sys.exit(1)
