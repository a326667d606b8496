"""The monitor's plain parts, with plain numbers: beacon times (T1–T4), the config database."""

from __future__ import annotations

from common.config import Config
from mon.beacon_times import BeaconTimes
from mon.config_monitor import ConfigMonitor

GRACE, INTERVAL, DOWN_GRACE = 15.0, 4.0, 60.0


def test_T2_stamps_follow_the_map() -> None:
    b = BeaconTimes(now=0.0)
    b.note(7, 1.0, seq=3)
    b.sync([7, 8], now=2.0)  # 8 is new to the mon: it gets a stamp from now
    assert {g: (s.stamp, s.seq) for g, s in b.stamps.items()} == {7: (1.0, 3), 8: (2.0, 0)}
    b.sync([8], now=3.0)
    assert list(b.stamps) == [8]


def test_T3_a_new_quorum_defers_removal_until_the_down_grace() -> None:
    b = BeaconTimes(now=0.0)
    b.sync([1, 2], now=0.0)
    b.note(2, 30.0, seq=1)
    assert b.overdue(31.0, GRACE, INTERVAL, DOWN_GRACE) == ([], True)
    b.note(2, 70.0, seq=2)
    assert b.overdue(71.0, GRACE, INTERVAL, DOWN_GRACE) == ([(1, 71.0)], True)


def test_T4_no_replacement_while_every_beacon_is_late() -> None:
    b = BeaconTimes(now=-100.0)
    b.sync([1, 2], now=0.0)
    late, may_replace = b.overdue(20.0, GRACE, INTERVAL, DOWN_GRACE)
    assert late == [(1, 20.0), (2, 20.0)] and not may_replace


def test_T1_a_mon_that_could_not_tick_resets_the_stamps() -> None:
    b = BeaconTimes(now=0.0)
    b.sync([1], now=0.0)
    b.tick(5.0, GRACE, INTERVAL)  # on time: nothing reset
    assert b.stamps[1].stamp == 0.0
    b.tick(17.0, GRACE, INTERVAL)  # 12 s without a tick > grace - interval
    assert b.stamps[1].stamp == 17.0 and b.last_tick == 17.0


def test_config_database_applies_the_mons_own_values_at_once() -> None:
    config = Config("mon.a")
    c = ConfigMonitor(config)
    c.set("mds", "mds_beacon_grace", "30")
    assert config.get("mds_beacon_grace") == 15  # not this mon's section
    c.set("mon.a", "mds_beacon_grace", "20")
    assert config.get("mds_beacon_grace") == 20
    assert c.values_for("mds.x") == {"mds_beacon_grace": "30"}
    assert not c.rm("mon", "mds_beacon_grace")  # nothing there
    assert c.rm("mon.a", "mds_beacon_grace") and "mon.a" not in c.db
    assert config.get("mds_beacon_grace") == 15
