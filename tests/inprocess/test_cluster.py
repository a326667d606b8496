"""A monitor and MDS daemons in one trio.run under the autojump clock, with Ceph's default
timings (grace 15 s, beacon 4 s, tick 5 s): real code and sockets, virtual time."""

from __future__ import annotations

import pytest
import trio

from client.admin import AdminClient
from common import states
from common.fsmap import FSMap
from tests.inprocess.harness import Cluster

pytestmark = pytest.mark.timeout(60)


CLUSTER = {}  # what conftest.cluster builds


async def _fs_with(c: Cluster, *names: str, **fs_set) -> None:
    await c.ok("fs", "new", "cephfs", "cephfs_metadata", "cephfs_data")
    for var, val in fs_set.items():
        await c.ok("fs", "set", "cephfs", var, str(val))
    for name in names:
        await c.start_mds(name)
    await c.wait_for(lambda: c.holder_name(), what="an active rank 0")
    await c.past_new_quorum()  # T3: a new quorum defers removals (60 s)


async def test_T5_T6_failover_after_grace_with_ceph_timings(cluster, autojump_clock):
    c = cluster
    await _fs_with(c, "a", "b")
    active = c.holder_name()
    standby = "b" if active == "a" else "a"
    t0 = trio.current_time()
    c.mds[active].kill()
    await c.wait_for(lambda: c.holder_name() == standby, what="the standby to take rank 0")
    took = trio.current_time() - t0
    # T10: the last beacon left up to one interval (4 s) before the kill; then the grace
    # (15 s), up to one tick (5 s) and the short recovery walk.
    assert 15 - 4 <= took <= 15 + 5 + 1, took
    info = c.fsmap.fs_by_name("cephfs").holder(0)
    assert info.inc > 0
    assert c.fsmap.fs_by_name("cephfs").last_failure_osd_epoch > 0  # F1: it was fenced


async def test_T0_mds_fail_gets_a_new_holder_at_once_with_ceph_timings(cluster, autojump_clock):
    """T0: the mon ticks right after the commit of `mds fail` (Ceph's on_active), so with a 5 s
    mon_tick_interval the standby holds rank 0 by the time the command returns."""
    c = cluster
    await _fs_with(c, "a", "b")
    active = c.holder_name()
    standby = "b" if active == "a" else "a"
    t0 = trio.current_time()
    await c.ok("mds", "fail", active)
    mdsmap = (await c.ok("fs", "dump"))["filesystems"][0]["mdsmap"]
    assert mdsmap["info"][f"gid_{mdsmap['up']['mds_0']}"]["name"] == standby
    assert trio.current_time() - t0 < 0.5
    await c.wait_for(lambda: c.holder_name() == standby, timeout=5, what="the standby active")


async def test_R3_every_recovery_state_is_visited(cluster, autojump_clock):
    c = cluster
    await _fs_with(c, "a", "b")
    seen: list[str] = []

    async def record(task_status=trio.TASK_STATUS_IGNORED):
        async with AdminClient.open(f"127.0.0.1:{c.port}") as admin:
            await admin.subscribe("fsmap")
            task_status.started()
            async for msg in admin.pushes:
                fs = FSMap.from_wire(msg.fsmap).fs_by_name("cephfs")
                holder = fs.holder(0) if fs else None
                if holder and (not seen or seen[-1] != states.name(holder.state)):
                    seen.append(states.name(holder.state))

    await c.nursery.start(record)
    seen.clear()
    c.mds[c.holder_name()].kill()
    await c.wait_for(lambda: seen[-1:] == ["up:active"] and len(seen) > 1, what="recovery")
    assert seen == ["up:active", "up:replay", "up:reconnect", "up:rejoin", "up:active"]


async def test_B8_failed_daemon_respawns_with_new_gid(cluster, autojump_clock):
    c = cluster
    await _fs_with(c, "a", "b")
    active = c.holder_name()
    old_gid = c.mds[active].gid
    rc, outs, _ = await c.command("mds", "fail", active)
    assert rc == 0 and outs == f"failed mds gid {old_gid}"
    runner = c.mds[active]
    await c.wait_for(lambda: runner.respawns == 1, what="a respawn")
    await c.wait_for(lambda: runner.daemon.gid and c.fsmap.info(runner.daemon.gid)
                     and c.fsmap.info(runner.daemon.gid).state == states.STANDBY,
                     what="the respawned daemon as a standby")
    assert runner.daemon.gid != old_gid
    # S2: whoever takes rank 0 (the respawned daemon may, as the highest vanilla gid), it is
    # not the failed gid.
    await c.wait_for(lambda: c.holder_name(), what="rank 0 active again")
    assert c.fsmap.fs_by_name("cephfs").up[0] != old_gid


async def test_B10_clean_shutdown_fails_at_once(cluster, autojump_clock):
    c = cluster
    await _fs_with(c, "a", "b")
    active = c.holder_name()
    t0 = trio.current_time()
    await c.mds[active].daemon.shutdown()
    c.mds[active].kill()
    await c.wait_for(lambda: c.holder_name() not in (None, active), what="takeover")
    assert trio.current_time() - t0 < 15 / 2  # no grace wait (virtual time)


async def test_S1_standby_replay_follower_takes_over(cluster, autojump_clock):
    c = cluster
    await _fs_with(c, "a", "b", allow_standby_replay="true")
    fs = await c.wait_for(lambda: c.fsmap.fs_by_name("cephfs").follower(0),
                          what="a standby-replay follower")
    follower_gid = fs.gid
    c.mds[c.holder_name()].kill()
    await c.wait_for(lambda: c.fsmap.fs_by_name("cephfs").up.get(0) == follower_gid
                     and c.holder_name() is not None, what="the follower to become active")


async def test_S3_config_set_join_fs_reaches_the_running_daemon(cluster, autojump_clock):
    c = cluster
    await _fs_with(c, "a", "b")
    standby = next(n for n in "ab" if n != c.holder_name())
    gid = c.mds[standby].gid
    await c.ok("config", "set", f"mds.{standby}", "mds_join_fs", "cephfs")
    await c.wait_for(lambda: c.fsmap.info(gid).join_fscid == 1,
                     what="join_fscid to be set from the beacon")
    # T7 at the tick right after that commit (T0): the pinned daemon replaces the vanilla active
    dump = await c.ok("fs", "dump")
    info = dump["filesystems"][0]["mdsmap"]["info"][f"gid_{gid}"]
    assert info["join_fscid"] == 1 and info["rank"] == 0


async def test_mon_restart_keeps_map_and_gives_fresh_grace(cluster, autojump_clock):
    c = cluster
    await _fs_with(c, "a", "b")
    epoch = c.fsmap.epoch
    active = c.holder_name()
    c.stop_mon()
    await trio.sleep(30)  # the mon is down for twice the grace; daemons keep retrying
    await c.start_mon()
    assert c.fsmap.epoch >= epoch
    assert c.holder_name() == active
    await trio.sleep(40)  # T1/T2: nobody is failed for the mon's own absence
    assert c.holder_name() == active
    assert not c.fsmap.fs_by_name("cephfs").failed
