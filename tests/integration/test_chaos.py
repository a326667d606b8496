"""Fault injection and the thrasher with real processes (fast profile, grace 1 s).

What users see: `mdsemu fs dump -f json`, the daemons' pids and logs, `mdsemu thrash`'s exit
status and report.json."""

from __future__ import annotations

import pytest

from tests.integration.cluster import active, info_by_name, proc_state

pytestmark = [pytest.mark.processes]

WAIT = 15.0


@pytest.mark.timeout(90)
def test_ms_blackhole_mon_fails_the_active_over_and_clearing_it_brings_it_back(cluster):
    """`config set mds.X ms_blackhole_mon true` at run time: the active's beacons vanish while
    its process runs on (not stopped, same pid); the mon replaces it after the grace. Clearing
    the option (`config rm` on the mon, which can no longer tell it; `daemon mds.X config set`
    through the admin socket) lets it hear the map: it respawns in place as a standby."""
    c = cluster
    old = active(c.fs_dump())
    name, pid = old["name"], c.pid_of(old["name"])
    c.cli("config", "set", f"mds.{name}", "ms_blackhole_mon", "true", check=True)
    replaced = c.wait_map(lambda d: active(d) and active(d)["gid"] != old["gid"], WAIT,
                          "a standby to replace the blackholed active")
    assert info_by_name(replaced, name) is None
    assert c.mds(name).alive() and proc_state(pid) != "T"  # running, just unheard
    assert f"marking {old['gid']} {old['addr']} mds.0.{old['incarnation']} up:active laggy" \
        in c.mon.log()

    c.cli("config", "rm", f"mds.{name}", "ms_blackhole_mon", check=True)
    c.cli("daemon", f"mds.{name}", "config", "set", "ms_blackhole_mon", "false", check=True)
    back = c.wait_map(lambda d: (i := info_by_name(d, name)) and i["state"] == "up:standby",
                      WAIT, f"mds.{name} to come back as a standby")
    assert info_by_name(back, name)["gid"] != old["gid"]
    assert c.pid_of(name) == pid and "respawn" in c.mds(name).log()
    assert active(c.fs_dump())["gid"] == active(replaced)["gid"]
