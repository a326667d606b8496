"""The MonClient's trio shell against a real monitor and against a scripted one: hunting over
`mon_host`, subscriptions and pending commands sent again on a new session, replies matched
by tid, a silent session dropped after mon_client_ping_timeout (Ceph's MonClient).
Localhost only, port 0, autojump clock, an absolute fail_after on every test."""

from __future__ import annotations

import contextlib
import errno
import functools
import math

import pytest
import trio

from common import messages as m
from common.backoff import Backoff
from common.monclient import MonClient, MonUnreachable
from common.net import Connection, ConnectionClosed

CLUSTER = {"osd": False}  # what conftest.cluster builds


async def _next_fsmap(monc: MonClient) -> m.FSMapMsg:
    async for msg in monc.pushes:
        if isinstance(msg, m.FSMapMsg):
            return msg
    raise AssertionError("the pushes ended")


async def test_subscriptions_are_sent_again_after_the_monitor_restarts(cluster, autojump_clock):
    with trio.fail_after(60):
        host = f"127.0.0.1:{cluster.port}"
        async with MonClient.open(host, timeout=5, reconnect=True,
                                  backoff=Backoff(0.1, 1.0)) as monc:
            await monc.subscribe("fsmap")
            first = await _next_fsmap(monc)
            cluster.stop_mon()
            await trio.sleep(3)  # hunting meanwhile, with backoff
            await cluster.start_mon()  # same port, same mon_data
            again = await _next_fsmap(monc)  # unasked: the subscription came back by itself
            assert again.fsmap["epoch"] >= first.fsmap["epoch"]
            rc, _, _ = await monc.command(["fs", "new", "cephfs", "meta", "data"])
            assert rc == 0
            assert (await _next_fsmap(monc)).fsmap["epoch"] > again.fsmap["epoch"]


async def test_a_tool_without_reconnect_sees_the_end_of_its_session(cluster, autojump_clock):
    with trio.fail_after(60):
        async with MonClient.open(f"127.0.0.1:{cluster.port}", timeout=5) as admin:
            await admin.subscribe("log")
            cluster.stop_mon()
            async for _ in admin.pushes:
                pass  # ends: a tool does not reconnect
            with pytest.raises(MonUnreachable, match="lost the connection to the monitor"):
                await admin.command(["status"])


async def test_hunting_goes_past_a_dead_address_and_gives_up_with_the_reason(autojump_clock):
    with trio.fail_after(60):
        with pytest.raises(MonUnreachable) as e:
            async with MonClient.open("127.0.0.1:1,127.0.0.1:2", timeout=2, hunt_interval=0.3):
                pass
        assert str(e.value).startswith("cannot reach the monitor at 127.0.0.1:1,127.0.0.1:2 "
                                       "after 2s (127.0.0.1:")


async def test_a_silent_monitor_is_left_and_pending_commands_are_resent(nursery, autojump_clock):
    """A scripted monitor: hello, then silence on its first session (as a monitor whose host
    vanished); it answers on the next. The command waiting meanwhile is sent again with its
    tid and answered once; a reply to a tid nobody asked for is only a push."""
    sessions: list[list] = []

    async def fake_mon(stream) -> None:
        conn = Connection(stream)
        got: list = []
        sessions.append(got)
        hello = await conn.recv()
        await conn.send(m.HelloOk(global_id=4100 + len(sessions), fsid="f"))
        while True:
            msg = await conn.recv()
            got.append(msg)
            if len(sessions) > 1 and isinstance(msg, m.Command):
                await conn.send(m.CommandReply(tid=99, rc=0, outs="", outb="stray"))
                await conn.send(m.CommandReply(tid=msg.tid, rc=-errno.ENOENT, outs="no such",
                                               outb=hello.entity))

    async def quietly(stream) -> None:
        with contextlib.suppress(ConnectionClosed):
            await fake_mon(stream)

    listeners = await nursery.start(functools.partial(trio.serve_tcp, quietly, 0,
                                                      host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(60):
        async with MonClient.open(f"127.0.0.1:{port}", "client.x", timeout=5, reconnect=True,
                                  ping_timeout=3.0) as monc:
            await monc.subscribe("fsmap")
            started = trio.current_time()
            assert await monc.command(["status"]) == (-errno.ENOENT, "no such", "client.x")
            assert 3.0 <= trio.current_time() - started < 4.0  # the ping timeout, then at once
            assert monc.global_id == 4101  # the first monitor's gid is kept
            stray = await monc.pushes.receive()
            assert (stray.tid, stray.outb) == (99, "stray")
    assert len(sessions) == 2
    first, second = sessions
    assert first == [m.Subscribe(what=["fsmap"]), m.Command(tid=1, args=["status"])]
    assert second[:2] == [m.Subscribe(what=["fsmap"]), m.Command(tid=1, args=["status"])]


async def test_a_daemon_keeps_its_gid_and_counts_only_its_own_acks(nursery, autojump_clock):
    """The MDS's use (T1/T2, mon_client_ping_timeout): hello with the gid the first monitor
    gave; pushes do not keep a session alive with `heard_on_receive=False`; `on_session`
    sees each session start and `session_task` lives exactly as long as its session."""
    hellos: list[int] = []

    async def fake_mon(stream) -> None:
        conn = Connection(stream)
        hello = await conn.recv()
        hellos.append(hello.global_id)
        await conn.send(m.HelloOk(global_id=4100 + len(hellos), fsid="f"))
        with contextlib.suppress(ConnectionClosed):
            while True:  # chatty, but never acknowledges anything the owner counts
                await conn.send(m.CommandReply(tid=77, rc=0, outs="", outb=""))
                await trio.sleep(0.5)

    listeners = await nursery.start(functools.partial(trio.serve_tcp, fake_mon, 0,
                                                      host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    started: list[tuple[int, float]] = []
    tasks: list[str] = []

    async def session_task() -> None:
        tasks.append("running")
        try:
            await trio.sleep_forever()
        finally:
            tasks[-1] = "ended"

    with trio.fail_after(60):
        async with MonClient.open(f"127.0.0.1:{port}", "mds.a", timeout=math.inf,
                                  reconnect=True, ping_timeout=2.0, keep_gid=True,
                                  heard_on_receive=False, on_push=lambda msg: None,
                                  on_session=lambda hello, peer: started.append(
                                      (hello.global_id, trio.current_time())),
                                  session_task=session_task):
            while len(started) < 3:
                await trio.sleep(0.1)
    assert hellos == [0, 4101, 4101]  # the first gid, every time
    assert [gid for gid, _ in started] == [4101, 4102, 4103]
    assert 2.0 <= started[1][1] - started[0][1] < 2.5  # the ping timeout, pushes or not
    assert tasks[:2] == ["ended", "ended"]
