"""RADOS features through the real osd and monitor in one trio.run (autojump clock): namespaces,
the assert_version read-modify-write loop, watch/notify with acks and timeouts (Ceph's
rados_watch3/rados_notify2), and a pool's objects going with `osd pool rm`."""

from __future__ import annotations

import errno

import pytest
import trio

from osd.objecter import OSDClient, OSDError
from tests.inprocess.test_osd import OSDRunner, mon_epoch

pytestmark = pytest.mark.timeout(30)
CLUSTER = {"osd": False}  # what conftest.cluster builds: the tests start their osd

A, B = "127.0.0.1:0/1111", "127.0.0.1:0/2222"


@pytest.fixture
async def osd(cluster, tmp_path):
    runner = OSDRunner(cluster, str(tmp_path / "osd.0"))
    await runner.start()
    await runner.wait_epoch(1)
    return runner


async def test_namespaces_and_compound_ops(cluster, osd, autojump_clock):
    async with OSDClient.open(osd.server.addr, "client.a", A) as c:
        await c.write_full(1, "grace", b"ns", ns="ganesha")
        await c.write_full(1, "grace", b"default")
        assert await c.read(1, "grace", ns="ganesha") == b"ns"
        assert await c.list(1, ns="ganesha") == ["grace"]
        assert await c.list_all(1) == [("", "grace"), ("ganesha", "grace")]
        r = await c.operate(1, "g2", [["create", True], ["write_full", b"\0" * 16]], ns="x")
        assert r.version == 1
        with pytest.raises(OSDError) as e:
            await c.operate(1, "g2", [["create", True], ["write_full", b""]], ns="x")
        assert e.value.code == errno.EEXIST
        r = await c.operate(1, "g2", [["read"], ["omap_get", None]], ns="x")
        assert (r.data, r.values, r.version) == (b"\0" * 16, {}, 1)


async def test_assert_version_retry_loop_with_two_writers(cluster, osd, autojump_clock):
    """Two clients increment one counter by read-modify-write: the loser of each race gets
    ERANGE and retries, so no increment is lost."""
    async with OSDClient.open(osd.server.addr, "client.a", A) as a, \
            OSDClient.open(osd.server.addr, "client.b", B) as b:
        await a.write_full(1, "counter", b"0")
        conflicts = []

        async def bump(c: OSDClient, times: int) -> None:
            for _ in range(times):
                while True:
                    r = await c.operate(1, "counter", [["read"]])
                    await trio.sleep(0)  # let the other writer in between
                    try:
                        await c.operate(1, "counter", [["assert_version", r.version],
                                                       ["write_full", b"%d" % (int(r.data) + 1)]])
                        break
                    except OSDError as e:
                        assert e.code == errno.ERANGE
                        conflicts.append(e.code)

        async with trio.open_nursery() as n:
            n.start_soon(bump, a, 10)
            n.start_soon(bump, b, 10)
        assert await a.read(1, "counter") == b"20" and conflicts


async def test_notify_waits_for_every_ack(cluster, osd, autojump_clock):
    async with OSDClient.open(osd.server.addr, "client.a", A) as a, \
            OSDClient.open(osd.server.addr, "client.b", B) as b:
        await a.write_full(1, "grace", b"", ns="ganesha")
        seen = []
        ca = await a.watch(1, "grace", lambda nid, who, data: seen.append(("a", who, data)),
                           ns="ganesha")
        cb = await b.watch(1, "grace", lambda nid, who, data: b"b-ack", ns="ganesha")
        # the notifier watches the object too: its own ack must not wait behind its notify
        acks, timeouts = await a.notify(1, "grace", b"hello", timeout=3, ns="ganesha")
        assert sorted(acks) == [["client.a", ca, b""], ["client.b", cb, b"b-ack"]]
        assert timeouts == [] and seen == [("a", "client.a", b"hello")]
        with pytest.raises(OSDError) as e:
            await a.watch(1, "nothing", lambda *x: None)
        assert e.value.code == errno.ENOENT
        with pytest.raises(OSDError) as e:
            await a.notify(1, "nothing")
        assert e.value.code == errno.ENOENT
        await b.unwatch(cb)
        assert [w[0] for w in (await a.notify(1, "grace", ns="ganesha"))[0]] == ["client.a"]


async def test_notify_times_out_a_watcher_that_went_away(cluster, osd, autojump_clock):
    async with OSDClient.open(osd.server.addr, "client.a", A) as a:
        await a.write_full(1, "grace", b"")
        await a.watch(1, "grace", lambda *x: None)
        async with OSDClient.open(osd.server.addr, "client.b", B) as b:
            cb = await b.watch(1, "grace", lambda *x: None, timeout=30)
        t0 = trio.current_time()
        acks, timeouts = await a.notify(1, "grace", timeout=3)
        assert len(acks) == 1 and timeouts == [["client.b", cb]]
        assert 3 <= trio.current_time() - t0 < 4  # rados_notify2's timeout, 3000 ms in Ganesha
        # past the watch timeout (30 s) the dead watcher is dropped
        await cluster.wait_for(
            lambda: [w.entity for w in osd.server.watches.watches.values()] == ["client.a"],
            timeout=40, what="the dead watcher to be dropped")
        t0 = trio.current_time()
        acks, timeouts = await a.notify(1, "grace", timeout=3)
        assert len(acks) == 1 and timeouts == [] and trio.current_time() - t0 < 1


async def test_pool_rm_removes_its_objects(cluster, osd, autojump_clock):
    await cluster.ok("config", "set", "mon", "mon_allow_pool_delete", "true")
    await cluster.ok("osd", "pool", "create", "scratch")
    pool = cluster.mon.core.osdmap.pool_by_name("scratch").id
    async with OSDClient.open(osd.server.addr, "client.a", A) as c:
        await c.write_full(pool, "obj", b"x", min_epoch=mon_epoch(cluster))
        await cluster.ok("osd", "pool", "rm", "scratch", "scratch",
                         "--yes-i-really-really-mean-it")
        await osd.wait_epoch(mon_epoch(cluster))
        assert await c.list_all(pool) == []
