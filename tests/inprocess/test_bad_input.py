"""Bad input closes only the offending connection, with a logged reason (DESIGN §6)."""

from __future__ import annotations

import struct

import msgpack
import pytest
import trio
from structlog.testing import capture_logs

from common import wire
from common.messages import Command, Hello
from common.net import Connection, ConnectionClosed, ProtocolError

pytestmark = pytest.mark.timeout(30)


CLUSTER = {"mon_options": {"ms_max_message_size": 4096}, "fs": True, "mds": "a"}  # what conftest.cluster builds


def frame(obj) -> bytes:
    body = msgpack.packb(obj)
    return struct.pack(">I", len(body)) + body


HELLO = frame({"type": "hello", "entity": "client.evil", "proto": 1})

BAD_INPUTS = {
    "garbage": b"\xff" * 64,
    "not_a_map": frame([1, 2, 3]),
    "no_type": frame({"entity": "client.x"}),
    "unknown_type_first": frame({"type": "frobnicate"}),
    "oversized": struct.pack(">I", 1 << 30) + b"x" * 16,
    "bad_entity": frame({"type": "hello", "entity": "nonsense", "proto": 1}),
    "wrong_proto": frame({"type": "hello", "entity": "client.x", "proto": 99}),
    "mistyped_after_hello": HELLO + frame({"type": "command", "tid": "one", "args": []}),
    "missing_field_after_hello": HELLO + frame({"type": "command", "args": []}),
    "unknown_type_after_hello": HELLO + frame({"type": "frobnicate"}),
    "beacon_from_client": HELLO + frame({"type": "mds_beacon", "global_id": 1, "name": "x",
                                         "state": -4, "seq": 1, "version": 0, "addr": "x"}),
    "truncated": HELLO + struct.pack(">I", 100) + b"\x81",
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
async def test_bad_input_closes_only_that_connection(cluster, autojump_clock, name):
    c = cluster
    good = Connection(await trio.open_tcp_stream("127.0.0.1", c.port))
    await good.send(Hello(entity="client.good"))
    await good.recv()
    bad = await trio.open_tcp_stream("127.0.0.1", c.port)
    with capture_logs() as logs:
        await bad.send_all(BAD_INPUTS[name])
        if name == "truncated":
            await bad.send_eof()
        with trio.fail_after(15):  # the mon closes the bad connection
            while await bad.receive_some(65536):
                pass
    assert any(e["log_level"] in ("warning", "error") for e in logs), logs
    assert not any("internal error" in e["event"] for e in logs), logs
    # the other connection and the daemons go on as if nothing happened
    await good.send(Command(tid=1, args=["mds", "stat"]))
    reply = await good.recv()
    assert reply.rc == 0 and "up:active" in reply.outb
    assert c.holder_name() == "a"
    await good.aclose()


async def test_frame_decoder_rejects_oversize_before_buffering():
    dec = wire.FrameDecoder(max_size=100)
    with pytest.raises(wire.FrameError, match="exceeds"):
        dec.feed(struct.pack(">I", 101))


async def test_connection_reports_truncated_frames():
    a, b = trio.testing.memory_stream_pair()
    conn = Connection(b)
    await a.send_all(struct.pack(">I", 10) + b"abc")
    await a.aclose()
    with pytest.raises(ProtocolError, match="truncated"):
        await conn.recv()


async def test_clean_eof_is_not_an_error():
    a, b = trio.testing.memory_stream_pair()
    await a.aclose()
    with pytest.raises(ConnectionClosed):
        await Connection(b).recv()


@pytest.mark.parametrize("args,code", [
    (["frobnicate"], 22), ([], 22), (["fs", "set", "cephfs", "max_mds", "x"], 22),
    (["fs", "get"], 22), (["fs", "get", "nosuch"], 2), (["mds", "repaired", "x:y"], 22),
    (["config", "set", "mds", "no_such_option", "1"], 22),
])
async def test_malformed_commands_get_an_errno(cluster, autojump_clock, args, code):
    rc, outs, _ = await cluster.command(*args)
    assert rc == -code and outs
