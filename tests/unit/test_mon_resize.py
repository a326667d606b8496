"""Growing and shrinking the number of active ranks (ref X1–X7)."""

from __future__ import annotations

from common import states
from tests.unit.monsim import healthy


def test_X2_grow_one_rank_per_tick_no_holes() -> None:
    c = healthy("a", "b", "c", "d")
    before = len(c.maps)
    assert c.cmd("fs", "set", "cephfs", "max_mds", "3") == (0, "", "")
    # T0: the command's commit ticks at once, and so does every commit after it; each tick adds
    # at most one rank, and none while another is still creating (X1)
    sizes = [sorted(m.fs_by_name("cephfs").in_) for m in c.maps[before:]]
    assert [k for i, k in enumerate(sizes) if i == 0 or sizes[i - 1] != k] == [
        [0], [0, 1], [0, 1, 2]]
    assert [m for m in c.take_clog() if "assigned" in m] == [
        f"daemon mds.{c.holder(1)} assigned to filesystem cephfs as rank 1 (now has 2 ranks)",
        f"daemon mds.{c.holder(2)} assigned to filesystem cephfs as rank 2 (now has 3 ranks)",
    ]
    assert c.all_active() and len(c.standbys()) == 1


def test_X1_a_creating_rank_blocks_further_growth() -> None:
    c = healthy("a", "b", "c", "d")
    for name in c.standbys():
        c.daemons[name].hold = {states.CREATING}
    c.cmd("fs", "set", "cephfs", "max_mds", "3")
    c.advance(30)
    assert sorted(c.fs().in_) == [0, 1] and "up:creating" in dict(c.ranks().values()).values()
    c.release(c.holder(1))
    c.tick()
    assert sorted(c.fs().in_) == [0, 1, 2]


def test_X2_no_standby_keeps_up_less_than_max() -> None:
    c = healthy("a")
    c.cmd("fs", "set", "cephfs", "max_mds", "2")
    c.advance(30)
    assert c.fs().in_ == {0}
    detail = c.mon.health_checks()["MDS_UP_LESS_THAN_MAX"].detail
    assert detail == ("fs cephfs has 1 MDS online, but wants 2",)
    c.add("b")
    c.tick()
    assert c.all_active() and "MDS_UP_LESS_THAN_MAX" not in c.health()


def test_X3_X4_shrink_highest_first_to_stopped() -> None:
    c = healthy("a", "b", "c", "d", "e", max_mds=3, standby_replay=True)
    assert len(c.fs().followers()) == 2
    holders = {r: c.holder(r) for r in range(3)}
    follower2 = c.follower(2)
    c.cmd("fs", "set", "cephfs", "max_mds", "1")
    # T0: each commit ticks at once; each tick stops one rank, the highest, once the one before
    # has finished
    assert [m for m in c.take_clog() if "stopping" in m] == [
        f"stopping daemon mds.{holders[2]}",
        f"daemon mds.{holders[2]} finished stopping rank 2 in filesystem cephfs (now has 2 ranks)",
        f"stopping daemon mds.{holders[1]}",
        f"daemon mds.{holders[1]} finished stopping rank 1 in filesystem cephfs (now has 1 ranks)",
    ]
    for rank in (1, 2):
        assert c.daemons[holders[rank]].history[-4:] == [
            "up:active", "up:stopping", "up:boot", "up:standby"]
    assert follower2 is None or c.daemons[follower2].respawns == 1  # X4: its follower is failed
    assert c.fs().stopped == {1, 2} and c.fs().in_ == {0}
    assert not c.mon.osdmap.blocklist  # a clean stop is not fenced
    # Growing again restarts the stopped ranks: up:starting, not up:creating.
    c.cmd("fs", "set", "cephfs", "max_mds", "3")
    c.advance(15)
    assert c.all_active() and not c.fs().stopped
    for rank in (1, 2):
        assert c.daemons[c.holder(rank)].history[-2:] == ["up:starting", "up:active"]


def test_X3_only_an_active_rank_is_stopped() -> None:
    c = healthy("a", "b", "c", max_mds=2)
    c.daemons[c.holder(1)].hold = {states.STOPPING}
    c.cmd("fs", "set", "cephfs", "max_mds", "1")
    c.tick()
    assert c.ranks()[1][1] == "up:stopping"
    c.advance(30)
    assert c.ranks()[1][1] == "up:stopping"  # one at a time, and never twice
    assert sum("stopping daemon" in m for m in c.take_clog()) == 1


def test_X5_crash_while_stopping() -> None:
    c = healthy("a", "b", "c", max_mds=2)
    victim = c.holder(1)
    spare = c.standbys()[0]
    c.daemons[victim].hold = {states.STOPPING}
    c.cmd("fs", "set", "cephfs", "max_mds", "1")
    c.tick()
    assert c.state(victim) == "up:stopping"
    c.kill(victim)
    c.until(lambda: c.fs().in_ == {0}, within=25)  # replaced after the grace, then stopped
    assert c.fs().stopped == {1}
    assert f"Replacing daemon mds.{victim} as rank 1 with standby daemon mds.{spare}" in (
        c.take_clog())
    assert c.daemons[spare].history[-8:] == [
        "up:replay", "up:resolve", "up:reconnect", "up:rejoin", "up:active", "up:stopping",
        "up:boot", "up:standby"]


def test_X6_fs_down() -> None:
    c = healthy("a", "b", "c", max_mds=2)
    rc, outs, _ = c.cmd("fs", "set", "cephfs", "down", "true")
    assert (rc, outs) == (0, "cephfs marked down. ")
    assert c.fs().max_mds == 0 and c.fs().old_max_mds == 2
    c.advance(15)
    fs = c.fs()
    assert fs.in_ == set() and fs.stopped == {0, 1} and fs.up == {}
    assert c.standbys() == ["a", "b", "c"]
    assert c.health() == set()  # neither MDS_ALL_DOWN nor MDS_UP_LESS_THAN_MAX (H4)
    rc, outs, _ = c.cmd("fs", "set", "cephfs", "down", "false")
    assert (rc, outs) == (0, "cephfs marked up, max_mds = 2")
    c.advance(15)
    assert c.all_active() and c.fs().max_mds == 2


def test_X6_down_twice_and_up_twice() -> None:
    c = healthy("a", "b")
    assert c.cmd("fs", "set", "cephfs", "down", "true")[0] == 0
    assert c.cmd("fs", "set", "cephfs", "down", "true")[:2] == (0, "cephfs marked down. ")
    assert c.fs().old_max_mds == 1
    assert c.cmd("fs", "set", "cephfs", "down", "false")[:2] == (0, "cephfs marked up, max_mds = 1")
    assert c.cmd("fs", "set", "cephfs", "down", "false")[:2] == (0, "cephfs marked up, max_mds = 1")


def test_X7_max_mds_clears_not_joinable() -> None:
    c = healthy("a", "b")
    c.cmd("fs", "set", "cephfs", "joinable", "false")
    assert not c.fs().joinable
    assert c.cmd("fs", "set", "cephfs", "max_mds", "2")[0] == 0
    assert c.fs().joinable
    c.advance(10)
    assert c.all_active()


def test_X6_down_false_restores_old_max_mds_even_when_up() -> None:
    c = healthy("a", "b", "c", max_mds=2)
    assert c.cmd("fs", "set", "cephfs", "down", "false")[:2] == (0, "cephfs marked up, max_mds = 1")
    c.advance(10)
    assert c.fs().in_ == {0}


def test_X2_a_rank_is_stopped_only_once_its_holder_has_seen_itself_active() -> None:
    """max_mds lowered while rank 1's new holder is in up:rejoin: its request for up:active
    commits, and the tick right after that commit must not stop it yet. A daemon that gets
    only the newer map (maps are coalesced on the wire) would go rejoin -> stopping, an
    invalid transition, and respawn; so would every successor, forever. It is stopped once a
    beacon shows it has seen the map that made it active."""
    c = healthy("a", "b", "c", max_mds=2)
    old = c.holder(1)
    spare = c.standbys()[0]
    c.daemons[spare].hold = {states.REJOIN}
    c.cmd("mds", "fail", old)
    c.until(lambda: c.ranks().get(1) == (spare, "up:rejoin"), step=0.1)
    c.cmd("fs", "set", "cephfs", "max_mds", "1")
    c.release(spare)
    assert c.ranks()[1] == (spare, "up:active")  # not up:stopping in the same burst
    c.advance(5)
    assert c.fs().in_ == {0}
    assert c.daemons[spare].history[-4:] == ["up:active", "up:stopping", "up:boot",
                                              "up:standby"]
