"""Rank state machine as the monitor enforces it (R1–R3, R8) and map epochs (O1)."""

from __future__ import annotations

from common import states
from tests.unit.monsim import Cluster, healthy


def test_R1_a_daemon_cannot_take_a_mon_driven_state() -> None:
    c = healthy("a", "b", "c", max_mds=2)
    holder = c.holder(1)
    gid = c.daemons[holder].gid
    assert c.beacon(holder, state=states.CREATING).null_map  # only the mon promotes
    assert not c.mon.fsmap.gid_exists(gid)
    assert not c.fs().failed and c.holder(1) not in (None, holder)  # T0: refilled at once


def test_R2_every_state_a_daemon_saw_followed_a_valid_transition() -> None:
    c = healthy("a", "b", "c", "d", max_mds=2, standby_replay=True)
    for name in ("a", "b"):
        c.kill(name)
        c.until(c.all_active, within=30)
        c.restart(name)
    c.cmd("fs", "set", "cephfs", "max_mds", "1")
    c.advance(30)
    for d in c.daemons.values():
        runs = "/".join(d.history).split("up:boot")
        for run in runs:
            seen = [states.BY_NAME[s] for s in run.strip("/").split("/") if s]
            for old, new in zip(seen, seen[1:], strict=False):
                assert states.transition_valid(old, new), (d.name, d.history)


def test_R3_ranks_wait_in_resolve_for_each_other() -> None:
    c = healthy("a", "b", "c", "d", "e", max_mds=2)
    for name in c.standbys():
        c.daemons[name].hold = {states.REPLAY}
    for rank in (0, 1):
        name = c.holder(rank)
        c.kill(name)
        c.cmd("mds", "fail", name)
    c.tick()
    slow, quick = c.holder(0), c.holder(1)
    c.release(quick)  # rank 1 finishes replay first
    assert c.ranks() == {0: (slow, "up:replay"), 1: (quick, "up:resolve")}
    c.advance(30)
    assert c.ranks()[1] == (quick, "up:resolve")  # not resolving while a rank replays
    c.release(slow)
    assert c.all_active()
    assert c.daemons[quick].history[-4:] == ["up:resolve", "up:reconnect", "up:rejoin",
                                            "up:active"]


def test_R3_a_single_rank_is_alone_and_skips_resolve() -> None:
    c = healthy("a", "b")
    spare = c.standbys()[0]
    c.kill(c.holder())
    c.until(c.all_active, within=25)
    assert "up:resolve" not in c.daemons[spare].history


def test_R8_incarnation_changes_on_every_promotion() -> None:
    c = healthy("a", "b", "c")
    incs = [c.info(c.holder()).inc]
    for _ in range(3):
        holder = c.holder()
        c.kill(holder)
        c.until(lambda h=holder: c.holder() not in (None, h) and c.all_active(), within=25)
        incs.append(c.info(c.holder()).inc)
        c.restart(holder)
    assert incs == sorted(set(incs))


def test_O1_epochs() -> None:
    c = Cluster()
    c.new_fs()
    c.new_fs("other")
    for name in ("a", "b", "c"):
        c.add(name)
    c.until(lambda: c.all_active() and c.all_active("other"))
    c.advance(10)
    m = c.mon.fsmap
    standby = c.standbys()[0]
    one, two = c.fs(), c.fs("other")
    assert one.epoch != two.epoch and max(one.epoch, two.epoch) <= m.epoch
    assert c.mon.fsmap.standby_epochs[c.daemons[standby].gid] <= m.epoch
    before = (one.epoch, two.epoch, m.epoch)
    c.cmd("fs", "set", "other", "session_timeout", "90")
    m = c.mon.fsmap
    assert m.epoch == before[2] + 1
    assert c.fs("other").epoch == m.epoch and c.fs().epoch == before[0]
    rc, _, text = c.cmd("fs", "get", "other")
    assert f"epoch\t{m.epoch}" in text and "session_timeout\t90" in text
