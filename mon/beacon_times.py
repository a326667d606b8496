"""When each daemon last sent a beacon, sans-IO (T1–T4; Ceph's MDSMonitor::last_beacon).

A plain object the monitor owns: it stamps beacons with the monotonic `now` it is given and
says which daemons are overdue. What to do about them (T5, T6) is the monitor's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import structlog

log = structlog.get_logger("mon")


@dataclass
class BeaconStamp:
    stamp: float
    seq: int


class BeaconTimes:
    def __init__(self, now: float) -> None:
        self.stamps: dict[int, BeaconStamp] = {}
        # on_restart (T1): a (re)started leader knows no beacon times and starts a new quorum.
        self.last_tick = now
        self.quorum_since = now

    def note(self, gid: int, now: float, seq: int) -> None:
        self.stamps[gid] = BeaconStamp(now, seq)

    def forget(self, gid: int) -> None:
        self.stamps.pop(gid, None)

    def tick(self, now: float, grace: float, interval: float) -> None:
        """T1: a leader that could not tick for a while must not punish the daemons for it."""
        if now - self.last_tick > grace - interval:
            log.info(f"resetting beacon timeouts due to mon delay (slow election?) of "
                     f"{now - self.last_tick:.3f} seconds")
            for st in self.stamps.values():
                st.stamp = now
        self.last_tick = now

    def sync(self, gids: Iterable[int], now: float) -> None:
        """T2: every daemon in the map has a stamp (from now, if it had none); the stamps of
        daemons no longer in it are forgotten."""
        gids = set(gids)
        for gid in [g for g in self.stamps if g not in gids]:
            del self.stamps[gid]
        for gid in sorted(gids):
            self.stamps.setdefault(gid, BeaconStamp(now, 0))

    def overdue(self, now: float, grace: float, interval: float,
                down_grace: float) -> tuple[list[tuple[int, float]], bool]:
        """The daemons past `grace` (gid, seconds since their last beacon), by gid, less those
        a new quorum still defers (T3); and whether any may be replaced now (T4: not while
        every beacon is late, which means the mon, not the daemons, was cut off)."""
        new_quorum = now - self.quorum_since < down_grace
        latest = max((st.stamp for st in self.stamps.values()), default=now)
        may_replace = now - latest < max(interval, grace * 0.5)
        late = []
        for gid, st in sorted(self.stamps.items()):
            since = now - st.stamp
            if since < grace:
                continue
            if new_quorum and since < down_grace:
                log.debug("deferring removal for mds_beacon_mon_down_grace", gid=gid)
                continue
            late.append((gid, since))
        return late, may_replace
