"""The monitor's OSD side, as far as mdsemu needs one: an osd announces where it serves ops and
the OSDMap records it (so MDS daemons and tools find the metadata pool's osd)."""

from __future__ import annotations

from mon.mds_monitor import MDSMonitor


def osd_boot(mon: MDSMonitor, osd_id: int, addr: str, now: float, wall: float) -> None:
    if mon.view_osd.osd_addrs.get(osd_id) == addr:
        return
    mon.posd.osd_addrs[osd_id] = addr
    mon.clog(wall, "INF", f"osd.{osd_id} {addr} boot")
    mon._commit(now, wall)
