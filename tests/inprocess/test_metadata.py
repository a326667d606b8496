"""Journaled metadata across failover, in one trio.run (R3, R5, R6, F3, F4, J5)."""

from __future__ import annotations

import errno
import json

import pytest
import trio

from client.fsclient import FSClient
from common.messages import ClientReconnect, ClientRequest, ClientSession
from common.net import connect, parse_hostport
from mds.rankdata import Fenced, RankData
from osd.objecter import OSDClient
from tests.inprocess.harness import Cluster, mds_request, open_session

pytestmark = pytest.mark.timeout(60)


CLUSTER = {"profile": "fast"}  # what conftest.cluster builds


async def _create(c: Cluster, n: int) -> None:
    info = c.fsmap.fs_by_name("cephfs").holder(0)
    host, port = parse_hostport(info.addr.split("/")[0])
    conn, _ = await connect(host, port, "client.load")
    await open_session(conn)
    for i in range(n + 1):
        req = ClientRequest(tid=1 + i, op="create", args={"path": f"/d/f{i - 1}"}) if i else \
            ClientRequest(tid=1, op="mkdir", args={"path": "/d"})
        await conn.send(req)
        reply = await conn.recv()
        if not reply.safe:  # mds_early_reply: unsafe first, then safe
            assert reply.rc == 0
            await conn.send(ClientSession("request_flush_mdlog"))  # as Ceph's client waits
            reply = await conn.recv()
        assert reply.rc == 0 and reply.safe
    await conn.aclose()


async def _cephfs_with(c: Cluster, *names: str, **opts) -> None:
    """fs cephfs, then MDS daemons `names`; returns once rank 0 is active."""
    await c.ok("fs", "new", "cephfs", "cephfs_metadata", "cephfs_data")
    for name in names:
        await c.start_mds(name, **opts)
    await c.wait_for(lambda: c.holder_name(), what="rank 0 active")


async def _names(c: Cluster) -> list[str]:
    reply = await mds_request(c, "readdir", {"path": "/d"}, tid=999)
    assert reply.rc == 0, reply
    return [n for n, _ in reply.result["entries"]]


@pytest.mark.parametrize("standby_replay", [False, True])
async def test_every_acknowledged_entry_survives_failover(cluster, autojump_clock,
                                                          standby_replay):
    c = cluster
    await c.ok("fs", "new", "cephfs", "cephfs_metadata", "cephfs_data")
    # small segments so that the test also crosses trimming (J3) and write-back
    opts = {"mds_log_events_per_segment": 16, "mds_log_max_segments": 8}
    for name in "ab":
        await c.start_mds(name, **opts)
    await c.wait_for(lambda: c.holder_name(), what="rank 0 active")
    if standby_replay:
        await c.ok("fs", "set", "cephfs", "allow_standby_replay", "true")
        await c.wait_for(lambda: c.fsmap.fs_by_name("cephfs").follower(0), what="a follower")
    await c.past_new_quorum()
    await _create(c, 300)
    follower = c.fsmap.fs_by_name("cephfs").follower(0)
    active = c.holder_name()
    c.mds[active].kill()
    await c.wait_for(lambda: c.holder_name() not in (None, active), what="takeover")
    if standby_replay:
        assert c.fsmap.fs_by_name("cephfs").up[0] == follower.gid  # S1
    names = await _names(c)
    assert sorted(names) == sorted(f"f{i}" for i in range(300))


async def test_R3_replay_reads_ahead_in_pieces_records_straddle(cluster, autojump_clock,
                                                               monkeypatch):
    """Replay reads the journal tail in pieces (read-ahead): with pieces smaller than one
    record (the segment opener too, which names the directories to read first), every record
    is completed by the next piece; nothing is lost or doubled. Small segments: the tail
    starts past the written-back directories."""
    from mds import mdstore

    c = cluster
    await _cephfs_with(c, "a", "b", mds_log_events_per_segment=16, mds_log_max_segments=8)
    await _create(c, 120)
    monkeypatch.setattr(mdstore, "READ_AHEAD", 32)  # divides the 4 MiB object size
    active = c.holder_name()
    c.mds[active].kill()
    await c.wait_for(lambda: c.holder_name() not in (None, active), what="takeover")
    assert sorted(await _names(c)) == sorted(f"f{i}" for i in range(120))


async def _unsafe_creates_then_kill(c: Cluster, fs: FSClient, n: int) -> str:
    """/d made safe, then n creates answered unsafe only (the holder's journal is paused),
    then the holder is killed; returns its name."""
    active = c.holder_name()
    await fs.mkdir("/d")
    assert await fs.sync() == []
    await c.ok("config", "set", f"mds.{active}", "mds_log_pause", "true")
    for i in range(n):
        await fs.create(f"/d/f{i}")  # returns on the unsafe reply
    assert len(fs.core.unsafe) == n
    c.mds[active].kill()
    return active


async def test_J5_failover_between_unsafe_and_safe_replies_loses_nothing(cluster,
                                                                        autojump_clock):
    """The client returns on the unsafe reply; the holder dies before journaling. The client
    replays the unsafe requests to the next holder in up:reconnect (C4), which re-executes
    them in up:clientreplay (R3 step 6): sync reports nothing lost, and every one is there."""
    c = cluster
    await _cephfs_with(c, "a", "b")
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=60) as fs:
        active = await _unsafe_creates_then_kill(c, fs, 5)
        assert await fs.sync() == []  # answered safe in up:clientreplay
        await c.wait_for(lambda: c.holder_name() not in (None, active), what="takeover")
        assert sorted(n for n, _ in await fs.ls("/d")) == [f"f{i}" for i in range(5)]


async def test_J5_unsafe_requests_a_refused_client_cannot_replay_are_reported_lost(
        cluster, autojump_clock):
    """As above, but the client is blocklisted before the takeover: the next holder refuses
    its reconnect, the unsafe creates are gone, and sync reports each one lost (they were
    acknowledged to the caller, so the loss must not be silent)."""
    c = cluster
    await _cephfs_with(c, "a", "b")
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=60) as fs:
        active = await _unsafe_creates_then_kill(c, fs, 3)
        await c.ok("osd", "blocklist", "add", fs.addr, "3600")  # long before b's reconnect
        lost = await fs.sync()
        assert [(x.op, x.args["path"]) for x in lost] == [("create", f"/d/f{i}")
                                                          for i in range(3)]
        assert all("blocklisted" in x.reason for x in lost), lost
    await c.wait_for(lambda: c.holder_name() not in (None, active), what="takeover")
    assert await _names(c) == []


async def test_F4_fenced_instance_cannot_write(cluster, autojump_clock):
    c = cluster
    await _cephfs_with(c, "a", "b")
    active = c.holder_name()
    old_gid = c.fsmap.fs_by_name("cephfs").up[0]
    old_addr = c.mds[active].daemon.addr
    assert (await mds_request(c, "mkdir", {"path": "/before"})).rc == 0
    await c.ok("mds", "fail", active)  # blocklists the old instance (F1)
    await c.wait_for(lambda: c.holder_name() and c.fsmap.fs_by_name("cephfs").up[0] != old_gid,
                     what="takeover by another gid")
    await c.wait_for(lambda: c.osd.osdmap.epoch >= c.mon.core.osdmap.epoch, what="osd map")
    # The old instance (its address instance) tries to go on with the rank: refused (F4).
    fs = c.fsmap.fs_by_name("cephfs")
    osd_addr = c.mon.core.osdmap.osd_addrs[0]
    async with OSDClient.open(osd_addr, f"mds.{active}", old_addr) as osd:
        stale = RankData(osd, fs.metadata_pool, 0, 1024, 128)
        with pytest.raises(Fenced):
            await stale.load()
    reply = await mds_request(c, "readdir", {"path": "/"}, tid=5)
    assert [n for n, _ in reply.result["entries"]] == ["before"]


async def _session(c: Cluster, client: str, how: str):
    """A raw client connection to rank 0's holder with an open (or reconnected) session."""
    info = c.fsmap.fs_by_name("cephfs").holder(0)
    host, port = parse_hostport(info.addr.split("/")[0])
    conn, _ = await connect(host, port, client)
    addr = f"127.0.0.1:0/{sum(client.encode())}"
    if how == "open":
        await open_session(conn, addr)
    else:  # C4: to the new holder in up:reconnect
        await conn.send(ClientReconnect(metadata={"addr": addr}))
        assert (await conn.recv()).op == "open"
    return conn


async def _mkdir(conn, tid: int, path: str, oldest: int = 0):
    await conn.send(ClientRequest(tid=tid, op="mkdir", args={"path": path}, oldest_tid=oldest))
    reply = await conn.recv()
    if reply.rc == 0 and not reply.safe:
        await conn.send(ClientSession("request_flush_mdlog"))  # as Ceph's client waits
    while reply.rc == 0 and not reply.safe:
        reply = await conn.recv()
    return reply


async def test_resent_request_is_answered_not_redone(cluster, autojump_clock):
    """A client that reconnects and resends a request the old holder completed gets the
    recorded answer (completed requests replayed from the journal), not a second mkdir."""
    c = cluster
    await _cephfs_with(c, "a", "b")
    await c.past_new_quorum()  # T3

    conn = await _session(c, "client.r", "open")
    first = await _mkdir(conn, 7, "/x")
    assert first.rc == 0
    active = c.holder_name()
    c.mds[active].kill()
    await conn.aclose()
    await c.wait_for(lambda: c.holder_name(state="up:reconnect") not in (None, active),
                     what="the new holder in up:reconnect")
    conn = await _session(c, "client.r", "reconnect")
    await c.wait_for(lambda: c.holder_name() not in (None, active), what="takeover")
    again = await _mkdir(conn, 7, "/x")
    assert again.rc == 0 and again.result == first.result  # from the replayed record
    other = await _mkdir(conn, 8, "/x")
    assert other.rc == -17  # EEXIST for a new request
    await conn.aclose()


async def test_F5_corrupt_journal_makes_rank_damaged_until_repaired(cluster, autojump_clock):
    c = cluster
    await _cephfs_with(c, "a", "b")
    await c.past_new_quorum()  # T3
    await _create(c, 20)
    fs = c.fsmap.fs_by_name("cephfs")
    osd_addr = c.mon.core.osdmap.osd_addrs[0]
    async with OSDClient.open(osd_addr, "client.admin", "127.0.0.1:1/1") as osd:
        good = await osd.read(fs.metadata_pool, "200.00000001")
        bad = bytearray(good)
        bad[len(bad) // 2] ^= 0xFF
        active = c.holder_name()
        c.mds[active].kill()
        await osd.write_full(fs.metadata_pool, "200.00000001", bytes(bad))
        await c.wait_for(lambda: 0 in c.fsmap.fs_by_name("cephfs").damaged, what="damaged")
        health = await c.ok("health", "detail")
        assert "MDS_DAMAGE" in health["checks"]
        assert health["checks"]["MDS_DAMAGE"]["detail"][0]["message"] == \
            "fs cephfs mds.0 is damaged"
        await trio.sleep(5)
        assert 0 in c.fsmap.fs_by_name("cephfs").damaged  # never assigned while damaged
        await osd.write_full(fs.metadata_pool, "200.00000001", good)  # the object is fixed
    rc, outs, _ = await c.command("mds", "repaired", "cephfs:0")
    assert rc == 0 and outs == "repaired: restoring rank 1:0"
    await c.wait_for(lambda: c.holder_name(), what="rank 0 active again")
    assert sorted(await _names(c)) == sorted(f"f{i}" for i in range(20))


async def test_H8_mds_trim_health_from_the_daemon(cluster, autojump_clock):
    c = cluster
    await c.ok("fs", "new", "cephfs", "cephfs_metadata", "cephfs_data")
    # trimming starts past 8 segments, the warning past 8 x 0.5: visible at 5..8 segments
    await c.start_mds("a", mds_log_events_per_segment=4, mds_log_max_segments=8,
                      mds_log_warn_factor=0.5)
    await c.wait_for(lambda: c.holder_name(), what="rank 0 active")
    await _create(c, 24)

    async def trim_check():
        checks = (await c.ok("health", "detail"))["checks"]
        return checks.get("MDS_TRIM")

    deadline = trio.current_time() + 10
    check = None
    while check is None and trio.current_time() < deadline:
        check = await trim_check()
        await trio.sleep(0.1)
    assert check is not None
    assert check["summary"]["message"] == "1 MDSs behind on trimming"
    assert check["detail"][0]["message"].startswith("mds.a(mds.0): Behind on trimming (")


async def test_R5_follower_that_falls_behind_the_trim_point_respawns(cluster, autojump_clock,
                                                                     monkeypatch):
    from mds import journal

    monkeypatch.setattr(journal, "OBJECT_SIZE", 512)  # tiny objects: trimming removes them
    c = cluster
    await c.ok("fs", "new", "cephfs", "cephfs_metadata", "cephfs_data")
    opts = {"mds_log_events_per_segment": 4, "mds_log_max_segments": 8}
    await c.start_mds("a", **opts)
    await c.wait_for(lambda: c.holder_name(), what="rank 0 active")
    await c.start_mds("b", mds_replay_interval=30, **opts)  # a slow follower
    await c.ok("fs", "set", "cephfs", "allow_standby_replay", "true")
    await c.wait_for(lambda: c.fsmap.fs_by_name("cephfs").follower(0), what="a follower")
    await c.wait_for(lambda: c.mds["b"].daemon.data is not None
                     and c.mds["b"].daemon.data.ns is not None, what="the follower's first read")
    await _create(c, 200)  # the active trims far past what the follower has read
    await c.wait_for(lambda: c.mds["b"].respawns >= 1, what="the follower to respawn")
    assert "fell behind active MDS journal's expire_pos" in c.mds["b"].reasons[0]
    # it comes back and follows again from the new expire point
    await c.wait_for(lambda: c.fsmap.fs_by_name("cephfs").follower(0), what="a follower again")


async def test_tell_status_and_session_ls(cluster, autojump_clock):

    c = cluster
    await c.ok("fs", "new", "cephfs", "cephfs_metadata", "cephfs_data")
    await c.start_mds("a")
    await c.wait_for(lambda: c.holder_name(), what="rank 0 active")
    daemon = c.mds["a"].daemon
    info = c.fsmap.fs_by_name("cephfs").holder(0)
    host, port = parse_hostport(info.addr.split("/")[0])
    conn, _ = await connect(host, port, "client.7")
    await conn.send(ClientRequest(tid=1, op="mkdir", args={"path": "/s"}))
    reply = await conn.recv()  # C1: no request before a session is open
    assert reply.rc == -errno.ENOTCONN and "no session" in reply.error
    await open_session(conn, "127.0.0.1:0/77")
    await conn.send(ClientRequest(tid=1, op="mkdir", args={"path": "/s"}))
    assert (await conn.recv()).rc == 0
    rc, _, out = daemon.run_admin(["status"], "json", trio.current_time())
    status = json.loads(out)
    assert rc == 0 and status["state"] == "up:active" and status["whoami"] == 0
    rc, _, out = daemon.run_admin(["session", "ls"], "json", trio.current_time())
    sessions = json.loads(out)
    assert [s["id"] for s in sessions] == [7] and sessions[0]["state"] == "open"
    assert sessions[0]["inst"] == "client.7 v1:127.0.0.1:0/77"
    assert daemon.run_admin(["frob"], "json", 0.0)[0] == -22
    await conn.aclose()


async def test_completed_requests_outlive_the_journal_segments_they_were_in(cluster,
                                                                            autojump_clock):
    """Ceph keeps completed requests with the session: once the segment holding a request
    is trimmed, the sessionmap object still answers its resend after a failover."""
    c = cluster
    await _cephfs_with(c, "a", "b", mds_log_events_per_segment=16, mds_log_max_segments=8)
    await c.past_new_quorum()  # T3
    conn = await _session(c, "client.q", "open")
    first = await _mkdir(conn, 1, "/q", oldest=1)
    assert first.rc == 0
    await _create(c, 300)  # other clients' work: /q's segment is written back and trimmed
    active = c.holder_name()
    data = c.mds[active].daemon.data
    assert data.store.header.expire_pos > 0
    c.mds[active].kill()
    await conn.aclose()
    await c.wait_for(lambda: c.holder_name(state="up:reconnect") not in (None, active),
                     what="the new holder in up:reconnect")
    conn = await _session(c, "client.q", "reconnect")
    await c.wait_for(lambda: c.holder_name() not in (None, active), what="takeover")
    again = await _mkdir(conn, 1, "/q", oldest=1)
    assert again.rc == 0 and again.result == first.result  # not EEXIST: not done twice
    later = await _mkdir(conn, 2, "/q2", oldest=2)  # tid 1 answered: its record may go
    assert later.rc == 0
    new = c.mds[c.holder_name()].daemon.data
    assert new.completed.get("client.q", 1) is None and new.completed.get("client.q", 2)
    await conn.aclose()


async def test_a_task_started_for_a_state_ends_with_that_state(cluster, autojump_clock):
    """RankRuntime's nursery per state (issue 10 item 2): a follower's task started in
    up:standby-replay is cancelled when the monitor promotes it (R6), not left running."""
    c = cluster
    await _cephfs_with(c, "a", "b")
    await c.ok("fs", "set", "cephfs", "allow_standby_replay", "true")
    follower = await c.wait_for(lambda: c.fsmap.fs_by_name("cephfs").follower(0),
                                what="a follower")
    await c.past_new_quorum()  # T3
    runtime = c.mds[follower.name].daemon.runtime
    running, ended = trio.Event(), trio.Event()

    async def for_this_state():
        running.set()
        try:
            await trio.sleep_forever()
        finally:
            ended.set()

    runtime.spawn(for_this_state)
    await running.wait()
    await trio.sleep(5)
    assert not ended.is_set()  # it lives as long as the state
    c.mds[c.holder_name()].kill()
    await c.wait_for(lambda: ended.is_set(), what="the task to end with up:standby-replay")
    await c.wait_for(lambda: c.holder_name() == follower.name, what="the follower active")
    assert c.mds[follower.name].daemon.runtime is runtime  # the rank's runtime stays
