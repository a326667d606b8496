"""File locks through the MDS (mds.filelocks, client.filelock), in one trio.run under the
autojump clock: conflicts between sessions, the locks of a session that ends, a client's own
session timeout (C5), the reclaim reset of a previous incarnation, and an MDS failover.

Fast profile: session_timeout 3 s, session_autoclose 6 s, reconnect timeout 2 s.
"""

from __future__ import annotations

import pytest
import trio

from client.fsclient import FSClient, LockDenied
from tests.inprocess.harness import Cluster

pytestmark = pytest.mark.timeout(60)

CLUSTER = {"profile": "fast", "fs": True}


async def _up(c: Cluster, *names: str) -> str:
    for name in names:
        await c.start_mds(name)
    await c.wait_for(lambda: c.holder_name(), what="rank 0 active")
    await c.past_new_quorum()
    return c.holder_name()


async def _holder(c: Cluster, nursery, path: str, metadata: dict,
                  locked: trio.Event) -> trio.CancelScope:
    """A client that takes a write lock on `path` and then hangs until its scope is
    cancelled: cancelled, it vanishes without closing its session (a kill -9)."""
    scope = trio.CancelScope()

    async def run() -> None:
        with scope:
            async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
                fs.metadata.update(metadata)
                await fs.setlk(path, "nfs-1", "write")
                locked.set()
                await trio.sleep_forever()

    nursery.start_soon(run)
    await locked.wait()
    return scope


async def test_locks_conflict_across_sessions_and_go_with_a_closed_session(cluster,
                                                                           autojump_clock):
    c = cluster
    await _up(c, "a")
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as one, \
            FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as two:
        await one.create("/f")
        await one.setlk("/f", "p1", "write", 0, 100)
        with pytest.raises(LockDenied) as denied:
            await two.setlk("/f", "p2", "read", 50, 10)
        assert denied.value.holder["client"] == one.entity
        assert denied.value.holder["start"] == 0 and denied.value.holder["length"] == 100
        await two.setlk("/f", "p2", "write", 100, 0)  # [100, EOF): free
        assert (await two.getlk("/f", "p2", "read", 0, 1))["owner"] == "p1"
        await one.setlk("/f", "p1", "unlock", 0, 50)
        await two.setlk("/f", "p2", "read", 0, 50)
        assert [lk.to_wire()["length"] for lk in one.locks.held.locks] == [50]
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as three:
        await three.setlk("/f", "p3", "write")  # both sessions closed: their locks went


async def test_C5_a_dead_holder_with_its_own_timeout_is_evicted_and_its_lock_freed(
        cluster, nursery, autojump_clock):
    c = cluster
    await _up(c, "a")
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await fs.create("/g")
        dead = await _holder(c, nursery, "/g", {"timeout": "4"}, trio.Event())
        dead.cancel()
        t0 = trio.current_time()
        while True:
            try:
                await fs.setlk("/g", "p2", "write")
                break
            except LockDenied:
                await trio.sleep(0.25)
        assert 3.5 < trio.current_time() - t0 < 5.0  # its own 4 s, not autoclose (6 s)
    log = (await c.command("log", "last", "20"))[2]
    assert "evicting unresponsive client" in log


async def test_reclaim_reset_ends_the_previous_incarnations_session(cluster, nursery,
                                                                    autojump_clock):
    c = cluster
    await _up(c, "a")
    uuid = "ganesha-a-0001"
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as other:
        await other.create("/h")
        dead = await _holder(c, nursery, "/h", {"uuid": uuid, "timeout": "300"}, trio.Event())
        dead.cancel()
        with pytest.raises(LockDenied):
            await other.setlk("/h", "p2", "write")
        async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as again:
            again.metadata.update(uuid=uuid, timeout="300")
            assert await again.reclaim_reset(uuid) == 1
            assert await again.reclaim_reset(uuid) == 0  # -ENOENT: nothing left to reset
            await again.setlk("/h", "nfs-1", "write")  # the reclaim, under the new session
            with pytest.raises(LockDenied):
                await other.setlk("/h", "p2", "write")
            assert again.evicted is None
    log = (await c.command("log", "last", "20"))[2]
    assert "Evicting (and blocklisting) client session" in log


async def test_locks_survive_an_mds_failover_live_and_dead_holders(cluster, nursery,
                                                                  autojump_clock):
    c = cluster
    first = await _up(c, "a", "b")
    other = "b" if first == "a" else "a"
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as live, \
            FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as rival:
        await live.create("/x")
        await live.create("/y")
        await live.setlk("/x", "p1", "write")
        dead = await _holder(c, nursery, "/y", {"timeout": "30"}, trio.Event())
        dead.cancel()
        c.mds[first].kill()
        await c.wait_for(lambda: c.holder_name() == other, what="takeover")
        for path in ("/x", "/y"):  # replayed (and re-sent by the live one's reconnect)
            with pytest.raises(LockDenied):
                await rival.setlk(path, "p2", "write")
        await live.setlk("/x", "p1", "unlock")
        await rival.setlk("/x", "p2", "write")
        assert live.evicted is None
