"""Client sessions across failover, in one trio.run under the autojump clock (ref C1–C6, R3).

Fast profile: session_timeout 3 s and session_autoclose 6 s for a new fs, reconnect timeout 2 s.
"""

from __future__ import annotations

import json
import re

import pytest
import trio

from client.admin import hunt
from client.fsclient import EBLOCKLISTED, FSClient, FSClientError
from common import states
from common.fsmap import FSMap
from common.messages import ClientReconnect, ClientSession, FSMapMsg, Subscribe
from common.net import connect, parse_hostport
from tests.inprocess.harness import Cluster, open_session

pytestmark = pytest.mark.timeout(60)


CLUSTER = {"profile": "fast", "fs": True}  # what conftest.cluster builds


async def _up(c: Cluster, *names: str, **opts) -> str:
    for name in names:
        await c.start_mds(name, **opts)
    await c.wait_for(lambda: c.holder_name(), what="rank 0 active")
    await c.past_new_quorum()
    return c.holder_name()


async def _pair_watched(c: Cluster, nursery) -> tuple[str, str, StateLog]:
    """mds.a and mds.b, one active; and a StateLog of rank 0. (active, standby, log)"""
    first = await _up(c, "a", "b")
    watch = StateLog(c)
    nursery.start_soon(watch.run)
    await c.wait_for(lambda: watch.seen, what="the first map")
    return first, "b" if first == "a" else "a", watch


async def _raw_session(c: Cluster, client: str, addr: str, **metadata):
    info = c.fsmap.fs_by_name("cephfs").holder(0)
    host, port = parse_hostport(info.addr.split("/")[0])
    conn, _ = await connect(host, port, client)
    await open_session(conn, addr, **metadata)
    return conn


class StateLog:
    """Every state rank 0's holder shows in the maps the monitor publishes, with the
    (virtual) time it was first seen."""

    def __init__(self, c: Cluster, rank: int = 0) -> None:
        self.c = c
        self.rank = rank
        self.seen: list[tuple[float, str, str]] = []  # (time, name, state)

    async def run(self) -> None:
        conn, _ = await hunt(self.c.mon_host, "client.admin", "", 5, 0.1)
        await conn.send(Subscribe(what=["fsmap"]))
        while True:
            msg = await conn.recv()
            if not isinstance(msg, FSMapMsg):
                continue
            info = FSMap.from_wire(msg.fsmap).fs_by_name("cephfs").holder(self.rank)
            entry = (info.name, states.name(info.state)) if info else ("", "failed")
            if not self.seen or self.seen[-1][1:] != entry:
                self.seen.append((trio.current_time(), *entry))

    def states_of(self, name: str) -> list[str]:
        return [s for _, n, s in self.seen if n == name]

    def time_in(self, name: str, state: str) -> float:
        i = next(i for i, (_, n, s) in enumerate(self.seen) if (n, s) == (name, state))
        return self.seen[i + 1][0] - self.seen[i][0]


async def _blocklist(c: Cluster) -> list[str]:
    return [e["addr"] for e in json.loads((await c.command("osd", "blocklist", "ls",
                                                           fmt="json"))[2])]


async def test_R3_unsafe_request_comes_back_through_clientreplay(cluster, nursery,
                                                                 autojump_clock):
    c = cluster
    first, other, watch = await _pair_watched(c, nursery)
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await fs.mkdir("/before")
        await c.ok("config", "set", f"mds.{first}", "mds_log_pause", "true")
        await c.wait_for(lambda: c.mds[first].daemon.data.mdlog._paused, what="log paused")
        done: dict = {}

        async def mkdir():
            done["inode"] = await fs.mkdir("/unsafe")

        nursery.start_soon(mkdir)
        await c.wait_for(lambda: fs.core.unsafe, what="an unsafe reply")
        c.mds[first].kill()  # dies with the mkdir applied and answered, but not journaled
        await c.wait_for(lambda: "inode" in done, what="the safe reply from the new active")
        assert done["inode"]["mode"] & 0o040000
        names = [n for n, _ in await fs.ls("/")]
    assert sorted(names) == ["before", "unsafe"]
    assert watch.states_of(other)[-4:] == ["up:reconnect", "up:rejoin", "up:clientreplay",
                                           "up:active"]


async def test_C4_client_reconnects_so_reconnect_ends_early(cluster, nursery, autojump_clock):
    c = cluster
    first, other, watch = await _pair_watched(c, nursery)
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await fs.mkdir("/d")
        await fs.sync()  # safe: nothing to replay (see test_metadata for the unsafe case)
        c.mds[first].kill()
        await c.wait_for(lambda: c.holder_name() == other, what="takeover")
        await fs.mkdir("/d/e")
        assert "up:clientreplay" not in watch.states_of(other)
        assert watch.time_in(other, "up:reconnect") < 1.0  # not the 2 s timeout
        assert fs.evicted is None


async def test_C2_a_missing_client_holds_reconnect_for_the_timeout_then_is_evicted(
        cluster, nursery, autojump_clock):
    c = cluster
    first, other, watch = await _pair_watched(c, nursery)
    conn = await _raw_session(c, "client.77", "127.0.0.1:0/7777",
                              hostname="node77")  # it never reconnects
    c.mds[first].kill()
    await c.wait_for(lambda: c.holder_name() == other, what="takeover")
    assert 1.9 < watch.time_in(other, "up:reconnect") < 3.0  # mds_reconnect_timeout
    assert "127.0.0.1:0/7777" in await _blocklist(c)  # mds_session_blocklist_on_timeout
    log = (await c.command("log", "last", "20"))[2]
    # Server::reconnect_tick's wording: host (id), the wait with its decimals
    assert re.search(r"evicting unresponsive client node77 \(77\), after waiting 2(\.\d+)? "
                     r"seconds during MDS startup", log), log
    await conn.aclose()


async def test_C2_session_evict_ends_the_reconnect_wait_at_once(cluster, nursery,
                                                                autojump_clock):
    c = cluster
    first = await _up(c, "a", "b", mds_reconnect_timeout=45)
    other = "b" if first == "a" else "a"
    conn = await _raw_session(c, "client.78", "127.0.0.1:0/7878")
    c.mds[first].kill()
    await c.wait_for(lambda: c.holder_name(state="up:reconnect") == other, what="reconnect")
    t0 = trio.current_time()
    daemon = c.mds[other].daemon
    sessions = json.loads(daemon.run_admin(["session", "ls"], "json", t0)[2])
    assert [(s["id"], s["reconnecting"]) for s in sessions] == [(78, True)]
    assert daemon.run_admin(["session", "evict", "78"], "json", t0)[0] == 0
    await c.wait_for(lambda: c.holder_name() == other, what="active")
    assert trio.current_time() - t0 < 1.0
    assert "127.0.0.1:0/7878" in await _blocklist(c)  # mds_session_blocklist_on_evict
    assert daemon.run_admin(["session", "evict", "78"], "json", t0)[0] == -2  # gone
    await conn.aclose()


async def test_C6_idle_session_is_evicted_after_autoclose_and_refused_after(
        cluster, autojump_clock):
    c = cluster
    await _up(c, "a")
    conn = await _raw_session(c, "client.79", "127.0.0.1:0/7979", hostname="node79")
    t0 = trio.current_time()
    msg = await conn.recv()  # C6: after session_autoclose (6 s), evicted and told so
    assert isinstance(msg, ClientSession) and msg.op == "close"
    assert msg.metadata["reason"] == "evicted"
    assert 6.0 <= trio.current_time() - t0 < 7.0
    await c.wait_for(lambda: "127.0.0.1:0/7979" in c.mds["a"].daemon.osdmap.blocklist,
                     what="the blocklist entry reaching the mds")
    log = (await c.command("log", "last", "20"))[2]
    # Server::find_idle_sessions: "<hostname> (<id>), after <seconds, decimals> seconds"
    assert re.search(r"\[WRN\] evicting unresponsive client node79 \(79\), after 6\.\d+ "
                     r"seconds", log), log
    await conn.aclose()
    # Blocklisted: a new session for the same instance is rejected.
    info = c.fsmap.fs_by_name("cephfs").holder(0)
    host, port = parse_hostport(info.addr.split("/")[0])
    conn, _ = await connect(host, port, "client.79")
    await conn.send(ClientSession("request_open", metadata={"addr": "127.0.0.1:0/7979"}))
    reply = await conn.recv()
    assert reply.op == "reject" and reply.metadata == {"error_string": "blocklisted"}
    await conn.aclose()


async def test_C5_a_renewing_client_outlives_autoclose(cluster, autojump_clock):
    c = cluster
    await _up(c, "a")
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await fs.mkdir("/k")
        await trio.sleep(20)  # > session_autoclose; renewals every session_timeout/3
        await fs.mkdir("/k/l")
        assert fs.evicted is None
    assert await _blocklist(c) == []


async def test_C6_evicted_client_reports_it_and_its_requests_fail(cluster, autojump_clock):
    c = cluster
    await _up(c, "a")
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await fs.mkdir("/m")
        daemon = c.mds["a"].daemon
        num = next(iter(daemon.sessionmap.sessions.values())).num
        assert daemon.run_admin(["session", "evict", str(num)], "json", 0.0)[0] == 0
        await c.wait_for(lambda: fs.evicted is not None, what="the client to hear of it")
        with pytest.raises(FSClientError) as e:
            await fs.mkdir("/m/n")
        assert e.value.code == EBLOCKLISTED and "evicted" in e.value.message


async def test_C3_reconnect_to_an_active_rank_is_denied_naming_the_client_instance(
        cluster, autojump_clock):
    c = cluster
    await _up(c, "a")
    conn = await _raw_session(c, "client.80", "127.0.0.1:0/8080")
    await conn.send(ClientReconnect(metadata={"addr": "127.0.0.1:0/8080"}))
    reply = await conn.recv()
    assert isinstance(reply, ClientSession) and reply.op == "close"
    await conn.aclose()
    log = (await c.command("log", "last", "20"))[2]
    # Server::handle_client_reconnect: the source instance (name and address), the delay
    assert re.search(r"\[INF\] denied reconnect attempt \(mds is up:active\) from client\.80 "
                     r"v1:127\.0\.0\.1:0/8080 after [\d.]+ \(allowed interval 2\)", log), log


async def test_X4_the_last_rank_stopping_evicts_and_blocklists_its_clients(cluster,
                                                                           autojump_clock):
    # MDSRank::stopping_start (fs set <fs> down true: max_mds 0, the last rank stops)
    c = cluster
    await _up(c, "a")
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await fs.mkdir("/x")
        num = fs.global_id
        assert (await c.command("fs", "set", "cephfs", "down", "true"))[0] == 0
        await c.wait_for(lambda: fs.evicted is not None, what="the client to be evicted")
        await c.wait_for(lambda: not c.fsmap.fs_by_name("cephfs").in_, what="rank 0 stopped")
        assert fs.addr in await _blocklist(c)  # mds_session_blocklist_on_evict
        log = (await c.command("log", "last", "30"))[2]
        assert f"[INF] Evicting (and blocklisting) client session {num} ({fs.addr})" in log
        with pytest.raises(FSClientError) as e:
            await fs.mkdir("/x/y")
        assert e.value.code == EBLOCKLISTED


async def test_C3_reconnect_without_a_session_is_rejected_as_sessionless(cluster,
                                                                        autojump_clock):
    # Server::handle_client_reconnect checks for the session before anything else
    c = cluster
    await _up(c, "a")
    info = c.fsmap.fs_by_name("cephfs").holder(0)
    host, port = parse_hostport(info.addr.split("/")[0])
    conn, _ = await connect(host, port, "client.83")
    await conn.send(ClientReconnect(metadata={"addr": "127.0.0.1:0/8383"}))
    reply = await conn.recv()
    assert reply.op == "reject" and reply.metadata == {"error_string": "sessionless"}
    await conn.aclose()
    assert "client.83" not in (await c.command("log", "last", "20"))[2]


async def test_a_rank_runtime_exists_from_taking_a_rank_and_owns_its_sessions(
        cluster, autojump_clock):
    """Issue 10 item 2: a standby holds no rank, so no RankRuntime and no sessions (`session
    ls` is empty); the active's runtime holds the client's session."""
    c = cluster
    active = await _up(c, "a", "b")
    standby = c.mds["b" if active == "a" else "a"].daemon
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await fs.mkdir("/rt")
        daemon = c.mds[active].daemon
        assert daemon.runtime is not None and daemon.sessionmap is daemon.runtime.sessionmap
        listed = json.loads(daemon.run_admin(["session", "ls"], "json", 0.0)[2])
        assert [s["id"] for s in listed] == [s.num for s in daemon.sessionmap.sessions.values()]
        assert len(listed) == 1
        assert standby.runtime is None and standby.data is None
        assert json.loads(standby.run_admin(["session", "ls"], "json", 0.0)[2]) == []
