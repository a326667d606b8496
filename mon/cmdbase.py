"""What every admin command handler shares: the context, argument parsing, errors (ref §14).

Handlers take a `Context` and return (rc, outs, outb) like Ceph's mon commands; they raise
`CommandError` with Ceph's errno and message for bad input.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable

from common.fsmap import FSMap
from mon.mds_monitor import MDSMonitor

Result = tuple[int, str, str]
YES = "--yes-i-really-mean-it"


class CommandError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def _err(code: int, message: str) -> CommandError:
    return CommandError(code, message)


def _format(obj, fmt: str) -> str:
    if fmt == "json-pretty":
        return json.dumps(obj, indent=4)
    return json.dumps(obj, separators=(",", ":"))


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("true", "yes", "1"):
        return True
    if low in ("false", "no", "0"):
        return False
    raise _err(errno.EINVAL, "value must be false|no|0 or true|yes|1")


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise _err(errno.EINVAL, f"{what} must be a non-negative number, got '{text}'")
    return value


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _err(errno.EINVAL, f"{what} must be an integer, got '{text}'") from None


class Context:
    """One command being run: the monitor, the arguments and how to answer."""

    def __init__(self, mon: MDSMonitor, args: list[str], fmt: str, who: str, now: float,
                 wall: float, history: Callable[[int], FSMap | None] | None, extra: dict):
        self.mon = mon
        self.flags = {a for a in args if a.startswith("--")}
        self.args = [a for a in args if not a.startswith("--")]
        self.fmt = fmt
        self.who = who
        self.now = now
        self.wall = wall
        self.history = history
        self.extra = extra

    @property
    def json(self) -> bool:
        return self.fmt in ("json", "json-pretty")

    def out(self, obj) -> str:
        return _format(obj, self.fmt)

    def need(self, n: int, usage: str) -> list[str]:
        if len(self.args) != n:
            raise _err(errno.EINVAL, f"invalid command; usage: {usage}")
        return self.args

    def fs(self, name: str):
        fs = self.mon.view.fs_by_name(name)
        if fs is None:
            raise _err(errno.ENOENT, f"Filesystem not found: '{name}'")
        return fs
