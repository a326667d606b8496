"""structlog set-up shared by every process (DESIGN §7).

Console rendering when stderr is a terminal, JSON lines otherwise, or as `log_format` says;
`log_file` sends the lines to a file instead of stderr. Each daemon binds `entity` and `gid`
with `bind()` so every line says who wrote it.
"""

from __future__ import annotations

import logging
import sys

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}


def setup(log_format: str = "", log_file: str = "", level: str = "info") -> None:
    stream = open(log_file, "a", buffering=1) if log_file else sys.stderr  # noqa: SIM115
    use_json = log_format == "json" or (log_format == "" and not stream.isatty())
    renderer = (structlog.processors.JSONRenderer() if use_json
                else structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )


def bind(**kv) -> None:
    structlog.contextvars.bind_contextvars(**kv)
