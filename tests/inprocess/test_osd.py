"""The object store daemon with the real monitor in one trio.run (autojump clock): ops through
OSDClient, fencing by the OSDMap blocklist (F4), the epoch barrier, bad input, restarts."""

from __future__ import annotations

import errno
import os
import struct

import msgpack
import pytest
import trio
from structlog.testing import capture_logs

from common import messages as m
from common.config import Config
from common.net import Connection, ConnectionClosed, ProtocolError, parse_hostport
from osd.objecter import Blocklisted, OSDClient, OSDError
from osd.server import OSDServer
from tests.inprocess.harness import Cluster

pytestmark = pytest.mark.timeout(30)

A, B = "127.0.0.1:6801/1111", "127.0.0.1:6802/2222"  # two senders' address instances


class OSDRunner:
    """One osd in the cluster's nursery; `kill` cancels it without a goodbye."""

    def __init__(self, cluster: Cluster, data_dir: str, epoch_timeout: float = 30.0) -> None:
        self.cluster = cluster
        self.data_dir = data_dir
        self.epoch_timeout = epoch_timeout
        self.server: OSDServer | None = None
        self.scope: trio.CancelScope | None = None

    async def start(self) -> OSDServer:
        async def run(task_status=trio.TASK_STATUS_IGNORED):
            with trio.CancelScope() as self.scope:
                config = Config("osd.0", overrides=self.cluster.options(
                    {"osd_data": self.data_dir}))
                await OSDServer(config, self.epoch_timeout).run(task_status=task_status)

        self.server = await self.cluster.nursery.start(run)
        return self.server

    def kill(self) -> None:
        self.scope.cancel()

    async def wait_epoch(self, epoch: int) -> None:
        await self.cluster.wait_for(lambda: self.server.osdmap.epoch >= epoch,
                                    what=f"osdmap epoch {epoch} on the osd")


CLUSTER = {"osd": False}  # what conftest.cluster builds


@pytest.fixture
async def osd(cluster, tmp_path):
    runner = OSDRunner(cluster, str(tmp_path / "osd.0"), epoch_timeout=5.0)
    await runner.start()
    await runner.wait_epoch(1)
    return runner


def mon_epoch(c: Cluster) -> int:
    return c.mon.core.osdmap.epoch


async def test_object_ops(cluster, osd, autojump_clock):
    async with OSDClient.open(osd.server.addr, "mds.a", A) as c:
        assert await c.append(1, "200.00000001", b"event1;") == 7
        assert await c.append(1, "200.00000001", b"event2;") == 14
        assert await c.read(1, "200.00000001") == b"event1;event2;"
        assert await c.read(1, "200.00000001", 7, 3) == b"eve"
        st = await c.stat(1, "200.00000001")
        assert (st.size, st.version) == (14, 2) and st.mtime > 0
        await c.write_full(1, "200.00000000", b"header")
        await c.omap_set(1, "1.00000000", {"a_head": b"\x01", "b_head": b"\x02"})
        assert await c.omap_get(1, "1.00000000") == {"a_head": b"\x01", "b_head": b"\x02"}
        assert await c.omap_get(1, "1.00000000", ["b_head", "zz"]) == {"b_head": b"\x02"}
        await c.omap_rm(1, "1.00000000", ["a_head"])
        assert await c.omap_get(1, "1.00000000") == {"b_head": b"\x02"}
        assert await c.list(1, "200.") == ["200.00000000", "200.00000001"]
        await c.remove(1, "200.00000000")
        with pytest.raises(OSDError) as e:
            await c.read(1, "200.00000000")
        assert e.value.code == errno.ENOENT
        assert c.epoch >= 1
    with open(os.path.join(osd.data_dir, "addr")) as f:
        assert f.read().strip() == osd.server.addr


async def test_pipelined_ops_run_in_order(cluster, osd, autojump_clock):
    async with OSDClient.open(osd.server.addr, "mds.a", A) as c:
        async with trio.open_nursery() as n:
            for i in range(50):
                n.start_soon(c.append, 1, "log", b"%03d;" % i)
                await trio.sleep(0)  # start in order; the sends then queue on the connection
        assert await c.read(1, "log") == b"".join(b"%03d;" % i for i in range(50))


async def test_F4_blocklisted_sender_is_fenced(cluster, osd, autojump_clock):
    async with OSDClient.open(osd.server.addr, "mds.a", A) as old, \
            OSDClient.open(osd.server.addr, "mds.b", B) as new:
        await old.append(1, "200.00000001", b"old;")
        rc, outs, _ = await cluster.command("osd", "blocklist", "add", A)
        assert rc == 0, outs
        epoch = mon_epoch(cluster)
        with capture_logs() as logs:
            with pytest.raises(Blocklisted) as e:
                await old.append(1, "200.00000001", b"split brain;", min_epoch=epoch)
            with pytest.raises(Blocklisted):
                await old.read(1, "200.00000001")
        assert e.value.code == errno.ESHUTDOWN == 108
        assert any(f"rejecting op from blocklisted mds.a {A}" in entry["event"]
                   and entry["log_level"] == "warning" for entry in logs), logs
        # the new holder is not fenced, and the fenced write left no trace
        await new.append(1, "200.00000001", b"new;", min_epoch=epoch)
        assert await new.read(1, "200.00000001") == b"old;new;"
        # un-blocklisting lets the old address in again once the osd has that map
        await cluster.ok("osd", "blocklist", "rm", A)
        assert await old.read(1, "200.00000001", min_epoch=mon_epoch(cluster)) == b"old;new;"


async def test_F4_whole_ip_blocklist_entry(cluster, osd, autojump_clock):
    await cluster.ok("osd", "blocklist", "add", "127.0.0.1:0/0")
    async with OSDClient.open(osd.server.addr, "mds.a", A) as c:
        with pytest.raises(Blocklisted):
            await c.stat(1, "x", min_epoch=mon_epoch(cluster))


async def test_epoch_barrier_holds_ops_until_the_map_arrives(cluster, osd, autojump_clock):
    async with OSDClient.open(osd.server.addr, "mds.a", A) as c:
        future = mon_epoch(cluster) + 1
        done: list[int] = []

        async def held():
            await c.append(1, "o", b"first;", min_epoch=future)
            done.append(c.epoch)

        async with trio.open_nursery() as n:
            n.start_soon(held)
            await trio.sleep(0.1)
            n.start_soon(c.append, 1, "o", b"second;")  # queued behind the held op
            await trio.sleep(1)
            assert not done and osd.server.osdmap.epoch < future
            await cluster.ok("osd", "blocklist", "add", B)  # any change makes a new epoch
        assert done and done[0] >= future
        assert await c.read(1, "o") == b"first;second;"


async def test_epoch_barrier_times_out(cluster, osd, autojump_clock):
    async with OSDClient.open(osd.server.addr, "mds.a", A) as c:
        t0 = trio.current_time()
        with pytest.raises(OSDError) as e:
            await c.append(1, "o", b"x", min_epoch=mon_epoch(cluster) + 100)
        assert e.value.code == errno.ETIMEDOUT
        assert 5 <= trio.current_time() - t0 < 6
        with pytest.raises(OSDError) as e:
            await c.stat(1, "o")  # the held op was never applied
        assert e.value.code == errno.ENOENT


def frame(obj) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


HELLO = frame({"type": "hello", "entity": "client.evil", "proto": 1})
OP = {"type": "osd_op", "tid": 1, "pool": 1, "name": "o", "op": "stat", "addr": A}
BAD_INPUTS = {
    "garbage": b"\xff" * 64,
    "op_before_hello": frame(OP),
    "bad_entity": frame({"type": "hello", "entity": "nonsense", "proto": 1}),
    "oversized": HELLO + struct.pack(">I", 1 << 30) + b"x" * 16,
    "mistyped_data": HELLO + frame({**OP, "op": "append", "data": "not bytes"}),
    "missing_addr": HELLO + frame({k: v for k, v in OP.items() if k != "addr"}),
    "unknown_type": HELLO + frame({"type": "frobnicate"}),
    "not_an_op": HELLO + frame({"type": "subscribe", "what": ["osdmap"]}),
    "truncated": HELLO + struct.pack(">I", 100) + b"\x81",
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
async def test_bad_input_closes_only_that_connection(cluster, osd, autojump_clock, name):
    host, port = parse_hostport(osd.server.addr)
    async with OSDClient.open(osd.server.addr, "mds.a", A) as good:
        await good.append(1, "o", b"before;")
        bad = await trio.open_tcp_stream(host, port)
        with capture_logs() as logs:
            await bad.send_all(BAD_INPUTS[name])
            if name == "truncated":
                await bad.send_eof()
            with trio.fail_after(15):  # the osd closes the bad connection
                while await bad.receive_some(65536):
                    pass
        assert any(e["log_level"] == "warning" for e in logs), logs
        assert not any("internal error" in e["event"] for e in logs), logs
        await good.append(1, "o", b"after;")
        assert await good.read(1, "o") == b"before;after;"


async def test_bad_op_arguments_fail_the_op_not_the_connection(cluster, osd, autojump_clock):
    conn = Connection(await trio.open_tcp_stream(*parse_hostport(osd.server.addr)))
    await conn.send(m.Hello(entity="client.x"))
    assert isinstance(await conn.recv(), m.HelloOk)
    cases = [({"op": "frobnicate"}, errno.EOPNOTSUPP),
             ({"op": "omap_set", "values": {"k": "not bytes"}}, errno.EINVAL),
             ({"op": "omap_get", "keys": [1, 2]}, errno.EINVAL),
             ({"op": "read", "offset": -5}, errno.EINVAL),
             ({"op": "append", "name": ""}, errno.EINVAL),
             ({"op": "stat", "addr": ""}, errno.EINVAL)]
    for tid, (fields, code) in enumerate(cases, 1):
        op = {"pool": 1, "name": "o", "addr": A, **fields}
        if op["op"] in ("omap_get", "read"):
            await conn.send(m.OSDOp(tid=100 + tid, pool=1, name="o", op="append", addr=A))
            assert (await conn.recv()).rc == 0
        await conn.send(m.OSDOp(tid=tid, **op))
        reply = await conn.recv()
        assert (reply.tid, reply.rc) == (tid, -code), (fields, reply)
    await conn.aclose()


async def test_restart_keeps_acknowledged_data_and_the_fence(cluster, osd, autojump_clock):
    async with OSDClient.open(osd.server.addr, "mds.a", A) as c:
        for i in range(20):
            await c.append(1, "200.00000001", b"%02d;" % i)
        await c.omap_set(1, "200.00000000", {"write_pos": b"60"})
    await cluster.ok("osd", "blocklist", "add", A)
    await osd.wait_epoch(mon_epoch(cluster))
    old_addr = osd.server.addr
    osd.kill()
    cluster.stop_mon()  # the restarted osd must fence from its stored map alone
    await trio.sleep(1)
    await osd.start()
    assert osd.server.addr != old_addr
    assert osd.server.osdmap.epoch == mon_epoch(cluster)
    async with OSDClient.open(osd.server.addr, "mds.b", B) as c:
        assert await c.read(1, "200.00000001") == b"".join(b"%02d;" % i for i in range(20))
        assert await c.omap_get(1, "200.00000000") == {"write_pos": b"60"}
    async with OSDClient.open(osd.server.addr, "mds.a", A) as c:
        with pytest.raises(Blocklisted):
            await c.stat(1, "200.00000001")


async def test_mon_outage_is_survived(cluster, osd, autojump_clock):
    def osd_session():
        return any(s.entity == "osd.0" and "osdmap" in s.subs for s in cluster.mon.sessions)

    # a mon that refuses osd_boot drops the first session: let the osd settle on its next one
    await cluster.wait_for(osd_session, what="the osd's mon session")
    await trio.sleep(2 * cluster.mon.config.get("mon_client_hunt_interval"))
    await cluster.wait_for(osd_session, what="the osd's mon session")
    with capture_logs() as logs:
        cluster.stop_mon()
        await trio.sleep(10)
        async with OSDClient.open(osd.server.addr, "mds.a", A) as c:
            await c.append(1, "o", b"during the outage;")  # it still has a map
        await cluster.start_mon()  # same port, same mon_data
        await cluster.ok("osd", "blocklist", "add", A)
        await osd.wait_epoch(mon_epoch(cluster))
    events = [e["event"] for e in logs]
    assert "lost the monitor connection" in events
    assert "cannot reach the monitor, retrying" in events
    async with OSDClient.open(osd.server.addr, "mds.a", A) as c:
        with pytest.raises(Blocklisted):
            await c.read(1, "o")


async def test_ops_wait_for_a_first_map(cluster, tmp_path, autojump_clock):
    cluster.stop_mon()
    runner = OSDRunner(cluster, str(tmp_path / "osd.1"), epoch_timeout=60.0)
    await runner.start()
    assert runner.server.osdmap.epoch == 0
    async with OSDClient.open(runner.server.addr, "mds.a", A) as c:
        async with trio.open_nursery() as n:
            n.start_soon(c.write_full, 1, "o", b"x")
            await trio.sleep(5)
            assert c.epoch == 0  # no reply yet: the osd does not know the blocklist
            await cluster.start_mon()
        assert c.epoch >= 1
        assert await c.read(1, "o") == b"x"


async def test_client_reports_an_unreachable_osd(autojump_clock):
    with pytest.raises(OSDError) as e:
        async with OSDClient.open("127.0.0.1:1", "mds.a", A):
            pass
    assert e.value.code == errno.ECONNREFUSED


async def test_a_peer_that_stops_reading_is_disconnected_after_ms_send_timeout(
        cluster, osd, autojump_clock):
    """Issue 14 item 3: replies a peer does not read wait at most ms_send_timeout (30 s)."""
    big = b"x" * (1 << 20)
    async with OSDClient.open(osd.server.addr, "mds.a", A) as good:
        await good.append(1, "big", big)
        sock = trio.socket.socket()
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
        await sock.connect(parse_hostport(osd.server.addr))
        stuck = Connection(trio.SocketStream(sock))
        await stuck.send(m.Hello(entity="client.stuck"))
        assert isinstance(await stuck.recv(), m.HelloOk)
        with capture_logs() as logs:
            start = trio.current_time()
            for tid in range(8):  # 8 MB of replies, never read
                await stuck.send(m.OSDOp(tid=tid, pool=1, name="big", op="read", addr=B))
            await cluster.wait_for(lambda: any("peer stuck" in e["event"] for e in logs),
                                   what="the osd to give up on the stuck peer")
        assert 30 <= trio.current_time() - start < 40
        with trio.fail_after(5):  # the osd closed it: what was sent, then EOF
            with pytest.raises((ConnectionClosed, ProtocolError)):  # EOF, or a cut frame
                while True:
                    await stuck.recv()
        await good.append(1, "o", b"after;")  # the osd carries on
        assert await good.read(1, "o") == b"after;"
        await stuck.aclose()


async def test_objecter_resends_unanswered_ops_in_issue_order_on_a_new_session(
        cluster, osd, autojump_clock):
    """objecter_timeout: the osd drops what mds.a sends (ms_blackhole_from) while the
    connection stays up. After the timeout the session counts as lost and the ops are resent
    on a new one, oldest first, until the osd answers: both journal appends land, in order."""
    from osd.objecter import ResendingOSD

    sessions: list[OSDClient] = []

    async def session(task_status=trio.TASK_STATUS_IGNORED):
        async with OSDClient.open(osd.server.addr, "mds.a", A) as c:
            task_status.started(c)
            await trio.sleep_forever()

    async def reopen() -> OSDClient:
        sessions.append(await cluster.nursery.start(session))
        return sessions[-1]

    objecter = ResendingOSD(reopen, timeout=lambda: 3.0)
    assert await objecter.append_at(1, "200.1", 0, b"a;") == 2
    osd.server.config.set_override("ms_blackhole_from", "mds.a")
    sizes = {}  # offset -> the object's size after that append: b's 4 says it went first

    async def append(offset: int, data: bytes) -> None:
        sizes[offset] = await objecter.append_at(1, "200.1", offset, data)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(append, 2, b"b;")
        await trio.sleep(0.1)
        nursery.start_soon(append, 4, b"c;")
        await trio.sleep(7)  # two timeouts: two new sessions, still unanswered
        assert sizes == {} and len(sessions) >= 3
        osd.server.config.set_override("ms_blackhole_from", "")
    assert sizes == {2: 4, 4: 6}
    assert await objecter.read(1, "200.1") == b"a;b;c;"
