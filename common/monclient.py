"""The monitor client: one session with a monitor, for the tools, the osd and the filesystem
client (Ceph's MonClient). The decisions are in `common/monclient_core.py`; this shell only
connects, moves messages and sleeps.

Use as `async with MonClient.open(mon_host, entity, ...) as monc:`. Commands are matched to
their replies by tid (`command`); subscriptions are kept and sent again on every new session
(`subscribe`); every other message from the monitor goes to `on_push` (a plain function,
which may raise ProtocolError to drop the session) or, without one, to `monc.pushes`.

Resource handling: the session and its receive task end with the block.
Error handling: `open` hunts over the `mon_host` addresses until `timeout` has passed, then
raises MonUnreachable with a one-line reason (at once if a monitor refuses us). With
`reconnect`, a lost session (or one silent for `ping_timeout`) is followed by a new hunt that
goes on forever, with `backoff` between attempts; pending commands are sent again. Without
it, a lost session ends `pushes` and pending commands raise MonUnreachable.

For a daemon (the MDS): `keep_gid` says hello with the gid the first monitor gave, so that a
restarted monitor sees the same gid (T1/T2); `heard_on_receive=False` leaves liveness to the
owner, who calls `heard` (the MDS counts only its beacon acks); `on_session(hello, peer)` runs
as each session starts, before its first message is sent; `session_task()` runs beside the
session's receive loop and ends with it (ConnectionClosed or ProtocolError from either one
ends the session).
"""

from __future__ import annotations

import contextlib
import functools
import math

import trio

from common import messages as m
from common import wire
from common.backoff import Backoff
from common.monclient_core import MonClientCore, MonUnreachable
from common.net import (
    AuthFailed,
    Connection,
    ConnectionClosed,
    HandshakeError,
    ProtocolError,
    background,
    connect,
    current_auth,
)
from common.replies import ReplyMux

__all__ = ["MonClient", "MonUnreachable", "hunt"]


class MonClient:
    def __init__(self, core: MonClientCore, entity: str, auth, max_size: int,
                 reconnect: bool, log=None, on_push=None, *, keep_gid: bool = False,
                 heard_on_receive: bool = True, on_session=None, session_task=None) -> None:
        self.core = core
        self.entity = entity
        self.auth = auth or current_auth()
        self.max_size = max_size
        self.reconnect = reconnect
        self.log = log  # None: a tool, which stays quiet (its caller reports)
        self.on_push = on_push
        self.keep_gid = keep_gid
        self.heard_on_receive = heard_on_receive
        self.on_session = on_session
        self.session_task = session_task
        self.conn: Connection | None = None
        self.mux = ReplyMux()
        self.push_send, self.pushes = trio.open_memory_channel(10000)
        self.closed = trio.Event()
        self._scope: trio.CancelScope | None = None  # the session's ping deadline

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, mon_host: str, entity: str = "client.admin", auth=None,
                   timeout: float = 5.0, hunt_interval: float = 0.2, *,
                   reconnect: bool = False, backoff: Backoff | None = None,
                   ping_timeout: float | None = None,
                   max_size: int = wire.DEFAULT_MAX_MESSAGE_SIZE, log=None, on_push=None,
                   keep_gid: bool = False, heard_on_receive: bool = True, on_session=None,
                   session_task=None):
        """`backoff` defaults to a constant `hunt_interval`; `timeout` bounds the first hunt
        (math.inf: hunt until a monitor answers)."""
        core = MonClientCore(mon_host, backoff or Backoff.constant(hunt_interval),
                             None if math.isinf(timeout) else timeout, ping_timeout)
        client = cls(core, entity, auth, max_size, reconnect, log, on_push, keep_gid=keep_gid,
                     heard_on_receive=heard_on_receive, on_session=on_session,
                     session_task=session_task)
        conn, hello = await client._hunt()
        try:
            started = await client._start(conn, hello)
        except BaseException:
            await conn.aclose()
            raise
        async with background() as nursery:
            nursery.start_soon(client._run, conn if started else None)
            yield client

    # -- the session
    async def _hunt(self) -> tuple[Connection, m.HelloOk]:
        core = self.core
        core.start_hunt(trio.current_time())
        with trio.move_on_at(math.inf if core.deadline is None else core.deadline):
            while True:
                host, port = core.target()
                try:
                    gid = self.core.global_id if self.keep_gid else 0
                    return await connect(host, port, self.entity, global_id=gid, auth=self.auth,
                                         max_size=self.max_size)
                except HandshakeError as e:
                    delay = core.connect_failed(str(e), refused=True)
                    reason = str(e)
                except OSError as e:
                    reason = e.strerror or str(e)
                    delay = core.connect_failed(reason)
                if self._chatty():
                    self.log.warning("cannot reach the monitor, retrying", mon=f"{host}:{port}",
                                     error=reason, retry_in=delay)
                await trio.sleep(delay)
        raise core.gave_up()

    async def _start(self, conn: Connection, hello: m.HelloOk) -> bool:
        """A new session: send what it starts with. False if it broke meanwhile."""
        self.conn = conn
        if self.on_session is not None:
            self.on_session(hello, conn.peer)
        try:
            for msg in self.core.connected(trio.current_time(), hello.global_id):
                await conn.send(msg)
        except ConnectionClosed as e:
            self._lost(conn, str(e))
            await self._close(conn)
            return False
        if self._chatty():
            self.log.info("connected to the monitor", mon=conn.peer)
        return True

    async def _run(self, conn: Connection | None) -> None:
        """Receive on `conn` (a started session, or None if it broke); then hunt again."""
        try:
            while True:
                if conn is not None:
                    await self._receive(conn)
                if not self.reconnect:
                    return
                await trio.sleep(self.core.lost(trio.current_time()))
                conn, hello = await self._hunt()
                if not await self._start(conn, hello):
                    conn = None
        finally:
            self.closed.set()
            self.mux.close()
            self.push_send.close()

    async def _receive(self, conn: Connection) -> None:
        """The session: its receive loop (and the owner's `session_task`) until it breaks or
        the monitor stays silent for the ping timeout."""
        why: list[str] = []

        async def until_broken(fn) -> None:
            try:
                await fn()
            except (ConnectionClosed, ProtocolError) as e:
                why.append(str(e))
                scope.cancel()

        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                self._rearm()
                async with trio.open_nursery() as nursery:
                    if self.session_task is not None:
                        nursery.start_soon(until_broken, self.session_task)
                    if self.auth:  # cephx: service tickets, fetched and renewed
                        nursery.start_soon(until_broken,
                                           functools.partial(self.auth.mon_session, conn))
                    await until_broken(functools.partial(self._receive_loop, conn))
            self._lost(conn, why[0] if why else f"nothing heard for {self.core.ping_timeout:g}s"
                                                f" (mon_client_ping_timeout); hunting")
        finally:
            await self._close(conn)

    async def _receive_loop(self, conn: Connection) -> None:
        core = self.core
        while True:
            msg = await conn.recv()
            if self.heard_on_receive:
                self.heard()
            if self.auth and self._auth_message(conn, msg):
                continue
            if isinstance(msg, m.CommandReply) and core.reply(msg):
                self.mux.deliver(msg.tid, msg)
            elif self.on_push is not None:
                self.on_push(msg)
            else:
                self.push_send.send_nowait(msg)

    def _auth_message(self, conn: Connection, msg) -> bool:
        try:
            return self.auth.on_mon_message(conn, msg)
        except AuthFailed as e:
            raise ProtocolError(f"bad cephx message from the monitor: {e}") from None

    def _chatty(self) -> bool:
        """Log the hunt? Not a tool's first one, which has a deadline: its caller reports."""
        return self.log is not None and self.core.deadline is None

    def _lost(self, conn: Connection, reason: str) -> None:
        if self.log is not None:
            self.log.warning("lost the monitor connection", mon=conn.peer, error=reason)

    async def _close(self, conn: Connection) -> None:
        self.conn = self._scope = None
        await conn.aclose()

    def heard(self, at: float | None = None) -> None:
        """The monitor is alive (as of `at`, by default now): push the ping deadline back
        (an owner may count its own acknowledgements this way)."""
        self.core.heard(trio.current_time() if at is None else at)
        self._rearm()

    def _rearm(self) -> None:
        deadline = self.core.ping_deadline()
        if self._scope is not None and deadline is not None:
            self._scope.deadline = deadline

    # -- what callers do
    async def send(self, msg) -> bool:
        """Send on the current session; False if there is none (hunting) or it just broke."""
        if self.conn is None:
            return False
        try:
            await self.conn.send(msg)
            return True
        except ConnectionClosed:
            return False

    async def command(self, args: list[str], fmt: str = "plain") -> tuple[int, str, str]:
        cmd = self.core.command(args, fmt)
        self.mux.expect(cmd.tid)
        try:
            if not await self.send(cmd) and not self.reconnect:
                raise MonUnreachable("lost the connection to the monitor")
            reply = await self.mux.receive(cmd.tid)
        finally:
            self.mux.forget(cmd.tid)
            self.core.abandon(cmd.tid)
        if reply is None:
            raise MonUnreachable("lost the connection to the monitor")
        return reply.rc, reply.outs, reply.outb

    async def subscribe(self, *what: str) -> None:
        msg = self.core.subscribe(list(what))
        if msg is not None:
            await self.send(msg)

    async def renew_subs(self) -> None:
        msg = self.core.renew_subs()
        if msg is not None:
            await self.send(msg)

    def set_session_msg(self, key: str, msg) -> None:
        """Send `msg` at the start of every session from the next one on."""
        self.core.set_session_msg(key, msg)

    def drop_session_msg(self, key: str) -> None:
        self.core.drop_session_msg(key)

    @property
    def global_id(self) -> int:
        return self.core.global_id



async def hunt(mon_host: str, entity: str, auth, timeout: float,
               hunt_interval: float) -> tuple[Connection, m.HelloOk]:
    """One connection to the first monitor that says hello (a tool's own, e.g. a test's).
    MonUnreachable after `timeout`, or at once if a monitor refuses us."""
    core = MonClientCore(mon_host, Backoff.constant(hunt_interval),
                         None if math.isinf(timeout) else timeout)
    return await MonClient(core, entity, auth, wire.DEFAULT_MAX_MESSAGE_SIZE, False)._hunt()
