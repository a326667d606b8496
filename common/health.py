"""File-system health checks and their renderings (ref §12, H1–H6, H8, H10).

`fs_health_checks` computes the checks the monitor raises from an FSMap and the health metrics
the daemons report in their beacons. Summaries are Ceph's templates: `%num%` is the number of
detail lines, `%plurals%`, `%isorare%` and `%hasorhave%` agree with it. When the same code is
raised more than once (several file systems, or a daemon metric and a map check both saying
MDS_DAMAGE), the details are concatenated and the first template wins; daemon metrics are
added first (H1). Pure code: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from common import states
from common.fsmap import FSMap, MDSMap

HEALTH_OK = "HEALTH_OK"
HEALTH_WARN = "HEALTH_WARN"
HEALTH_ERR = "HEALTH_ERR"
_RANK = {HEALTH_ERR: 0, HEALTH_WARN: 1, HEALTH_OK: 2}  # worst first
_TAG = {HEALTH_ERR: "[ERR]", HEALTH_WARN: "[WRN]"}

# H8: summary templates of the metrics an MDS reports in its beacon.
METRIC_SUMMARIES: dict[str, str] = {
    "MDS_TRIM": "%num% MDSs behind on trimming",
    "MDS_CLIENT_RECALL": "%num% clients failing to respond to cache pressure",
    "MDS_CLIENT_LATE_RELEASE": "%num% clients failing to respond to capability release",
    "MDS_CLIENT_RECALL_MANY": ("%num% MDSs have many clients failing to respond to cache pressure"),
    "MDS_CLIENT_LATE_RELEASE_MANY": (
        "%num% MDSs have many clients failing to respond to capability release"
    ),
    "MDS_CLIENT_OLDEST_TID": "%num% clients failing to advance oldest client/flush tid",
    "MDS_CLIENT_OLDEST_TID_MANY": (
        "%num% MDSs have clients failing to advance oldest client/flush tid"
    ),
    "MDS_DAMAGE": "%num% MDSs report damaged metadata",
    "MDS_READ_ONLY": "%num% MDSs are read only",
    "MDS_SLOW_REQUEST": "%num% MDSs report slow requests",
    "MDS_CACHE_OVERSIZED": "%num% MDSs report oversized cache",
    "MDS_SLOW_METADATA_IO": "%num% MDSs report slow metadata IOs",
    "MDS_CLIENTS_LAGGY": "%num% client(s) laggy due to laggy OSDs",
}


@dataclass(frozen=True)
class HealthCheck:
    severity: str  # HEALTH_WARN or HEALTH_ERR
    summary: str
    count: int  # number of detail lines (Ceph's summary count)
    detail: tuple[str, ...]


def fill_template(template: str, num: int) -> str:
    """Fill Ceph's summary placeholders for `num` detail lines."""
    many = num > 1
    return (
        template.replace("%num%", str(num))
        .replace("%plurals%", "s" if many else "")
        .replace("%isorare%", "are" if many else "is")
        .replace("%hasorhave%", "have" if many else "has")
    )


class _Builder:
    """Collects (code, severity, template, detail) and merges same-code checks."""

    def __init__(self) -> None:
        self._checks: dict[str, tuple[str, str, list[str]]] = {}

    def add(self, code: str, severity: str, template: str, detail: list[str]) -> None:
        if code in self._checks:
            old_sev, old_template, old_detail = self._checks[code]
            worst = min(old_sev, severity, key=_RANK.__getitem__)
            self._checks[code] = (worst, old_template, old_detail + detail)
        else:
            self._checks[code] = (severity, template, list(detail))

    def build(self) -> dict[str, HealthCheck]:
        out = {
            code: HealthCheck(sev, fill_template(tpl, len(det)), len(det), tuple(det))
            for code, (sev, tpl, det) in self._checks.items()
        }
        return {code: out[code] for code in sorted(out)}


def fs_health_checks(
    fsmap: FSMap, daemon_health: dict[int, list[dict]] | None = None,
    force_standby_active: bool = True,
) -> dict[str, HealthCheck]:
    """All MDS/file-system health checks for `fsmap`, in code order (Ceph's health_check_map_t is a
    std::map keyed by code, so every rendering lists checks that way, whatever their severity).
    `force_standby_active` is mon_force_standby_active, as the replacement search uses it."""
    b = _Builder()
    for gid in sorted(daemon_health or {}):
        _add_daemon_metrics(b, fsmap, gid, (daemon_health or {})[gid])
    for fs in fsmap.filesystems.values():
        _add_mdsmap_checks(b, fs)
    for fs in fsmap.filesystems.values():
        stuck = [r for r in sorted(fs.failed)
                 if fsmap.find_replacement_for(fs, r, force_standby_active) is None]
        if stuck:  # H5
            plural = "s" if len(stuck) > 1 else ""
            b.add(
                "FS_WITH_FAILED_MDS",
                HEALTH_WARN,
                "%num% filesystem%plurals% %hasorhave% a failed mds daemon",
                [f"fs {fs.fs_name} has {len(stuck)} failed mds{plural}"],
            )
    _add_insufficient_standby(b, fsmap)
    return b.build()


def _add_daemon_metrics(b: _Builder, fsmap: FSMap, gid: int, metrics: list[dict]) -> None:
    """H8: one detail line per metric of a daemon still in the map."""
    info = fsmap.info(gid)
    if info is None:
        return
    for m in metrics:
        code = m["type"]
        line = f"mds.{info.name}(mds.{info.rank}): {m['message']}"
        meta = m.get("metadata") or {}
        if meta:
            line += " " + ", ".join(f"{k}: {meta[k]}" for k in sorted(meta))
        template = METRIC_SUMMARIES.get(code, f"%num% MDSs report {code}")
        b.add(code, m.get("severity", HEALTH_WARN), template, [line])


def _add_mdsmap_checks(b: _Builder, fs: MDSMap) -> None:
    """H1–H4 for one file system."""
    name = fs.fs_name
    if fs.damaged:
        b.add(
            "MDS_DAMAGE",
            HEALTH_ERR,
            "%num% mds daemon%plurals% damaged",
            [f"fs {name} mds.{r} is damaged" for r in sorted(fs.damaged)],
        )
    if fs.is_degraded():
        b.add(
            "FS_DEGRADED",
            HEALTH_WARN,
            "%num% filesystem%plurals% %isorare% degraded",
            [f"fs {name} is degraded"],
        )
    if len(fs.in_) < fs.max_mds:
        b.add(
            "MDS_UP_LESS_THAN_MAX",
            HEALTH_WARN,
            "%num% filesystem%plurals% %isorare% online with fewer MDS than max_mds",
            [f"fs {name} has {len(fs.in_)} MDS online, but wants {fs.max_mds}"],
        )
    if not fs.up and fs.max_mds > 0:
        b.add(
            "MDS_ALL_DOWN",
            HEALTH_ERR,
            "%num% filesystem%plurals% %isorare% offline",
            [f"fs {name} is offline because no MDS is active for it."],
        )


def _add_insufficient_standby(b: _Builder, fsmap: FSMap) -> None:
    """H6: the largest shortfall over all file systems (an unset -1 wants nothing)."""
    have = len(fsmap.standby_daemons)
    wanted = 0
    for fs in fsmap.filesystems.values():
        if fs.standby_count_wanted < 0:
            continue
        replay = sum(1 for i in fs.mds_info.values() if i.state == states.STANDBY_REPLAY)
        wanted = max(wanted, fs.standby_count_wanted - (replay + have))
    if wanted > 0:
        b.add(
            "MDS_INSUFFICIENT_STANDBY",
            HEALTH_WARN,
            "insufficient standby MDS daemons available",
            [f"have {have}; want {wanted} more"],
        )


def overall_status(checks: dict[str, HealthCheck]) -> str:
    """The worst severity, or HEALTH_OK."""
    return min((c.severity for c in checks.values()), key=_RANK.__getitem__, default=HEALTH_OK)


def health_json(checks: dict[str, HealthCheck], detail: bool = True) -> dict:
    """`ceph health [detail] -f json` layout; checks keyed by code in code order."""
    out: dict[str, dict] = {}
    for code in sorted(checks):
        c = checks[code]
        entry: dict = {
            "severity": c.severity,
            "summary": {"message": c.summary, "count": c.count},
        }
        if detail:
            entry["detail"] = [{"message": line} for line in c.detail]
        entry["muted"] = False
        out[code] = entry
    return {"status": overall_status(checks), "checks": out, "mutes": []}


def render_health(checks: dict[str, HealthCheck], detail: bool) -> str:
    """`ceph health [detail]` plain text (H10)."""
    status = overall_status(checks)
    order = sorted(checks)
    if not order:
        return status
    lines = [status + " " + "; ".join(checks[c].summary for c in order)]
    if detail:
        for code in order:
            c = checks[code]
            lines.append(f"{_TAG.get(c.severity, '[WRN]')} {code}: {c.summary}")
            lines.extend("    " + line for line in c.detail)
    return "\n".join(lines)
