"""A proposal and what it asks of the shell, sans-IO (Ceph's PaxosService pending state).

A `Proposal` holds the maps one or more calls into the monitor are changing: the pending FSMap and
OSDMap are copied from the committed ones on first write, with the epoch being proposed
(Ceph's get_pending_fsmap_writeable / pending_inc), and the cluster-log lines that go out only
if it commits. `Effects` is what a call into the core returns: the reply and every change the
shell must persist, then publish, before it sends that reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from common.fsmap import FSMap
from common.osdmap import OSDMap

log = structlog.get_logger("mon")

ClogLine = tuple[float, str, str]  # (wall, level, message)


@dataclass
class Effects:
    """What one call into the monitor core asks of the shell: persist, publish, then reply."""

    reply: Any = None  # a BeaconAck, a command's (rc, outs, outb), or None: send nothing
    fsmaps: list[FSMap] = field(default_factory=list)  # every FSMap committed, in epoch order
    osdmap: OSDMap | None = None
    config: bool = False  # the config database changed
    clog: list[ClogLine] = field(default_factory=list)
    # replies that waited for a batched proposal to commit: (whom to send to, the reply)
    acks: list[tuple[Any, Any]] = field(default_factory=list)

    @property
    def fsmap(self) -> FSMap | None:
        """The newest FSMap committed, if any."""
        return self.fsmaps[-1] if self.fsmaps else None

    @property
    def changed(self) -> bool:
        """Something to persist and publish."""
        return bool(self.fsmaps or self.osdmap or self.config or self.clog)


class Proposal:
    """The pending maps of one proposal, built lazily on the committed ones."""

    def __init__(self, fsmap: FSMap, osdmap: OSDMap) -> None:
        self._committed_fs = fsmap
        self._committed_osd = osdmap
        self._fs: FSMap | None = None
        self._osd: OSDMap | None = None
        self.clog_lines: list[ClogLine] = []
        # beacons answered when this proposal commits: (reply_to, beacon, kind of reply)
        self.waiters: list[tuple[Any, Any, str]] = []

    @property
    def fsmap(self) -> FSMap:
        """The pending FSMap, to change (its epoch is the one being proposed, O1)."""
        if self._fs is None:
            self._fs = self._committed_fs.copy()
            self._fs.epoch += 1
        return self._fs

    @property
    def osdmap(self) -> OSDMap:
        """The pending OSDMap, to change."""
        if self._osd is None:
            self._osd = self._committed_osd.copy()
            self._osd.epoch += 1
        return self._osd

    @property
    def fs_view(self) -> FSMap:
        """The newest FSMap: pending if changed, else committed. Read only."""
        return self._fs if self._fs is not None else self._committed_fs

    @property
    def osd_view(self) -> OSDMap:
        return self._osd if self._osd is not None else self._committed_osd

    @property
    def dirty(self) -> bool:
        """Something to commit."""
        return bool(self._fs is not None or self._osd is not None or self.clog_lines
                    or self.waiters)

    @property
    def committed_fsmap(self) -> FSMap:
        return self._committed_fs

    @property
    def pending_fsmap(self) -> FSMap | None:
        return self._fs

    @property
    def pending_osdmap(self) -> OSDMap | None:
        return self._osd

    def clog(self, wall: float, level: str, message: str) -> None:
        """A cluster-log line, published only if this proposal commits."""
        self.clog_lines.append((wall, level, message))
        log_cluster(level, message)


def log_cluster(level: str, message: str) -> None:
    # `level` is structlog's own key; the cluster log's priority goes under `prio`
    {"DBG": log.debug, "INF": log.info, "WRN": log.warning, "ERR": log.error}.get(
        level, log.info)("cluster log", channel="cluster", prio=level, msg=message)
