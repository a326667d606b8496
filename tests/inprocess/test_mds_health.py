"""Health an MDS reports about itself in its beacons (Ceph's Beacon::notify_health; ref H8),
and the admin commands of the rank's sessions (`session config`, `status` in up:reconnect),
in one trio.run under the autojump clock. Fast profile: mds_op_complaint_time 2 s."""

from __future__ import annotations

import errno
import json

import pytest
import trio

from client.fsclient import FSClient, FSClientError
from common.messages import ClientSession
from common.net import connect, parse_hostport
from mds.mdstore import dir_object
from osd.objecter import OSDClient
from tests.inprocess.harness import Cluster, open_session

pytestmark = pytest.mark.timeout(60)


CLUSTER = {"profile": "fast", "fs": True}  # what conftest.cluster builds


async def _check(c: Cluster, code: str, present: bool = True, timeout: float = 10.0):
    """Poll `health detail` until `code` is (or is no longer) raised; return the check."""
    with trio.fail_after(timeout):
        while True:
            checks = (await c.ok("health", "detail"))["checks"]
            if (code in checks) == present:
                return checks.get(code)
            await trio.sleep(0.1)


async def test_H8_MDS_SLOW_REQUEST_while_a_request_waits_for_the_journal(cluster, nursery,
                                                                        autojump_clock):
    c = cluster
    await c.start_mds("a")
    await c.wait_for(lambda: c.holder_name(), what="rank 0 active")
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=60) as fs:
        await fs.mkdir("/before")
        await fs.sync()  # journaled before the pause (an unsafe reply's event waits a tick)
        await c.ok("config", "set", "mds.a", "mds_log_pause", "true")
        done = trio.Event()

        async def mkdir():
            await fs.mkdir("/held")  # returns on the unsafe reply
            await fs.sync()  # the safe one waits for the journal
            done.set()

        nursery.start_soon(mkdir)
        check = await _check(c, "MDS_SLOW_REQUEST")
        assert check["severity"] == "HEALTH_WARN"
        assert check["summary"]["message"] == "1 MDSs report slow requests"
        assert check["detail"] == [
            {"message": "mds.a(mds.0): 1 slow requests are blocked > 2 secs"}]
        assert not done.is_set()
        await c.ok("config", "set", "mds.a", "mds_log_pause", "false")
        with trio.fail_after(10):
            await done.wait()
        await _check(c, "MDS_SLOW_REQUEST", present=False)


async def test_H8_MDS_DAMAGE_a_damaged_directory_is_served_around(cluster, autojump_clock):
    c = cluster
    opts = {"mds_log_events_per_segment": 4, "mds_log_max_segments": 8}
    await c.start_mds("a", **opts)
    await c.wait_for(lambda: c.holder_name(), what="rank 0 active")
    await c.start_mds("b", **opts)
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await fs.mkdir("/bad")
        await fs.create("/bad/f")
        await fs.mkdir("/bad/sub")
        await fs.mkdir("/good")
        for i in range(60):  # expire the first segments: the directories are written back
            await fs.create(f"/good/f{i}")
        await fs.create("/bad/sub/late")  # in the journal tail, below the damaged directory
    pool = c.fsmap.fs_by_name("cephfs").metadata_pool
    bad_ino = c.mds["a"].daemon.data.ns.resolve("/bad").ino
    async with OSDClient.open(c.mon.core.osdmap.osd_addrs[0], "client.admin",
                              "127.0.0.1:1/1") as osd:
        assert "f" in await osd.omap_get(pool, dir_object(bad_ino))
        # b"\xc1" is never valid msgpack: an undecodable dentry, as a bit flip would make
        await osd.omap_set(pool, dir_object(bad_ino), {"g": b"\xc1not an inode"})
    c.mds["a"].kill()
    await c.wait_for(lambda: c.holder_name() == "b", what="b takes over")
    check = await _check(c, "MDS_DAMAGE")
    assert check["severity"] == "HEALTH_ERR"
    assert check["summary"]["message"] == "1 MDSs report damaged metadata"
    assert check["detail"] == [{"message": "mds.b(mds.0): Metadata damage detected"}]
    assert c.fsmap.fs_by_name("cephfs").damaged == set()  # the rank stays up:active
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        with pytest.raises(FSClientError) as e:
            await fs.ls("/bad")
        assert e.value.code == errno.EIO
        assert len(await fs.ls("/good")) == 60
        await fs.mkdir("/new")
    daemon = c.mds["b"].daemon
    rc, _, out = daemon.run_admin(["damage", "ls"], "json", 0.0)
    assert rc == 0 and json.loads(out) == [{"damage_type": "dir_frag", "id": bad_ino,
                                            "ino": bad_ino, "frag": "*", "path": "/bad"}]


async def _raw_session(c: Cluster, client: str, addr: str):
    info = c.fsmap.fs_by_name("cephfs").holder(0)
    host, port = parse_hostport(info.addr.split("/")[0])
    conn, _ = await connect(host, port, client)
    await open_session(conn, addr)
    return conn


async def test_session_config_timeout_evicts_a_session_at_its_own_timeout(cluster,
                                                                          autojump_clock):
    # MDSRank::config_client; find_idle_sessions evicts at it instead of marking stale
    c = cluster
    await c.start_mds("a", mds_defer_session_stale=False)
    await c.wait_for(lambda: c.holder_name(), what="rank 0 active")
    await c.past_new_quorum()
    daemon = c.mds["a"].daemon
    own = await _raw_session(c, "client.81", "127.0.0.1:0/8181")  # neither ever renews
    other = await _raw_session(c, "client.82", "127.0.0.1:0/8282")
    t0 = trio.current_time()
    assert daemon.run_admin(["session", "config", "81", "timeout", "4"], "json", t0) == \
        (0, "", "")
    assert daemon.run_admin(["session", "config", "99", "timeout", "4"], "json", t0) == \
        (-errno.ENOENT, "session 99 not in sessionmap", "")
    assert daemon.run_admin(["session", "config", "81", "timeout", "4.5"], "json", t0) == \
        (-errno.EINVAL, "Invalid config for timeout: 4.5", "")
    assert daemon.run_admin(["session", "config", "81", "color", "red"], "json", t0) == \
        (-errno.EINVAL, "Invalid config option: color", "")
    assert daemon.run_admin(["session", "config", "82", "timeout"], "json", t0)[0] == \
        -errno.ENODATA  # nothing to remove
    [s81, _] = json.loads(daemon.run_admin(["session", "ls"], "json", t0)[2])
    assert s81["id"] == 81 and s81["client_metadata"]["timeout"] == "4"
    msg = await own.recv()  # evicted at its own 4 s, without going stale first
    assert isinstance(msg, ClientSession) and msg.op == "close"
    assert 4.0 <= trio.current_time() - t0 < 5.0
    assert [s["id"] for s in json.loads(daemon.run_admin(["session", "ls"], "json",
                                                         trio.current_time())[2])] == [82]
    assert daemon.sessionmap.get("client.82").state == "stale"  # session_timeout 3 s
    await own.aclose()
    await other.aclose()


async def test_status_in_up_reconnect_shows_the_clients_still_awaited(cluster, autojump_clock):
    # MDSRank::dump_status -> Server::dump_reconnect_status: client_reconnect_gather
    c = cluster
    await c.start_mds("a", mds_reconnect_timeout=45)
    await c.wait_for(lambda: c.holder_name(), what="rank 0 active")
    await c.start_mds("b", mds_reconnect_timeout=45)
    await c.past_new_quorum()  # T3
    conns = [await _raw_session(c, f"client.{n}", f"127.0.0.1:0/{n}") for n in (91, 90)]
    daemon = c.mds["a"].daemon
    assert "reconnect_status" not in json.loads(daemon.run_admin(["status"], "json", 0.0)[2])
    c.mds["a"].kill()
    await c.wait_for(lambda: c.holder_name(state="up:reconnect") == "b", what="reconnect")
    status = json.loads(c.mds["b"].daemon.run_admin(["status"], "json", 0.0)[2])
    assert status["state"] == "up:reconnect"
    assert status["reconnect_status"] == {"client_reconnect_gather": "90,91"}
    keys = list(status)
    assert keys.index("fs_name") < keys.index("reconnect_status") < keys.index("mdsmap_epoch")
    for conn in conns:
        await conn.aclose()


async def test_unsafe_requests_are_bounded_while_the_journal_cannot_be_written(
        cluster, nursery, autojump_clock):
    """J5: with the journal held (mds_log_pause, as an osd that is away), a client gets
    unsafe replies for no more than mdsemu_log_max_unflushed mutations; the next ones wait,
    unapplied, and are served once the journal drains. Nothing is lost."""
    c = cluster
    await c.start_mds("a")
    await c.wait_for(lambda: c.holder_name(), what="rank 0 active")
    await c.ok("config", "set", "mds.a", "mdsemu_log_max_unflushed", "5")
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=60) as fs:
        await fs.mkdir("/d")
        await fs.sync()
        await c.ok("config", "set", "mds.a", "mds_log_pause", "true")
        answered = []

        async def create(i: int) -> None:
            await fs.create(f"/d/f{i}")  # returns on the unsafe reply
            answered.append(i)

        for i in range(8):
            nursery.start_soon(create, i)
        await trio.sleep(5)  # long enough for all eight, were they not bounded
        assert len(answered) == 5
        data = c.mds["a"].daemon.data
        assert len(data.ns.readdir("/d")) == 5  # the others are not applied
        await c.ok("config", "set", "mds.a", "mds_log_pause", "false")
        with trio.fail_after(10):
            while len(answered) < 8:
                await trio.sleep(0.05)
        assert await fs.sync() == []
        assert sorted(n for n, _ in data.ns.readdir("/d")) == sorted(f"f{i}" for i in range(8))
