"""The MDS side of the beacon protocol, sans-IO (ref B2–B5).

`sent(now)` numbers a beacon and remembers when it left; `acked(seq, now)` takes the monitor's
reply; `laggy(now)` says whether the monitors have been silent for longer than the grace.
"""

from __future__ import annotations


class BeaconState:
    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.last_seq = 0
        self.seq_stamp: dict[int, float] = {}
        self.last_acked_stamp: float | None = None  # never acked counts as laggy (ref §17.8)
        self.was_laggy = False
        self.behind_since: float | None = None  # acks have named a map we lack, since

    def sent(self, now: float) -> int:
        self.last_seq += 1
        self.seq_stamp[self.last_seq] = now
        return self.last_seq

    def acked(self, seq: int, now: float) -> bool:
        """B4. Returns True when this ack ends a laggy period."""
        stamp = self.seq_stamp.get(seq)
        if stamp is None:
            return False  # an ack for a beacon we no longer track
        self.last_acked_stamp = stamp
        for s in [s for s in self.seq_stamp if s <= seq]:
            del self.seq_stamp[s]
        if self.was_laggy and now - stamp < self.grace:
            self.was_laggy = False
            return True
        return False

    def laggy(self, now: float) -> bool:
        """B5: no ack of a beacon sent within the last `grace` seconds."""
        if self.last_acked_stamp is None:
            return True
        lag = now - self.last_acked_stamp > self.grace
        if lag:
            self.was_laggy = True
        return lag

    def since_acked(self, now: float) -> float:
        return now - (self.last_acked_stamp if self.last_acked_stamp is not None else now)

    def map_missing(self, version: int, have: int, now: float) -> bool:
        """B4/B7: an ack names the epoch the monitor wants us to have seen (`version`); we
        hold `have`. A map still missing after `grace` was lost on the way, with the
        subscription asking for it (a message dropped while the session stayed up: a one-way
        partition, ms_blackhole_mon at our boot): True, once a grace, when the shell should
        subscribe again. Without it a daemon stays in up:boot, its boot beacons ignored (M2),
        removed as laggy and booted again every second, and picked as a replacement."""
        if version <= have:
            self.behind_since = None
            return False
        if self.behind_since is None:
            self.behind_since = now
            return False
        if now - self.behind_since < self.grace:
            return False
        self.behind_since = now
        return True
