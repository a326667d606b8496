"""Replacement selection, standby-replay and the legacy standby options (S1–S8, seed 001)."""

from __future__ import annotations

from common import states
from tests.unit.monsim import Cluster, healthy


def _fresh(*daemons: tuple[str, dict], max_mds: int = 1, **options) -> Cluster:
    """An fs created before any daemon boots, so every daemon's mds_join_fs resolves. It is
    made joinable only once all have booted: otherwise the tick after the first boot's commit
    (T0) would give that daemon the rank, whatever the others' priority."""
    c = Cluster(**options)
    c.new_fs()
    if max_mds != 1:
        c.cmd("fs", "set", "cephfs", "max_mds", str(max_mds))
    assert c.cmd("fs", "set", "cephfs", "joinable", "false")[0] == 0
    for name, kw in daemons:
        c.add(name, **kw)
    assert c.cmd("fs", "set", "cephfs", "joinable", "true")[0] == 0
    return c


def test_S1_follower_preferred() -> None:
    c = healthy("a", "b", "c", standby_replay=True)
    active, follower, standby = c.holder(), c.follower(), c.standbys()[0]
    c.kill(standby)
    c.restart(standby)  # now the vanilla standby with the highest gid (S2's pick)
    assert c.daemons[standby].gid > c.daemons[follower].gid
    assert c.take_clog() == [f"daemon mds.{standby} restarted"]
    c.kill(active)
    c.until(lambda: c.holder() == follower and c.all_active(), within=25)
    assert c.daemons[follower].history[-5:] == [
        "up:standby-replay", "up:replay", "up:reconnect", "up:rejoin", "up:active"]
    assert c.take_clog()[0] == (f"Replacing daemon mds.{active} as rank 0 with standby daemon "
                                f"mds.{follower}")
    # The standby follows the new active once it is active (S6).
    c.advance(5)
    assert c.follower() == standby


def test_S1_frozen_follower_blocks_failover() -> None:
    c = healthy("a", "b", "c", standby_replay=True)
    active, follower = c.holder(), c.follower()
    assert c.cmd("mds", "freeze", follower, "true")[0] == 0
    c.kill(active)
    c.advance(60)
    assert c.holder() == active and c.info(active).laggy  # no fallback to the standby
    assert "FS_WITH_FAILED_MDS" not in c.health()


def test_S2_join_fs_priority_and_vanilla_highest_gid() -> None:
    c = _fresh(("a", {}), ("b", {"fs": "cephfs"}), ("c", {"fs": "cephfs"}), ("d", {}))
    c.tick()
    assert c.ranks() == {0: ("b", "up:active")}  # the lowest pinned gid
    # Without a pinned standby, the vanilla one with the highest gid wins.
    c = _fresh(("a", {}), ("b", {}), ("c", {}))
    c.tick()
    assert c.holder() == "c"
    assert "daemon mds.c assigned to filesystem cephfs as rank 0 (now has 1 ranks)" in c.take_clog()


def test_S2_standby_pinned_elsewhere_is_the_last_resort() -> None:
    c = Cluster()
    c.new_fs()
    c.new_fs("other")
    c.add("x", fs="other")
    c.add("y", fs="other")
    c.tick()  # ranks are filled fs by fs, in fscid order
    assert c.holder(fs="cephfs") == "x"  # pinned to another fs, but better than nothing
    assert c.holder(fs="other") == "y"
    # refuse_standby_for_another_fs: such a standby is not used at all.
    c = Cluster()
    c.new_fs()
    c.new_fs("other")
    assert c.cmd("fs", "set", "cephfs", "refuse_standby_for_another_fs", "true")[0] == 0
    c.add("x", fs="other")
    c.add("y", fs="other")
    c.advance(30)
    assert c.holder(fs="other") == "x" and c.fs().up == {} and c.standbys() == ["y"]
    assert {"MDS_ALL_DOWN", "MDS_UP_LESS_THAN_MAX"} <= c.health()


def test_S4_failed_ranks_are_filled_first() -> None:
    c = healthy("a", "b", "c", "d", max_mds=2)
    spares = c.standbys()
    assert c.cmd("fs", "set", "cephfs", "joinable", "false")[0] == 0  # no refill in between
    for rank in (0, 1):
        name = c.holder(rank)
        c.kill(name)
        c.cmd("mds", "fail", name)
    assert c.fs().failed == {0, 1}
    assert c.cmd("fs", "set", "cephfs", "joinable", "true")[0] == 0  # its commit ticks (T0)
    clog = c.take_clog()
    assert [m for m in clog if m.startswith("Standby daemon")] == [
        f"Standby daemon mds.{spares[1]} assigned to filesystem cephfs as rank 0",
        f"Standby daemon mds.{spares[0]} assigned to filesystem cephfs as rank 1",
    ]
    assert c.all_active()  # both went replay → resolve → reconnect → rejoin → active
    for name in spares:
        assert c.daemons[name].history[2:] == [
            "up:replay", "up:resolve", "up:reconnect", "up:rejoin", "up:active"]


def test_S6_one_follower_per_rank() -> None:
    c = healthy("a", "b", "c", "d", "e", max_mds=2, standby_replay=True)
    fs = c.fs()
    followers = sorted((f.rank, f.name) for f in fs.followers())
    assert [r for r, _ in followers] == [0, 1]
    assert len(c.standbys()) == 1
    assert c.mon.fsmap.effective_epoch(c.daemons[followers[0][1]].gid) == fs.epoch
    # A follower keeps incarnation 0 (S6) and sorts after its active in `fs get` (O3).
    _, _, text = c.cmd("fs", "get", "cephfs")
    lines = [line for line in text.splitlines() if line.startswith("[mds.")]
    assert [line.split(" state ")[1].split(" ")[0] for line in lines] == [
        "up:active", "up:standby-replay", "up:active", "up:standby-replay"]
    assert all(f.inc == 0 for f in fs.followers())


def test_S6_no_followers_while_degraded() -> None:
    c = healthy("a", "b", max_mds=1)
    holder, spare = c.holder(), c.standbys()[0]
    c.daemons[spare].hold = {states.REPLAY}
    c.kill(holder)
    c.cmd("mds", "fail", holder)
    c.tick()
    assert c.state(spare) == "up:replay"
    c.restart(holder)
    assert c.cmd("fs", "set", "cephfs", "allow_standby_replay", "true")[0] == 0
    c.advance(30)
    assert c.fs().is_degraded() and not c.fs().followers() and c.standbys() == [holder]
    c.release(spare)
    c.advance(5)
    assert c.follower() == holder


def test_S7_clearing_allow_standby_replay_fails_followers() -> None:
    c = healthy("a", "b", "c", max_mds=1, standby_replay=True)
    follower = c.follower()
    gid = c.daemons[follower].gid
    rc, outs, _ = c.cmd("fs", "set", "cephfs", "allow_standby_replay", "false")
    assert rc == 0
    assert not c.mon.fsmap.gid_exists(gid) and not c.mon.osdmap.blocklist
    assert c.daemons[follower].respawns == 1 and follower in c.standbys()
    c.advance(30)
    assert c.fs().followers() == []
    assert not c.json("fs", "get", "cephfs")["mdsmap"]["flags_state"]["allow_standby_replay"]


def test_S3_fs_rm_resets_join_fs() -> None:
    c = Cluster()
    c.new_fs()
    c.new_fs("other")
    c.add("a", fs="other")
    c.add("b", fs="other")
    c.tick()
    c.add("c", fs="other")
    assert c.info("c").join_fscid == 2
    c.cmd("fs", "fail", "other")
    assert c.cmd("fs", "rm", "other", "--yes-i-really-mean-it")[0] == 0
    assert all(i.join_fscid == -1 for i in c.mon.fsmap.all_infos())


def test_two_filesystems_sharing_standbys() -> None:
    c = Cluster()
    c.new_fs()
    c.new_fs("other")
    for name in ("a", "b", "c"):
        c.add(name)  # T0: each boot's commit ticks, so a and b take the ranks as they boot
    c.until(lambda: c.all_active() and c.all_active("other"))
    assert c.standbys() == ["c"]
    assert c.cmd("mds", "stat")[2] == "cephfs:1 other:1 {cephfs:0=a=up:active,other:0=b=up:active} 1 up:standby"
    c.kill("a")
    c.until(lambda: c.holder() == "c" and c.all_active(), within=25)
    c.kill("b")  # no standby left: the holder of other:0 stays, laggy (T6)
    c.advance(40)
    assert c.holder(fs="other") == "b" and c.info("b").laggy
    c.restart("a")  # comes back as a standby; the tick after its boot (T0) replaces b
    assert c.holder(fs="other") == "a" and c.standbys() == []
    c.until(lambda: c.all_active("other"), within=10)


# -- seed 001: the legacy mds_standby_* options


def test_seed001_simple_pair() -> None:
    pair = {"standby_replay": True, "standby_for_rank": 0}
    c = Cluster()
    c.add("a", **pair)
    c.add("b", **pair)
    c.new_fs()
    c.until(lambda: c.all_active() and c.follower() is not None)
    assert not c.fs().allow_standby_replay
    first, second = c.holder(), c.follower()
    assert {first, second} == {"a", "b"}
    c.kill(first)
    c.until(lambda: c.holder() == second and c.all_active(), within=25)
    c.restart(first)
    c.advance(5)
    assert c.follower() == first and c.standbys() == []


def test_seed001_standby_for_fscid_steers_two_filesystems() -> None:
    c = Cluster()
    for name, fscid in (("a", 1), ("b", 1), ("c", 2), ("d", 2)):
        c.add(name, standby_for_fscid=fscid)
    c.new_fs()
    c.new_fs("other")
    c.until(lambda: c.all_active() and c.all_active("other"))
    assert (c.holder(), c.holder(fs="other")) == ("a", "c")
    c.kill("a")
    c.until(lambda: c.holder() == "b" and c.all_active(), within=25)
    c.kill("b")  # d is a standby for fscid 2 only: cephfs waits, laggy
    c.advance(60)
    assert c.holder() == "b" and c.info("b").laggy and c.standbys() == ["d"]
    c.kill("c")
    c.until(lambda: c.holder(fs="other") == "d", within=25)


def test_seed001_standby_for_rank_is_preferred() -> None:
    c = _fresh(("a", {}), ("b", {"standby_for_rank": 1}), ("c", {}), max_mds=2)
    c.until(c.all_active)
    assert c.ranks() == {0: ("c", "up:active"), 1: ("b", "up:active")}


def test_seed001_standby_for_name_follows_that_daemon() -> None:
    c = Cluster()
    c.add("a")
    c.new_fs()
    c.until(c.all_active)
    c.add("b", standby_replay=True, standby_for_name="x")  # aims at nobody here
    c.add("c", standby_replay=True, standby_for_name="a")
    c.advance(10)
    assert c.follower() == "c" and c.standbys() == ["b"]


def test_seed001_force_standby_active_false_keeps_replay_daemons_for_their_rank() -> None:
    aimed = {"standby_replay": True, "standby_for_rank": 0}
    c = Cluster()
    c.add("a")
    c.new_fs()
    c.until(c.all_active)
    c.add("b", **aimed)
    c.add("c", **aimed)
    c.advance(10)
    assert c.follower() == "b" and c.standbys() == ["c"]  # one follower per rank
    assert c.cmd("config", "set", "mon", "mon_force_standby_active", "false")[0] == 0
    assert c.cmd("fs", "set", "cephfs", "max_mds", "2")[0] == 0
    c.advance(30)
    assert c.fs().in_ == {0} and "MDS_UP_LESS_THAN_MAX" in c.health()
    assert c.cmd("config", "rm", "mon", "mon_force_standby_active")[0] == 0  # default true
    c.until(lambda: c.all_active(), within=10)
    assert c.holder(1) == "c"


def test_seed001_follower_aimed_at_the_rank_beats_an_untargeted_one() -> None:
    c = Cluster()
    c.add("a")
    c.new_fs()
    c.until(c.all_active)
    assert c.cmd("fs", "set", "cephfs", "joinable", "false")[0] == 0  # both boot before S6
    c.add("x", standby_replay=True)  # lower gid, follows anyone
    c.add("y", standby_replay=True, standby_for_rank=0)
    assert c.follower() is None
    assert c.cmd("fs", "set", "cephfs", "joinable", "true")[0] == 0
    assert c.follower() == "y" and c.standbys() == ["x"]


def test_seed001_standby_for_rank_means_the_legacy_client_fs() -> None:
    c = Cluster()
    c.new_fs()
    c.new_fs("other")
    c.add("a")
    c.add("b")
    c.until(lambda: c.all_active() and c.all_active("other"))
    assert c.cmd("fs", "set-default", "other") == (0, "", "")
    c.add("x", standby_replay=True, standby_for_rank=0)
    c.advance(5)
    assert c.follower(fs="other") == "x" and c.follower() is None


def test_seed001_legacy_follower_is_not_churned_by_affinity() -> None:
    c = Cluster()
    c.new_fs()
    c.add("a", fs="cephfs")
    c.until(c.all_active)
    c.add("f", standby_replay=True)
    c.add("p", fs="cephfs")  # a better affinity, but no flag to let it follow
    c.advance(10)
    assert c.follower() == "f" and c.standbys() == ["p"]
    epoch = c.mon.fsmap.epoch
    c.advance(60)
    assert c.mon.fsmap.epoch == epoch and c.daemons["f"].respawns == 0
    assert not c.fs().allow_standby_replay


def test_seed001_legacy_followers_stay_when_the_flag_is_cleared() -> None:
    c = Cluster()
    c.add("a")
    c.new_fs()
    c.until(c.all_active)
    c.cmd("fs", "set", "cephfs", "allow_standby_replay", "true")
    c.add("f", standby_replay=True, standby_for_rank=0)
    c.advance(5)
    assert c.follower() == "f"
    assert c.cmd("fs", "set", "cephfs", "allow_standby_replay", "false")[0] == 0
    assert c.follower() == "f" and c.daemons["f"].respawns == 0
