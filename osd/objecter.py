"""A session with the object store daemon, as the MDS uses it for its journal and metadata.

Use as `async with OSDClient.open(osd_addr, entity, my_addr) as c:`. Requests are pipelined:
each gets a tid, one receive task hands every reply to its caller. The osd runs the ops of one
connection in the order they were sent. Every op says who sends it (`my_addr`, the address
instance "ip:port/nonce" the monitor would blocklist) and may carry `min_epoch`, the OSDMap
epoch the osd must have before it runs the op (the epoch barrier).

Errors: an op the osd refuses raises OSDError with `.code` (a positive errno), Blocklisted
when this sender is fenced. If the connection is lost, pending and later ops raise OSDError
with ENOTCONN; whether a pending write was applied is then unknown.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
from dataclasses import dataclass

import trio

from common import messages as m
from common import wire
from common.net import ConnectionClosed, HandshakeError, ProtocolError, connect, parse_hostport

EBLOCKLISTED = errno.ESHUTDOWN  # 108


class OSDError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Blocklisted(OSDError):
    """This sender's address is in the osd's OSDMap blocklist: it has been fenced (F4)."""


@dataclass(frozen=True)
class ObjectStat:
    size: int
    version: int
    mtime: float


class OSDClient:
    def __init__(self, conn, my_addr: str, nursery: trio.Nursery) -> None:
        self.conn = conn
        self.my_addr = my_addr
        self.epoch = 0  # the newest OSDMap epoch the osd has answered with
        self._tids = itertools.count(1)
        self._waiting: dict[int, trio.MemorySendChannel] = {}
        self._lost: str | None = None
        nursery.start_soon(self._receive)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, osd_addr: str, entity: str, my_addr: str,
                   max_size: int = wire.DEFAULT_MAX_MESSAGE_SIZE):
        """Connect and say hello; OSDError(ECONNREFUSED...) if the osd is unreachable."""
        host, port = parse_hostport(osd_addr, 0)
        try:
            conn, _ = await connect(host, port, entity, max_size=max_size)
        except HandshakeError as e:
            raise OSDError(e.code, f"osd {osd_addr} refused us: {e}") from None
        except OSError as e:
            raise OSDError(e.errno or errno.ECONNREFUSED,
                           f"cannot reach the osd at {osd_addr}: {e.strerror or e}") from None
        try:
            async with trio.open_nursery() as nursery:
                client = cls(conn, my_addr, nursery)
                try:
                    yield client
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            await conn.aclose()

    async def _receive(self) -> None:
        try:
            while True:
                msg = await self.conn.recv()
                if isinstance(msg, m.OSDOpReply) and msg.tid in self._waiting:
                    self._waiting.pop(msg.tid).send_nowait(msg)
                elif isinstance(msg, m.Error):
                    self._lost = f"the osd closed the connection: {msg.message}"
                    return
        except (ConnectionClosed, ProtocolError) as e:
            self._lost = f"lost the connection to the osd: {e}"
        finally:
            self._lost = self._lost or "lost the connection to the osd"
            for ch in self._waiting.values():
                ch.close()
            self._waiting.clear()

    async def _call(self, op: str, pool: int, name: str, min_epoch: int = 0,
                    **fields) -> m.OSDOpReply:
        if self._lost:
            raise OSDError(errno.ENOTCONN, self._lost)
        tid = next(self._tids)
        send, recv = trio.open_memory_channel(1)
        self._waiting[tid] = send
        try:
            await self.conn.send(m.OSDOp(tid=tid, pool=pool, name=name, op=op,
                                         addr=self.my_addr, min_epoch=min_epoch, **fields))
            reply = await recv.receive()
        except (trio.EndOfChannel, ConnectionClosed):
            raise OSDError(errno.ENOTCONN, self._lost or "lost the connection to the osd") \
                from None
        finally:
            self._waiting.pop(tid, None)
        self.epoch = max(self.epoch, reply.epoch)
        if reply.rc < 0:
            kind = Blocklisted if reply.rc == -EBLOCKLISTED else OSDError
            raise kind(-reply.rc, reply.error or os.strerror(-reply.rc))
        return reply

    # -- data
    async def append(self, pool: int, name: str, data: bytes, min_epoch: int = 0) -> int:
        """Append; returns the object's new size."""
        return (await self._call("append", pool, name, min_epoch, data=data)).size

    async def append_at(self, pool: int, name: str, offset: int, data: bytes,
                        min_epoch: int = 0) -> int:
        """Append if the object ends at `offset`; a resend of an applied append is a no-op."""
        return (await self._call("append_at", pool, name, min_epoch, data=data,
                                 offset=offset)).size

    async def write_full(self, pool: int, name: str, data: bytes, min_epoch: int = 0) -> None:
        await self._call("write_full", pool, name, min_epoch, data=data)

    async def read(self, pool: int, name: str, offset: int = 0, length: int = -1,
                   min_epoch: int = 0) -> bytes:
        """Bytes [offset, offset + length) (-1: to the end); short at the end of the object."""
        reply = await self._call("read", pool, name, min_epoch, offset=offset, length=length)
        return reply.data

    async def remove(self, pool: int, name: str, min_epoch: int = 0) -> None:
        await self._call("remove", pool, name, min_epoch)

    async def stat(self, pool: int, name: str, min_epoch: int = 0) -> ObjectStat:
        reply = await self._call("stat", pool, name, min_epoch)
        return ObjectStat(reply.size, reply.version, reply.mtime)

    async def list(self, pool: int, prefix: str = "", min_epoch: int = 0) -> list[str]:
        return (await self._call("list", pool, prefix, min_epoch)).names

    # -- omap
    async def omap_get(self, pool: int, name: str, keys: list[str] | None = None,
                       min_epoch: int = 0) -> dict[str, bytes]:
        """The values of `keys` that exist, or every key when `keys` is None."""
        keys = None if keys is None else list(keys)
        return (await self._call("omap_get", pool, name, min_epoch, keys=keys)).values

    async def omap_set(self, pool: int, name: str, values: dict[str, bytes],
                       min_epoch: int = 0) -> None:
        await self._call("omap_set", pool, name, min_epoch, values=dict(values))

    async def omap_rm(self, pool: int, name: str, keys: list[str], min_epoch: int = 0) -> None:
        await self._call("omap_rm", pool, name, min_epoch, keys=list(keys))


class ResendingOSD:
    """The osd as the MDS uses it: an op whose connection is lost is sent again on a new
    session (`reopen` gives one, once an osd is reachable), as Ceph's objecter resends ops to
    a restarted OSD instead of failing them. Every op the MDS sends may be resent: journal
    writes use `append_at`, the others are idempotent (a resent `remove` that finds nothing
    succeeds)."""

    def __init__(self, reopen, in_flight=None) -> None:
        self._reopen = reopen  # async () -> OSDClient
        self._client: OSDClient | None = None
        self._lock = trio.Lock()
        self.in_flight = in_flight  # an mds.ophealth.InFlight: ops and when each began

    async def _do(self, name: str, *args, **kwargs):
        """One op, from its first send until it is answered, however often it is resent."""
        if self.in_flight is None:
            return await self._resend(name, *args, **kwargs)
        op = self.in_flight.start(trio.current_time())
        try:
            return await self._resend(name, *args, **kwargs)
        finally:
            self.in_flight.done(op)

    async def _session(self, lost: OSDClient | None) -> OSDClient:
        async with self._lock:
            if self._client is None or self._client is lost:
                self._client = await self._reopen()
            return self._client

    async def _resend(self, name: str, *args, **kwargs):
        client, resent = None, False
        while True:
            client = await self._session(client if resent else None)
            try:
                return await getattr(client, name)(*args, **kwargs)
            except OSDError as e:
                if isinstance(e, Blocklisted) or e.code != errno.ENOTCONN:
                    if e.code == errno.ENOENT and resent and name == "remove":
                        return None
                    raise
                resent = True

    def __getattr__(self, name: str):
        if name not in _OPS:
            raise AttributeError(name)

        async def op(*args, **kwargs):
            return await self._do(name, *args, **kwargs)

        return op


_OPS = frozenset({"append_at", "write_full", "read", "remove", "stat", "list", "omap_get",
                  "omap_set", "omap_rm"})
