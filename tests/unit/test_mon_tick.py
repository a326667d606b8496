"""The monitor tick: failure detection and repair (ref T0–T7, §18), in virtual time."""

from __future__ import annotations

from structlog.testing import capture_logs

from common import states
from mon.mds_monitor import MDSMonitor
from tests.unit.monsim import WALL0, Cluster, healthy


def test_worked_failover_timeline() -> None:
    """§18: a dead active is replaced by the standby within grace + one tick."""
    c = healthy("a", "b")
    dead, spare = c.holder(), c.standbys()[0]
    last = c.daemons[dead].last_sent
    addr = c.daemons[dead].addr
    c.kill(dead)
    c.until(lambda: c.holder() == spare)
    replaced_at = c.t
    grace, tick = c.opt("mds_beacon_grace"), c.opt("mon_tick_interval")
    assert grace <= replaced_at - last < grace + tick
    fs = c.fs()
    assert c.mon.osdmap.is_blocklisted(addr)
    assert c.mon.osdmap.blocklist[addr] == c.wall + 86400
    assert fs.last_failure_osd_epoch == c.mon.osdmap.epoch
    assert fs.last_failure == 0  # modern Ceph no longer sets it
    c.until(c.all_active, within=5)
    assert c.daemons[spare].history == [
        "up:boot", "up:standby", "up:replay", "up:reconnect", "up:rejoin", "up:active"]
    assert c.take_clog() == [
        f"Replacing daemon mds.{dead} as rank 0 with standby daemon mds.{spare}",
        f"MDS daemon mds.{dead} is removed because it is dead or otherwise unavailable.",
        "Health check failed: 1 filesystem is degraded (FS_DEGRADED)",
        "Health check failed: insufficient standby MDS daemons available "
        "(MDS_INSUFFICIENT_STANDBY)",
        f"daemon mds.{spare} is now active in filesystem cephfs as rank 0",
        "Health check cleared: FS_DEGRADED (was: 1 filesystem is degraded)",
    ]


def test_T5_laggy_after_grace() -> None:
    c = healthy("a", "b")
    holder = c.holder()
    assert c.cmd("mds", "freeze", holder, "true")[0] == 0  # frozen: marked laggy, never dropped
    last = c.daemons[holder].last_sent
    c.kill(holder)
    c.until(lambda: c.info(holder).laggy, within=30)
    assert 15 <= c.t - last < 20
    assert c.info(holder).laggy_since == WALL0 + c.t
    _, _, stat = c.cmd("mds", "stat")
    assert f"{{0={holder}=up:active(laggy or crashed)}}" in stat
    info = c.json("fs", "dump")["filesystems"][0]["mdsmap"]["info"][f"gid_{c.info(holder).gid}"]
    assert "laggy_since" in info
    assert "FS_DEGRADED" not in c.health()  # H2: a laggy active alone is not degraded
    c.advance(60)
    assert c.holder() == holder  # frozen (A7)
    assert c.cmd("mds", "freeze", holder, "false")[0] == 0
    c.until(lambda: c.holder() != holder, within=5)


def test_T5_laggy_standby_is_dropped() -> None:
    c = healthy("a", "b", "c")
    standby = c.standbys()[0]
    c.kill(standby)
    c.advance(20)
    assert standby not in c.standbys() and not c.mon.osdmap.blocklist
    assert (f"MDS daemon mds.{standby} is removed because it is dead or otherwise unavailable."
            in c.take_clog())


def test_T6_holder_without_replacement_stays_laggy() -> None:
    c = healthy("a", "b")
    holder, standby = c.holder(), c.standbys()[0]
    assert c.cmd("mds", "freeze", standby, "true")[0] == 0  # beacons, but is no replacement
    c.kill(holder)
    c.advance(60)
    fs = c.fs()
    assert c.info(holder).laggy and fs.up == {0: c.daemons[holder].gid} and not fs.failed
    assert not c.mon.osdmap.blocklist
    assert c.cmd("mds", "freeze", standby, "false")[0] == 0
    c.until(lambda: c.holder() == standby, within=5)
    c.until(c.all_active, within=5)


def test_T0_T6_a_holder_nobody_can_replace_proposes_nothing_at_each_tick() -> None:
    """Rank 1's new holder stops beaconing in up:replay and no standby is left: it stays
    laggy, and the ticks commit no map (before, each tick copied the map into a proposal
    with a new epoch: a map every tick, and T0's ticks after a commit ran to their bound,
    "ticks after a commit keep proposing", seen in long thrash runs)."""
    with capture_logs() as logs:
        c = healthy("a", "b", "c", max_mds=2)
        spare = c.standbys()[0]
        c.daemons[spare].hold.add(states.REPLAY)
        c.kill(c.holder(1))
        c.until(lambda: c.ranks()[1] == (spare, "up:replay"))
        c.kill(spare)
        c.until(lambda: c.info(spare).laggy)
        epoch = c.mon.fsmap.epoch
        c.advance(60)
    assert c.mon.fsmap.epoch == epoch and c.ranks()[1] == (spare, "up:replay")
    assert not [e for e in logs if "keep proposing" in e["event"]]


def test_T6_a_holder_left_laggy_commits_no_more_maps() -> None:
    """Once marked laggy, a holder with no replacement changes nothing: the ticks propose
    nothing (no empty epoch each tick, which T0 answered with up to 50 ticks and commits)."""
    c = healthy("a", "b", mon_tick_interval=0.1)
    holder, standby = c.holder(), c.standbys()[0]
    assert c.cmd("mds", "freeze", standby, "true")[0] == 0  # beacons, but is no replacement
    c.kill(holder)
    c.until(lambda: c.info(holder).laggy, within=30)
    epoch, before = c.mon.fsmap.epoch, len(c.maps)
    c.advance(10)
    assert c.mon.fsmap.epoch == epoch and len(c.maps) == before
    assert c.info(holder).laggy and c.holder() == holder


def test_T6_not_joinable_blocks_replacement() -> None:
    c = healthy("a", "b")
    holder = c.holder()
    rc, outs, _ = c.cmd("fs", "set", "cephfs", "joinable", "false")
    assert (rc, outs) == (0, "cephfs marked not joinable; MDS cannot join as newly active.")
    c.kill(holder)
    c.advance(60)
    assert c.holder() == holder and c.info(holder).laggy
    rc, outs, _ = c.cmd("fs", "set", "cephfs", "joinable", "true")
    assert (rc, outs) == (0, "cephfs marked joinable; MDS may join as newly active.")
    c.until(lambda: c.holder() != holder and c.all_active(), within=10)


def test_T4_no_removal_when_no_beacons_arrive() -> None:
    c = healthy("a", "b")
    holder = c.holder()
    before = {d.gid for d in c.daemons.values()}
    c.kill("a")
    c.kill("b")
    c.advance(120)
    infos = c.mon.fsmap.all_infos()
    assert {i.gid for i in infos} == before and all(i.laggy for i in infos)
    assert c.holder() == holder and not c.mon.osdmap.blocklist
    # Once one daemon gets through again, decisive action resumes: the other one goes.
    c.restart("a" if holder == "b" else "b")
    c.until(lambda: c.holder() != holder and c.all_active(), within=30)


def test_T1_slow_tick_resets_stamps() -> None:
    c = healthy("a", "b")
    holder = c.holder()
    last = c.daemons[holder].last_sent
    c.kill(holder)
    c.next_tick = c.t + 40  # the mon cannot tick for 40 s (a slow election)
    c.advance(40)
    assert c.holder() == holder and not c.info(holder).laggy  # the stamps were reset
    stalled_until = c.t
    c.until(lambda: c.holder() != holder, within=30)
    assert c.t - stalled_until >= c.opt("mds_beacon_grace")
    assert c.t - last > 40 + 15


def test_T3_new_quorum_defers_removal() -> None:
    c = Cluster(mon_age=0)  # the mon has just formed its quorum
    for name in ("a", "b"):
        c.add(name)
    c.new_fs()
    c.until(c.all_active)
    holder = c.holder()
    c.kill(holder)
    c.until(lambda: c.holder() != holder, within=90)
    assert c.t >= c.opt("mds_beacon_mon_down_grace")  # not at grace + tick (about 20 s)


def test_T2_T3_restarted_mon_gives_every_daemon_a_full_grace() -> None:
    c = healthy("a", "b")
    holder = c.holder()
    c.kill(holder)
    c.advance(14)
    # The mon restarts from its store: no beacon stamps, a new quorum.
    c.mon = MDSMonitor(c.config, c.mon.fsmap, c.mon.osdmap, c.mon.next_gid, now=c.t)
    restarted = c.t
    c.until(lambda: c.holder() != holder, within=90)
    assert c.t - restarted >= c.opt("mds_beacon_mon_down_grace")


def test_T0_standby_count_wanted_becomes_one() -> None:
    c = Cluster()
    c.add("a")
    c.new_fs()
    c.until(c.all_active)
    c.advance(30)
    assert c.fs().standby_count_wanted == -1  # no standby ever: nothing to want
    c.add("b")
    c.advance(5)
    assert c.fs().standby_count_wanted == 1
    assert c.json("fs", "get", "cephfs")["mdsmap"]["standby_count_wanted"] == 1


def test_T7_affinity_moves_active() -> None:
    c = healthy("a", "b")
    holder, standby = c.holder(), c.standbys()[0]
    c.daemons[standby].fs = "cephfs"  # mds_join_fs = cephfs, picked up by the next beacon
    c.until(lambda: c.holder() == standby, within=15)
    assert (f"Dropping low affinity active daemon mds.{holder} in favor of higher affinity "
            "standby.") in c.take_clog()
    c.until(c.all_active, within=5)
    c.advance(60)  # stable: the pinned daemon stays, the vanilla one is the standby
    assert c.holder() == standby and c.standbys() == [holder]


def test_T7_affinity_moves_standby_replay() -> None:
    c = healthy("a", "b", "c", standby_replay=True)
    active, follower, standby = c.holder(), c.follower(), c.standbys()[0]
    c.daemons[standby].fs = "cephfs"
    before = len(c.maps)
    c.until(lambda: c.holder() == standby and c.all_active(), within=15)
    # One move per tick: the pinned standby follows first; then, at the tick after that commit
    # (T0), the pinned follower is the better replacement for the vanilla active.
    assert standby in [m.fs_by_name("cephfs").follower(0).name for m in c.maps[before:]
                       if m.fs_by_name("cephfs").follower(0) is not None]
    assert c.take_clog()[:3] == [
        f"Dropping low affinity standby-replay daemon mds.{follower} in "
        "favor of higher affinity standby.",
        f"Dropping low affinity active daemon mds.{active} in favor of higher affinity standby.",
        f"Replacing daemon mds.{active} as rank 0 with standby daemon mds.{standby}"]
    c.advance(60)
    assert c.holder() == standby and c.follower() in (active, follower)
    assert not c.take_clog()


def test_T7_no_affinity_moves_while_degraded() -> None:
    c = healthy("a", "b", "c", max_mds=2)
    spare, victim = c.standbys()[0], c.holder(1)
    c.daemons[spare].hold = {states.REPLAY}  # its replay of rank 1 never finishes
    c.kill(victim)
    assert c.cmd("mds", "fail", victim)[0] == 0
    c.until(lambda: c.state(spare) == "up:replay", within=10)
    c.add("d", fs="cephfs")
    c.advance(30)
    assert c.fs().is_degraded() and "d" in c.standbys()
    assert not any("Dropping low affinity" in m for m in c.take_clog())
    c.release(spare)
    c.until(lambda: "d" not in c.standbys(), within=15)
    assert any(m.startswith("Dropping low affinity active daemon") for m in c.take_clog())


def test_T7_ignores_daemons_already_pinned_here() -> None:
    c = Cluster()
    for name in ("a", "b"):
        c.add(name, fs="cephfs")
    c.new_fs()
    c.until(c.all_active)
    c.advance(10)  # a booted before cephfs existed: its next beacon sets join_fscid
    assert [i.join_fscid for i in c.mon.fsmap.all_infos()] == [1, 1]
    epoch = c.mon.fsmap.epoch
    c.advance(60)
    assert c.mon.fsmap.epoch == epoch


def test_ticks_are_quiet_when_nothing_happens() -> None:
    c = healthy("a", "b", "c", standby_replay=True)
    epoch, blocklist = c.mon.fsmap.epoch, dict(c.mon.osdmap.blocklist)
    c.advance(600)
    assert c.mon.fsmap.epoch == epoch and c.mon.osdmap.blocklist == blocklist
    assert not c.take_clog()


def test_blocklist_entries_expire() -> None:
    c = healthy("a", "b", mon_mds_blocklist_interval=3600)
    holder = c.holder()
    addr = c.daemons[holder].addr
    c.cmd("mds", "fail", holder)
    assert c.mon.osdmap.blocklist[addr] == c.wall + 3600
    c.advance(3600 + 5)
    assert not c.mon.osdmap.is_blocklisted(addr)


# -- T0: Ceph's PaxosService::_active runs MDSMonitor::on_active, hence tick(), on the leader
# after every FSMap commit, so repairs do not wait for the next mon_tick_interval (5 s).
def _new_maps(c: Cluster, before: int, fs: str = "cephfs") -> list:
    return [(m.epoch, m.fs_by_name(fs)) for m in c.maps[before:]]


def test_T0_mds_fail_is_repaired_in_the_next_proposal_without_a_tick() -> None:
    c = healthy("a", "b")
    holder, spare = c.holder(), c.standbys()[0]
    t, before = c.t, len(c.maps)
    assert c.cmd("mds", "fail", holder)[0] == 0
    assert c.t == t  # no time passed, no periodic tick ran
    (e1, failed), (e2, repaired) = _new_maps(c, before)[:2]
    assert failed.failed == {0} and not failed.up  # the command's own proposal
    assert e2 == e1 + 1 and repaired.holder(0).name == spare and not repaired.failed
    assert [m for m in c.take_clog() if not m.startswith("Health check")][:2] == [
        f"daemon mds.{holder} marked failed by client.admin",
        f"Standby daemon mds.{spare} assigned to filesystem cephfs as rank 0"]


def test_T0_max_mds_growth_in_the_next_proposal() -> None:
    c = healthy("a", "b")
    t, before = c.t, len(c.maps)
    assert c.cmd("fs", "set", "cephfs", "max_mds", "2")[0] == 0
    assert c.t == t
    (e1, grown), (e2, assigned) = _new_maps(c, before)[:2]
    assert grown.max_mds == 2 and grown.in_ == {0}
    assert e2 == e1 + 1 and assigned.in_ == {0, 1} and assigned.holder(1) is not None


def test_T0_follower_assigned_in_the_next_proposal() -> None:
    c = healthy("a", "b")
    spare = c.standbys()[0]
    t, before = c.t, len(c.maps)
    assert c.cmd("fs", "set", "cephfs", "allow_standby_replay", "true")[0] == 0
    assert c.t == t
    (e1, allowed), (e2, following) = _new_maps(c, before)[:2]
    assert allowed.allow_standby_replay and allowed.follower(0) is None
    assert e2 == e1 + 1 and following.follower(0).name == spare


def test_T0_a_tick_that_proposes_nothing_ends_the_chain() -> None:
    c = healthy("a", "b")
    before = len(c.maps)
    assert c.cmd("fs", "set", "cephfs", "session_timeout", "61")[0] == 0
    assert len(c.maps) == before + 1
    assert not c.mon.tick(c.t, c.wall).changed  # nothing to do: no proposal at all
