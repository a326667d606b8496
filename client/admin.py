"""A monitor session for tools: run commands, and receive pushed maps and cluster-log lines.

Resource handling: use as `async with AdminClient.open(...) as admin:`; a receive task
dispatches command replies to their callers and everything else to `admin.pushes`.
Error handling: `open` retries an unreachable monitor every `hunt_interval` until `timeout`
has passed, then raises MonUnreachable with a one-line reason.
"""

from __future__ import annotations

import contextlib
import itertools

import trio

from common import messages as m
from common.net import (
    Connection,
    ConnectionClosed,
    HandshakeError,
    ProtocolError,
    connect,
    parse_hostport,
)


class MonUnreachable(Exception):
    pass


class AdminClient:
    def __init__(self, conn, nursery: trio.Nursery) -> None:
        self.conn = conn
        self._tids = itertools.count(1)
        self._waiting: dict[int, trio.MemorySendChannel] = {}
        self.push_send, self.pushes = trio.open_memory_channel(10000)
        self.closed = trio.Event()
        nursery.start_soon(self._receive)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, mon_host: str, entity: str = "client.admin", auth: str = "",
                   timeout: float = 5.0, hunt_interval: float = 0.2):
        conn, _ = await hunt(mon_host, entity, auth, timeout, hunt_interval)
        try:
            async with trio.open_nursery() as nursery:
                client = cls(conn, nursery)
                try:
                    yield client
                finally:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The nursery wraps what the caller's block raised (e.g. MonUnreachable when the
            # mon goes away mid-command); the receive task raises nothing, so hand it back
            # as it was raised.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            await conn.aclose()

    async def _receive(self) -> None:
        try:
            while True:
                msg = await self.conn.recv()
                if isinstance(msg, m.CommandReply) and msg.tid in self._waiting:
                    self._waiting.pop(msg.tid).send_nowait(msg)
                else:
                    self.push_send.send_nowait(msg)
        except (ConnectionClosed, ProtocolError):
            pass
        finally:
            self.closed.set()
            for ch in self._waiting.values():
                ch.close()
            self.push_send.close()

    async def command(self, args: list[str], fmt: str = "plain") -> tuple[int, str, str]:
        tid = next(self._tids)
        send, recv = trio.open_memory_channel(1)
        self._waiting[tid] = send
        try:
            await self.conn.send(m.Command(tid=tid, args=list(args), format=fmt))
            reply = await recv.receive()
        except (trio.EndOfChannel, ConnectionClosed):
            raise MonUnreachable("lost the connection to the monitor") from None
        return reply.rc, reply.outs, reply.outb

    async def subscribe(self, *what: str) -> None:
        await self.conn.send(m.Subscribe(what=list(what)))


async def hunt(mon_host: str, entity: str, auth: str, timeout: float,
               hunt_interval: float) -> tuple[Connection, m.HelloOk]:
    """Try each monitor in turn until one says hello (its HelloOk names our global_id).
    MonUnreachable after `timeout`, or at once if a monitor refuses us."""
    hosts = [parse_hostport(h) for h in mon_host.split(",") if h.strip()]
    if not hosts:
        raise MonUnreachable("no monitor address configured (mon_host)")
    last = ""
    with trio.move_on_after(timeout):
        for attempt in itertools.count():
            host, port = hosts[attempt % len(hosts)]
            last = f"{host}:{port}: no answer"  # what to say if the timeout strikes mid-attempt
            try:
                return await connect(host, port, entity, auth=auth)
            except HandshakeError as e:
                raise MonUnreachable(f"monitor {host}:{port} refused us: {e}") from None
            except OSError as e:
                last = f"{host}:{port}: {e.strerror or e}"
            await trio.sleep(hunt_interval)
    raise MonUnreachable(f"cannot reach the monitor at {mon_host} after {timeout:g}s ({last})")
