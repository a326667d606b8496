"""The cluster log of health changes, sans-IO (Ceph's Monitor::log_health).

In Ceph each monitor service encodes its health checks with every proposal it makes
(PaxosService::encode_health), and the monitor logs the differences from the checks of its
previous proposal to the cluster log:

- a new code: "Health check failed: <summary> (<CODE>)", at WRN or ERR as its severity;
- a code whose summary or severity changed: "Health check update: <summary> (<CODE>)", at its
  severity, but not more often than `mon_health_log_update_period` while the severity stays
  the same (the skipped summary is not logged later unless it changes again);
- a code gone: "Health check cleared: <CODE> (was: <summary>)" at INF;
- and "Cluster is now healthy" at INF when the last check clears.

Checks are compared in code order (Ceph's std::map), failures and updates before clears.
Detail lines are not compared. Plain values in, log lines out: no clock, no I/O.
"""

from __future__ import annotations

from common.health import HEALTH_ERR, HEALTH_WARN, HealthCheck

_LEVEL = {HEALTH_ERR: "ERR", HEALTH_WARN: "WRN"}  # Ceph's clog->health(severity)


class HealthLog:
    """The checks of the previous proposal and when each code was last logged."""

    def __init__(self, checks: dict[str, HealthCheck] | None = None) -> None:
        # A restarted monitor starts from the checks of its stored maps: no "failed" again.
        self.checks: dict[str, HealthCheck] = dict(checks or {})
        self._logged_at: dict[str, float] = {}

    def update(self, new: dict[str, HealthCheck], now: float,
               update_period: float) -> list[tuple[str, str]]:
        """The (level, message) lines for going from the previous checks to `new`."""
        lines: list[tuple[str, str]] = []
        for code in sorted(new):
            check, old = new[code], self.checks.get(code)
            level = _LEVEL.get(check.severity, "INF")
            if old is None:
                lines.append((level, f"Health check failed: {check.summary} ({code})"))
            elif check.summary != old.summary or check.severity != old.severity:
                last = self._logged_at.get(code)
                if (check.severity == old.severity and last is not None
                        and now - last < update_period):
                    continue  # logged recently at this severity
                lines.append((level, f"Health check update: {check.summary} ({code})"))
            else:
                continue
            self._logged_at[code] = now
        for code in sorted(self.checks):
            if code not in new:
                lines.append(("INF", f"Health check cleared: {code} "
                                     f"(was: {self.checks[code].summary})"))
                self._logged_at.pop(code, None)
        if self.checks and not new:
            lines.append(("INF", "Cluster is now healthy"))
        self.checks = dict(new)
        return lines
