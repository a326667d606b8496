"""The messenger applies Ceph's fault-injection options (common/net.py over common/inject.py):
a connection between a daemon with the options set and a peer, over an in-memory stream,
on a virtual clock. What the peer observes: silence, a reset, late messages in order."""

from __future__ import annotations

import functools

import pytest
import trio
import trio.testing

from common import config as cfg
from common import messages as m
from common import wire
from common.net import Connection, ConnectionClosed, use_messenger


async def pair(options: dict[str, str]) -> tuple[Connection, Connection, cfg.Config]:
    """(mon.a with `options`, mds.a without), after the hello exchange."""
    left, right = trio.testing.memory_stream_pair()
    mds = Connection(right)  # opened before use_messenger: no injection on this side
    config = cfg.Config("mon.a")
    config.set_runtime(options)
    use_messenger(config, "mon.a")
    mon = Connection(left)
    await mds.send(m.Hello(entity="mds.a"))
    assert isinstance(await mon.recv(), m.Hello)
    await mon.send(m.HelloOk(global_id=4100, fsid="f", mon="mon.a"))  # the handshake passes
    assert isinstance(await mds.recv(), m.HelloOk)
    return mon, mds, config


async def nothing_arrives(conn: Connection, seconds: float = 30.0) -> bool:
    with trio.move_on_after(seconds):
        await conn.recv()
        return False
    return True


async def test_ms_blackhole_drops_both_ways_while_the_connection_stays_up(autojump_clock):
    mon, mds, config = await pair({"ms_blackhole_mds": "true"})
    await mon.send(m.Subscribe(what=["lost"]))
    assert await nothing_arrives(mds)
    await mds.send(m.Subscribe(what=["lost too"]))
    assert await nothing_arrives(mon)
    config.set_runtime({})  # `config rm`: takes effect on the next message
    await mds.send(m.Subscribe(what=["after"]))
    assert (await mon.recv()).what == ["after"]
    await mon.send(m.Subscribe(what=["back"]))
    assert (await mds.recv()).what == ["back"]


async def test_ms_blackhole_of_another_peer_type_changes_nothing(autojump_clock):
    mon, mds, _ = await pair({"ms_blackhole_osd": "true", "ms_blackhole_client": "true"})
    await mds.send(m.Subscribe(what=["fsmap"]))
    assert (await mon.recv()).what == ["fsmap"]


@pytest.mark.parametrize("names", ["mds.a", "mds", "client mds.a", "mds.b,mds.a"])
async def test_ms_blackhole_from_drops_only_what_the_named_peer_sends(autojump_clock, names):
    """Jepsen's one-way partition: the mon hears nothing from mds.a (by name or type), while
    mds.a still hears the mon; clearing the option heals it."""
    mon, mds, config = await pair({"ms_blackhole_from": names})
    await mds.send(m.Subscribe(what=["beacon"]))
    assert await nothing_arrives(mon)
    await mon.send(m.Subscribe(what=["map"]))
    assert (await mds.recv()).what == ["map"]
    config.set_runtime({})
    await mds.send(m.Subscribe(what=["after"]))
    assert (await mon.recv()).what == ["after"]


async def test_ms_blackhole_from_another_peer_changes_nothing(autojump_clock):
    mon, mds, _ = await pair({"ms_blackhole_from": "mds.b client"})
    await mds.send(m.Subscribe(what=["fsmap"]))
    assert (await mon.recv()).what == ["fsmap"]


async def test_ms_inject_socket_failures_shuts_the_connection(autojump_clock):
    mon, mds, _ = await pair({"ms_inject_socket_failures": "1"})
    with pytest.raises(ConnectionClosed, match="injected socket failure"):
        await mon.send(m.Subscribe(what=["fsmap"]))
    with pytest.raises(ConnectionClosed):
        await mds.recv()  # the peer sees the connection go, not silence


async def test_ms_inject_delay_holds_messages_in_order(autojump_clock):
    mon, mds, _ = await pair({"ms_inject_delay_type": "mds osd",
                              "ms_inject_delay_probability": "1",
                              "ms_inject_delay_max": "5"})
    start = trio.current_time()
    for i in range(20):
        await mds.send(m.Subscribe(what=[str(i)]))
    got = [(await mon.recv()).what[0] for _ in range(20)]
    assert got == [str(i) for i in range(20)]
    assert trio.current_time() - start > 5  # each waited up to 5 s, one after the other
    await mon.send(m.Subscribe(what=["not delayed"]))  # only what the daemon receives
    t = trio.current_time()
    assert (await mds.recv()).what == ["not delayed"] and trio.current_time() == t


async def test_config_set_reaches_the_osd_and_the_mon_at_run_time(nursery, tmp_path,
                                                                  autojump_clock):
    """`config set osd ...` / `config set mon ...`: the osd now subscribes to its config (it
    had no runtime options before), the mon applies its own; both take effect at once."""
    from tests.inprocess.harness import Cluster

    c = Cluster(nursery, str(tmp_path), profile="fast")
    await c.start_mon()
    await c.start_osd()
    await c.ok("config", "set", "osd", "ms_inject_socket_failures", "5000")
    await c.ok("config", "set", "mon", "ms_blackhole_client", "false")
    await c.wait_for(lambda: c.osd.config.get("ms_inject_socket_failures") == 5000,
                     timeout=10, what="the osd to apply its config")
    assert c.mon.config.source("ms_blackhole_client") == "mon"
    nursery.cancel_scope.cancel()


async def test_replies_sent_in_one_round_go_out_in_one_write_in_order(autojump_clock):
    """Connection.send_coalesced: the safe replies a group commit releases together reach
    the peer in the order they were sent, in one write; a later one in a write of its own."""
    left, right = trio.testing.memory_stream_pair()
    writes = []
    send_all = left.send_all

    async def counting(data) -> None:
        writes.append(len(data))
        await send_all(data)

    left.send_all = counting
    mds, client = Connection(left), Connection(right)

    sent = []

    async def reply(tid: int) -> None:
        sent.append(tid)  # trio runs the tasks of a round in an order of its own
        await mds.send_coalesced(m.ClientReply(tid=tid, rc=0))

    async with trio.open_nursery() as nursery:
        for tid in range(1, 6):
            nursery.start_soon(reply, tid)
    await reply(6)
    assert [(await client.recv()).tid for _ in range(6)] == sent
    assert sorted(sent) == [1, 2, 3, 4, 5, 6] and len(writes) == 2


@pytest.mark.parametrize("options, direct", [
    ({}, True),  # an injector, but nothing to inject: written at once
    ({"ms_blackhole_mds": "true"}, False),
    ({"ms_inject_socket_failures": "1000"}, False),
])
async def test_send_nowait_writes_at_once_unless_a_fault_could_be_injected(options, direct):
    """The monitor publishes a map to its subscribers with `send_nowait`; with fault injection
    configured each frame goes through `send_frame` instead, where the faults are decided
    (issue 14: before, any daemon with a messenger took the slow way for every frame)."""
    config = cfg.Config("mon.a")
    config.set_runtime(options)
    got: list[Connection] = []

    async def accept(stream):
        got.append(Connection(stream))
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            use_messenger(config, "mon.a")
            listeners = await nursery.start(functools.partial(trio.serve_tcp, accept, 0,
                                                              host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            mds = Connection(await trio.open_tcp_stream("127.0.0.1", port))
            await mds.send(m.Hello(entity="mds.a"))
            while not got:
                await trio.sleep(0.01)
            mon = got[0]
            assert isinstance(await mon.recv(), m.Hello)  # the peer is known: injection applies
            frame = wire.encode(m.encode(m.Subscribe(what=["x"])))
            assert mon.send_nowait(frame) == (len(frame) if direct else 0)
            if direct:
                assert (await mds.recv()).what == ["x"]
            nursery.cancel_scope.cancel()
