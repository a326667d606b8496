"""The monitor's OSD side, sans-IO, as far as mdsemu needs one: an osd announces where it
serves ops and the OSDMap records it (so MDS daemons and tools find the metadata pool's osd).
`MDSMonitor.osd_boot` opens the proposal; this decides what goes in it."""

from __future__ import annotations

from mon.proposal import Proposal


def prepare_boot(p: Proposal, osd_id: int, addr: str, wall: float) -> None:
    """OSDMonitor::prepare_boot, trimmed: a new address is recorded and logged; the same
    address again proposes nothing."""
    if p.osd_view.osd_addrs.get(osd_id) == addr:
        return
    p.osdmap.osd_addrs[osd_id] = addr
    p.clog(wall, "INF", f"osd.{osd_id} {addr} boot")
