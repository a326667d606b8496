"""The trio side of the wire: a framed, typed connection and the hello handshake.

Everything that can go wrong with a peer's bytes becomes one exception, ProtocolError, which
the owner of the connection handles by logging the reason and closing that connection only.
"""

from __future__ import annotations

import errno
import re

import trio

from common import messages, wire
from common.messages import Error, Hello, HelloOk


class ProtocolError(Exception):
    """The peer broke the protocol (garbage, oversize, bad message) or went away mid-frame."""


class ConnectionClosed(Exception):
    """The peer closed the connection cleanly (between frames)."""


class Connection:
    def __init__(self, stream: trio.abc.Stream, max_size: int = wire.DEFAULT_MAX_MESSAGE_SIZE):
        self.stream = stream
        self._decoder = wire.FrameDecoder(max_size)
        self._send_lock = trio.Lock()
        self.peer = _peer_name(stream)

    async def send(self, msg) -> None:
        await self.send_frame(wire.encode(messages.encode(msg)))

    async def send_frame(self, data: bytes) -> None:
        """Send a frame already encoded (a map encoded once for all its subscribers)."""
        async with self._send_lock:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
                raise ConnectionClosed(str(e)) from None

    async def recv(self):
        """The next message. Raises ConnectionClosed at a clean EOF, ProtocolError otherwise."""
        while True:
            try:
                raw = self._decoder.next()
            except wire.FrameError as e:
                raise ProtocolError(str(e)) from None
            if raw is not None:
                try:
                    return messages.decode(raw)
                except messages.MessageError as e:
                    raise ProtocolError(str(e)) from None
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


def parse_hostport(text: str, default_port: int = 6789) -> tuple[str, int]:
    """"127.0.0.1:6789", "[v2:127.0.0.1:3300/0,v1:...]" or "host" -> (host, port)."""
    text = text.strip().strip("[]").split(",")[0]
    for prefix in ("v2:", "v1:"):
        text = text.removeprefix(prefix)
    text = text.split("/")[0]
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    return host, int(port)


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
    host: str, port: int, entity: str, global_id: int = 0, auth: str = "",
    max_size: int = wire.DEFAULT_MAX_MESSAGE_SIZE,
) -> tuple[Connection, HelloOk]:
    """Open a connection and say hello. OSError if unreachable, HandshakeError if refused."""
    stream = await trio.open_tcp_stream(host, port)
    conn = Connection(stream, max_size)
    try:
        await conn.send(Hello(entity=entity, global_id=global_id, auth=auth))
        reply = await conn.recv()
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
    return conn, reply
