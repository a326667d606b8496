"""What an active MDS reports about itself in its beacon's health metrics (Ceph's
`Beacon::notify_health`), sans-IO: the daemon feeds it the operations in flight and `now`.

- MDS_DAMAGE (ERR): the rank found damaged metadata it serves around (a damage table entry).
- MDS_TRIM: behind on trimming the journal (computed by the journal's segments).
- MDS_SLOW_REQUEST: client requests in flight longer than `mds_op_complaint_time`.
- MDS_SLOW_METADATA_IO: osd ops (journal writes, reads, write-backs) in flight longer than
  `osd_op_complaint_time`; the osd is then taken to be laggy.
- MDS_CLIENTS_LAGGY: clients due for eviction that are spared because the osd is laggy
  (`defer_client_eviction_on_laggy_osds`, see `SessionMap.idle`).

Metrics are dicts as the beacon carries them: type (the health code), severity, message and
optional metadata. The monitor turns them into checks (ref H8).
"""

from __future__ import annotations

import itertools

HEALTH_WARN = "HEALTH_WARN"
HEALTH_ERR = "HEALTH_ERR"


class InFlight:
    """Operations in flight with the (monotonic) time each started."""

    def __init__(self) -> None:
        self._started: dict[int, float] = {}
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._started)

    def start(self, now: float) -> int:
        op = next(self._ids)
        self._started[op] = now
        return op

    def done(self, op: int) -> None:
        self._started.pop(op, None)

    def blocked(self, now: float, complaint: float) -> tuple[int, float]:
        """(how many have waited longer than `complaint`, how long the oldest has waited)."""
        ages = [now - t for t in self._started.values() if now - t > complaint]
        return len(ages), max(ages, default=0.0)


def _metric(code: str, message: str, severity: str = HEALTH_WARN, **metadata) -> dict:
    out = {"type": code, "severity": severity, "message": message}
    if metadata:
        out["metadata"] = metadata
    return out


def osd_laggy(ios: InFlight, now: float, io_complaint: float) -> bool:
    """An osd op blocked past the complaint time: the osd is as good as laggy to us."""
    return ios.blocked(now, io_complaint)[0] > 0


def metrics(now: float, *, requests: InFlight, ios: InFlight, op_complaint: float,
            io_complaint: float, damaged: bool = False, trim: list[dict] | None = None,
            laggy_clients: list[int] | None = None) -> list[dict]:
    """The rank's health metrics, in the order Ceph's notify_health adds them."""
    out = []
    if damaged:
        out.append(_metric("MDS_DAMAGE", "Metadata damage detected", HEALTH_ERR))
    out.extend(trim or [])
    slow, _ = requests.blocked(now, op_complaint)
    if slow:
        out.append(_metric("MDS_SLOW_REQUEST",
                           f"{slow} slow requests are blocked > {op_complaint:g} secs"))
    slow, oldest = ios.blocked(now, io_complaint)
    if slow:
        out.append(_metric("MDS_SLOW_METADATA_IO",
                           f"{slow} slow metadata IOs are blocked > {io_complaint:g} secs, "
                           f"oldest blocked for {int(oldest)} secs"))
    for client in sorted(laggy_clients or []):
        out.append(_metric("MDS_CLIENTS_LAGGY", f"Client {client} is laggy; not evicted "
                                                f"because some OSD(s) is/are laggy"))
    return out
