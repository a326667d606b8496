"""Per-daemon counters from beacons, turned into the rates `fs status` shows (O5).

Not part of the map: kept in memory by the monitor, like the mgr's perf counters.
"""

from __future__ import annotations


class DaemonStats:
    def __init__(self) -> None:
        self._last: dict[int, tuple[float, dict]] = {}
        self._rates: dict[int, dict] = {}

    def note(self, gid: int, now: float, stats: dict) -> None:
        prev = self._last.get(gid)
        rates = self._rates.setdefault(gid, {"req_rate": 0.0, "evt_rate": 0.0})
        if prev is not None and now > prev[0]:
            dt = now - prev[0]
            for key, counter in (("req_rate", "requests"), ("evt_rate", "events")):
                delta = stats.get(counter, 0) - prev[1].get(counter, 0)
                rates[key] = max(0.0, delta / dt)
        self._last[gid] = (now, stats)

    def view(self, live_gids) -> dict[int, dict]:
        for gid in [g for g in self._last if g not in live_gids]:
            self._last.pop(gid)
            self._rates.pop(gid, None)
        return {gid: dict(stats, **self._rates.get(gid, {})) for gid, (_, stats)
                in self._last.items()}
