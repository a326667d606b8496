"""The trio side of the wire: a framed, typed connection and the hello handshake.

Everything that can go wrong with a peer's bytes becomes one exception, ProtocolError, which
the owner of the connection handles by logging the reason and closing that connection only.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import math
import os
import re

import structlog
import trio

from common import messages, wire
from common.addr import parse_hostport  # noqa: F401 (re-exported: many callers import it here)
from common.cephx import AuthError as AuthFailed
from common.inject import Injector, Messenger
from common.messages import AuthChallenge, AuthRequest, Error, Hello, HelloOk

log = structlog.get_logger("ms")

# The fault injection of the daemon whose task opened the connection (`use_messenger`); a
# context variable, so that daemons sharing a process (in-process tests) keep their own.
_MESSENGER: contextvars.ContextVar[Messenger | None] = contextvars.ContextVar(
    "mdsemu_messenger", default=None)
_HANDSHAKE = (Hello, HelloOk, AuthChallenge, AuthRequest)  # never injected


_AUTH: contextvars.ContextVar = contextvars.ContextVar("mdsemu_auth", default=None)


def use_auth(auth) -> None:
    """Connections this task and its children open authenticate with `auth` (a
    cephx_net.CephxClient; None: no cephx) unless given another."""
    _AUTH.set(auth)


def current_auth():
    return _AUTH.get()


def use_messenger(config, entity: str) -> Messenger:
    """Make the connections opened or accepted from now on, by this task and the tasks it
    starts, apply `config`'s ms_inject_* / ms_blackhole_* options as `entity`."""
    msgr = Messenger(config, entity)
    _MESSENGER.set(msgr)
    return msgr


class ProtocolError(Exception):
    """The peer broke the protocol (garbage, oversize, bad message) or went away mid-frame."""


class ConnectionClosed(Exception):
    """The peer closed the connection cleanly (between frames)."""


class Connection:
    """A framed, typed connection. With `send_timeout`, a send that stays blocked that long
    (the peer does not read) closes the connection, logged; with `max_pending_sends`, so does
    one more send while that many wait (Ceph's messenger throttles; issue 14 item 3). Either
    way the sender gets ConnectionClosed and nothing more is buffered for that peer."""

    def __init__(self, stream: trio.abc.Stream, max_size: int = wire.DEFAULT_MAX_MESSAGE_SIZE,
                 *, send_timeout: float = 0.0, max_pending_sends: int = 0):
        self.stream = stream
        self.send_timeout = send_timeout
        self.max_pending_sends = max_pending_sends
        self._pending_sends = 0
        self._given_up = ""
        self._decoder = wire.FrameDecoder(max_size)
        self._send_lock = trio.Lock()
        self.peer = _peer_name(stream)
        self.peer_entity = ""
        self._msgr = _MESSENGER.get()
        self._inj: Injector | None = None
        self._outbox: list[bytes] = []  # send_coalesced: frames waiting for this round's write
        self._signer = None  # cephx.Signer once the handshake agreed a session key
        self.session_key: bytes | None = None  # cephx: the monitor session's key
        self.identity = None  # cephx, at a service: the peer as its ticket says
        self.bound_addr = ""  # cephx, at a service: the peer's address instance
        self.busy = 0  # at an MDS: this client's requests being served (reply coalescing)

    def sign_with(self, signer) -> None:
        """cephx_sign_messages: from now on every frame is signed and every frame received
        must carry a good signature (one that does not closes the connection)."""
        self._signer = signer

    def attach(self, peer_entity: str) -> None:
        """The handshake told us who the peer is: fault injection starts with the next
        message (the hello itself is never dropped or delayed)."""
        if not self.peer_entity:
            self.peer_entity = peer_entity
            if self._msgr is not None:
                self._inj = self._msgr.injector(peer_entity)

    async def _inject_socket_failure(self, sending: bool) -> None:
        if self._inj is not None and \
                self._inj.socket_failure(self._msgr.socket_failures(), sending):
            log.info("injecting socket failure", peer=self.peer_entity)
            await self.aclose()
            raise ConnectionClosed("injected socket failure")

    async def send(self, msg) -> None:
        await self.send_frame(wire.encode(messages.encode(msg)),
                              handshake=isinstance(msg, _HANDSHAKE), what=msg.TYPE)

    async def send_frame(self, data: bytes | list[bytes], *, handshake: bool = False,
                         what: str = "frame") -> None:
        """Send a frame already encoded (a map encoded once for all its subscribers), or a
        list of frames in one write (send_coalesced; each counts towards the
        max_pending_sends bound, and each is signed on its own); fault injection applies to
        it as to any message but the handshake."""
        frames = data if isinstance(data, list) else [data]
        count = len(frames)
        if self._inj is not None and not handshake:
            if self._inj.blackholed(self._msgr.blackhole()):
                log.debug("blackhole: dropping outgoing message", msg=what,
                          peer=self.peer_entity)
                return
            await self._inject_socket_failure(sending=True)
        if self._given_up:
            raise ConnectionClosed(self._given_up)
        if self.max_pending_sends and self._pending_sends + count > self.max_pending_sends:
            await self._give_up("peer too slow, send queue full")
        if not self._send_lock.locked():
            # nothing queued before us: write what the socket takes now, with no task switch,
            # cancel scope or lock round (a quarter of an MDS request's cost went there); a
            # cancelled caller is still told here, as by any send
            await trio.lowlevel.checkpoint_if_cancelled()
            out = self._seal(frames)
            sent = self._write_now(out)
            if sent == len(out):
                return
            frames, sealed = [memoryview(out)[sent:]], True
        else:
            sealed = False
        self._pending_sends += count
        try:
            # a send cut half way leaves a broken stream: the connection is closed then
            with trio.move_on_after(self.send_timeout or math.inf) as scope:
                async with self._send_lock:
                    out = frames[0] if sealed else self._seal(frames)
                    try:
                        await self.stream.send_all(out)
                    except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
                        raise ConnectionClosed(self._given_up or str(e)) from None
        finally:
            self._pending_sends -= count
        if scope.cancelled_caught:
            await self._give_up("peer stuck, not reading")

    def _seal(self, frames: list[bytes]) -> bytes:
        """The bytes of `frames` for the wire, signed (cephx) in send order: a signature
        counts frames, so sealing happens only where the write order is decided."""
        if self._signer is not None:
            sign, skip = self._signer.sign, wire.HEADER.size
            return b"".join(wire.frame(sign(f[skip:])) for f in frames)
        return frames[0] if len(frames) == 1 else b"".join(frames)

    def send_nowait(self, data: bytes) -> int:
        """Write what the socket takes now, without waiting or yielding: the bytes written (0
        if none, or if this connection injects faults or a send is in progress). The caller
        sends the rest in order (the monitor publishing a map to a thousand subscribers does
        not wake a thousand tasks for it). ConnectionClosed if the peer is gone."""
        if self._injects_on_send() or self._send_lock.locked() or self._given_up or \
                self._signer is not None:  # signed frames go through `send_frame`
            return 0
        return self._write_now(data)

    def _write_now(self, data: bytes) -> int:
        """What the socket takes of `data` now, without yielding (0 if it takes nothing, or
        this is not a socket stream); ConnectionClosed if the peer is gone."""
        try:
            return os.write(self.stream.socket.fileno(), data)
        except (BlockingIOError, AttributeError, ValueError):  # full; not a socket (or closed)
            return 0
        except OSError as e:
            raise ConnectionClosed(self._given_up or str(e)) from None

    def _injects_on_send(self) -> bool:
        """Would `send_frame` inject a fault into a send now (a socket failure to draw, a
        blackhole)? Every connection of a daemon that called `use_messenger` has an injector,
        but with no ms_inject_socket_failures and no ms_blackhole_* its sends are plain
        ones: they need not go the slow way (issue 14: the monitor's maps and acks did, a
        task woken per subscriber per epoch)."""
        if self._inj is None:
            return False
        return self._msgr.socket_failures() > 0 or self._inj.blackholed(self._msgr.blackhole())

    async def _give_up(self, why: str) -> None:
        if not self._given_up:
            self._given_up = why
            log.warning(f"closing connection: {why}", peer=self.peer,
                        entity=self.peer_entity, send_timeout=self.send_timeout,
                        waiting=self._pending_sends)
            await self.aclose()
        raise ConnectionClosed(why)

    async def send_coalesced(self, msg, gather: bool = True) -> None:
        """Send `msg` together with the others sent this way in the same scheduling round,
        in one write: the replies a group commit makes safe at once cost one system call,
        not one each. The first caller waits one round, then writes them all (in order);
        the others return at once. Only the writer sees ConnectionClosed: callers that use
        this do not care whether their message arrived (a lost reply is resent for).
        Signed connections (cephx) sign each frame of the write on its own. Without
        `gather` (a message that no other of its round is expected to join, an MDS's unsafe
        reply) it is written at once, unless a round's write is waiting: it joins that."""
        if self._inj is not None:
            if self._inj.blackholed(self._msgr.blackhole()):
                log.debug("blackhole: dropping outgoing message", msg=msg.TYPE,
                          peer=self.peer_entity)
                return
            await self._inject_socket_failure(sending=True)
        if self.max_pending_sends and \
                self._pending_sends + len(self._outbox) >= self.max_pending_sends:
            await self._give_up("peer too slow, send queue full")  # counted per message
        if not gather and not self._outbox:
            await self.send_frame(wire.encode(messages.encode(msg)), handshake=True,
                                  what=msg.TYPE)
            return
        self._outbox.append(wire.encode(messages.encode(msg)))
        if len(self._outbox) > 1:
            return  # the writer of this round has not written yet: it takes ours too
        await trio.lowlevel.cancel_shielded_checkpoint()  # let the others of the round add
        batch, self._outbox = self._outbox, []  # what comes next has a writer of its own
        # injection was applied per message above; the send lock is FIFO, so batches go
        # out in the order they were taken
        await self.send_frame(batch, handshake=True, what=msg.TYPE)

    async def recv(self):
        """The next message. Raises ConnectionClosed at a clean EOF, ProtocolError otherwise.
        With injection on, drops blackholed messages and holds delayed ones (in order)."""
        while True:
            msg = await self._recv()
            if isinstance(msg, Hello):
                self.attach(msg.entity)
            inj = self._inj
            if inj is None or isinstance(msg, _HANDSHAKE):
                return msg
            if inj.blackholed(self._msgr.blackhole()) or \
                    inj.deaf_to(self._msgr.blackhole_from()):
                log.debug("blackhole: dropping incoming message", msg=msg.TYPE,
                          peer=self.peer_entity)
                continue
            now = trio.current_time()
            at = inj.deliver_at(now, *self._msgr.delay())
            if at > now:
                await trio.sleep_until(at)
            return msg

    async def _recv(self):
        while True:
            try:
                raw = self._decoder.next_raw()
                if raw is not None:
                    raw = wire.decode_body(self._check_signature(raw))
            except wire.FrameError as e:
                raise ProtocolError(str(e)) from None
            if raw is not None:
                try:
                    return messages.decode(raw)
                except messages.MessageError as e:
                    raise ProtocolError(str(e)) from None
            await self._inject_socket_failure(sending=False)
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
                raise ConnectionClosed(str(e)) from None
            if not data:
                if self._decoder.pending:
                    raise ProtocolError(f"truncated frame ({self._decoder.pending} bytes)")
                raise ConnectionClosed("EOF")
            try:
                self._decoder.feed(data)
            except wire.FrameError as e:
                raise ProtocolError(str(e)) from None

    def _check_signature(self, body: bytes) -> bytes:
        if self._signer is None:
            return body
        try:
            return self._signer.verify(body)
        except Exception as e:  # cephx.AuthError: tampered, injected or replayed
            log.warning("closing connection: bad message signature", peer=self.peer,
                        entity=self.peer_entity, reason=str(e))
            raise wire.FrameError(f"bad message signature: {e}") from None

    async def aclose(self) -> None:
        with trio.move_on_after(1) as scope:
            scope.shield = True
            await self.stream.aclose()


def _peer_name(stream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
        return f"{host}:{port}"
    except Exception:
        return "?"


ENTITY_RE = re.compile(r"^(mds|client|osd|mon)\.[A-Za-z0-9_.\-]+$")


async def guarded(conn: Connection, serve, log) -> None:
    """Run `serve(conn)` for one accepted connection. Bad input closes only this connection,
    with the reason logged and an error frame sent back (DESIGN §6); a bug in the handler is
    logged and closes it too; nothing propagates to the server."""
    try:
        await serve(conn)
    except ProtocolError as e:
        log.warning("closing connection: bad input", peer=conn.peer, reason=str(e))
        with trio.move_on_after(0.5):
            try:
                await conn.send(Error(code=errno.EBADMSG, message=str(e)))
            except ConnectionClosed:
                pass
    except ConnectionClosed:
        pass
    except Exception:
        log.exception("closing connection after an internal error", peer=conn.peer)
    finally:
        await conn.aclose()


class HandshakeError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


async def connect(
    host: str, port: int, entity: str, global_id: int = 0, auth=None,
    max_size: int = wire.DEFAULT_MAX_MESSAGE_SIZE, addr: str = "",
) -> tuple[Connection, HelloOk]:
    """Open a connection and say hello. OSError if unreachable, HandshakeError if refused.
    `auth` (common/cephx_net.CephxClient; by default the task's `use_auth`) answers a cephx
    challenge; `addr` is our address instance, bound to the connection by an MDS or osd."""
    auth = auth or _AUTH.get()
    stream = await trio.open_tcp_stream(host, port)
    conn = Connection(stream, max_size)
    try:
        await conn.send(Hello(entity=entity, global_id=global_id, auth="cephx" if auth else ""))
        reply = await conn.recv()
        if isinstance(reply, AuthChallenge):
            if not auth:
                raise AuthFailed(errno.EACCES, f"authentication failed: the {reply.service} "
                                               f"requires cephx and {entity} has no key")
            reply = await auth.handshake(conn, reply, addr)
    except AuthFailed as e:
        await conn.aclose()
        raise HandshakeError(e.code, str(e)) from None
    except (ConnectionClosed, ProtocolError) as e:
        await conn.aclose()
        raise HandshakeError(errno.ECONNRESET, f"handshake failed: {e}") from None
    except BaseException:
        await conn.aclose()
        raise
    if isinstance(reply, Error):
        await conn.aclose()
        raise HandshakeError(reply.code, reply.message)
    if not isinstance(reply, HelloOk):
        await conn.aclose()
        raise HandshakeError(errno.EPROTO, f"expected hello_ok, got {reply.TYPE}")
    conn.attach(reply.mon)
    return conn, reply


@contextlib.asynccontextmanager
async def background(conn: Connection | None = None):
    """A nursery for the tasks behind a client object (its receive task), cancelled when the
    block ends; `conn` is closed then. What the block raises comes out as it was raised, not
    wrapped in an exception group (the background tasks end quietly)."""
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    finally:
        if conn is not None:
            await conn.aclose()
