"""A session with the object store daemon, as the MDS uses it for its journal and metadata.

Use as `async with OSDClient.open(osd_addr, entity, my_addr) as c:`. Requests are pipelined:
each gets a tid, one receive task hands every reply to its caller. The osd runs the ops of one
connection in the order they were sent. Every op says who sends it (`my_addr`, the address
instance "ip:port/nonce" the monitor would blocklist) and may carry `min_epoch`, the OSDMap
epoch the osd must have before it runs the op (the epoch barrier).

Objects live in a RADOS namespace (`ns`, "" by default). `operate` runs a compound op
atomically (with `["assert_version", v]` for a read-modify-write loop); `watch` registers a
callback the osd calls on every `notify` of the object (its return value is the ack payload),
and `notify` returns the acks and the watchers that timed out (rados_watch3/rados_notify2).

Errors: an op the osd refuses raises OSDError with `.code` (a positive errno), Blocklisted
when this sender is fenced. If the connection is lost, pending and later ops raise OSDError
with ENOTCONN; whether a pending write was applied is then unknown.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import trio

from common import messages as m
from common import wire
from common.net import (
    ConnectionClosed,
    HandshakeError,
    ProtocolError,
    background,
    connect,
    parse_hostport,
)
from common.replies import ReplyMux

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
        self._replies = ReplyMux()
        self._lost: str | None = None
        self._nursery = nursery
        self._cookies = itertools.count(1)
        self._watches: dict[int, Callable] = {}  # cookie -> callback(notify_id, notifier, data)
        nursery.start_soon(self._receive)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, osd_addr: str, entity: str, my_addr: str,
                   max_size: int = wire.DEFAULT_MAX_MESSAGE_SIZE, auth=None):
        """Connect and say hello; OSDError(ECONNREFUSED...) if the osd is unreachable. `auth`:
        cephx credentials (by default the task's, net.use_auth); with cephx the osd binds
        `my_addr` to the connection."""
        host, port = parse_hostport(osd_addr, 0)
        try:
            conn, _ = await connect(host, port, entity, max_size=max_size, addr=my_addr,
                                    auth=auth)
        except HandshakeError as e:
            raise OSDError(e.code, f"osd {osd_addr} refused us: {e}") from None
        except OSError as e:
            raise OSDError(e.errno or errno.ECONNREFUSED,
                           f"cannot reach the osd at {osd_addr}: {e.strerror or e}") from None
        async with background(conn) as nursery:
            yield cls(conn, my_addr, nursery)

    async def _receive(self) -> None:
        try:
            while True:
                msg = await self.conn.recv()
                if isinstance(msg, m.OSDOpReply):
                    self._replies.deliver(msg.tid, msg)  # the caller may have given up
                elif isinstance(msg, m.WatchNotify) and msg.cookie in self._watches:
                    self._nursery.start_soon(self._on_notify, msg)
                elif isinstance(msg, m.Error):
                    self._lost = f"the osd closed the connection: {msg.message}"
                    return
        except (ConnectionClosed, ProtocolError) as e:
            self._lost = f"lost the connection to the osd: {e}"
        finally:
            self._lost = self._lost or "lost the connection to the osd"
            self._replies.close()

    async def _call(self, op: str, pool: int, name: str, min_epoch: int = 0,
                    **fields) -> m.OSDOpReply:
        if self._lost:
            raise OSDError(errno.ENOTCONN, self._lost)
        tid = next(self._tids)
        self._replies.expect(tid)
        try:
            await self.conn.send(m.OSDOp(tid=tid, pool=pool, name=name, op=op,
                                         addr=self.my_addr, min_epoch=min_epoch, **fields))
            reply = await self._replies.receive(tid)
        except ConnectionClosed:
            reply = None
        finally:
            self._replies.forget(tid)
        if reply is None:
            raise OSDError(errno.ENOTCONN, self._lost or "lost the connection to the osd")
        self.epoch = max(self.epoch, reply.epoch)
        if reply.rc < 0:
            kind = Blocklisted if reply.rc == -EBLOCKLISTED else OSDError
            raise kind(-reply.rc, reply.error or os.strerror(-reply.rc))
        return reply

    def abort(self, reason: str) -> None:
        """Declare the session lost (an op got no reply in time): every op waiting on it, and
        every later one, fails with ENOTCONN; the owner opens a new session."""
        self._lost = self._lost or reason
        self._replies.close()
        self._nursery.cancel_scope.cancel()

    async def _on_notify(self, msg: m.WatchNotify) -> None:
        callback = self._watches.get(msg.cookie)
        if callback is None:
            return
        payload = callback(msg.notify_id, msg.notifier, msg.payload) or b""
        with contextlib.suppress(OSDError):
            await self._call("notify_ack", 0, "-", cookie=msg.cookie, notify_id=msg.notify_id,
                             data=bytes(payload))

    # -- compound ops, watch/notify
    async def operate(self, pool: int, name: str, ops: list, ns: str = "",
                      min_epoch: int = 0) -> m.OSDOpReply:
        """Run `ops` all or nothing (osd.store.Store.operate); the reply has `version` (the
        object's version after the op) and what the reads asked for (`data`, `values`)."""
        return await self._call("operate", pool, name, min_epoch, ns=ns, ops=list(ops))

    async def watch(self, pool: int, name: str, callback: Callable, ns: str = "",
                    timeout: float = 30.0) -> int:
        """Watch an existing object; returns the cookie. callback(notify_id, notifier,
        payload) runs for each notify; what it returns is sent back in the ack."""
        cookie = next(self._cookies)
        self._watches[cookie] = callback
        try:
            await self._call("watch", pool, name, ns=ns, cookie=cookie, timeout=timeout)
        except BaseException:
            del self._watches[cookie]
            raise
        return cookie

    async def unwatch(self, cookie: int) -> None:
        self._watches.pop(cookie, None)
        await self._call("unwatch", 0, "-", cookie=cookie)

    async def notify(self, pool: int, name: str, payload: bytes = b"", timeout: float = 10.0,
                     ns: str = "") -> tuple[list, list]:
        """Notify the object's watchers; returns once all acked or `timeout` passed:
        ([[entity, cookie, payload], ...] acked, [[entity, cookie], ...] timed out)."""
        reply = await self._call("notify", pool, name, ns=ns, data=payload, timeout=timeout)
        return reply.acks, reply.timeouts

    # -- data
    async def append(self, pool: int, name: str, data: bytes, min_epoch: int = 0) -> int:
        """Append; returns the object's new size."""
        return (await self._call("append", pool, name, min_epoch, data=data)).size

    async def append_at(self, pool: int, name: str, offset: int, data: bytes,
                        min_epoch: int = 0) -> int:
        """Append if the object ends at `offset`; a resend of an applied append is a no-op."""
        return (await self._call("append_at", pool, name, min_epoch, data=data,
                                 offset=offset)).size

    async def write_full(self, pool: int, name: str, data: bytes, min_epoch: int = 0,
                         ns: str = "") -> None:
        await self._call("write_full", pool, name, min_epoch, data=data, ns=ns)

    async def read(self, pool: int, name: str, offset: int = 0, length: int = -1,
                   min_epoch: int = 0, ns: str = "") -> bytes:
        """Bytes [offset, offset + length) (-1: to the end); short at the end of the object."""
        reply = await self._call("read", pool, name, min_epoch, offset=offset, length=length,
                                 ns=ns)
        return reply.data

    async def remove(self, pool: int, name: str, min_epoch: int = 0, ns: str = "") -> None:
        await self._call("remove", pool, name, min_epoch, ns=ns)

    async def stat(self, pool: int, name: str, min_epoch: int = 0, ns: str = "") -> ObjectStat:
        reply = await self._call("stat", pool, name, min_epoch, ns=ns)
        return ObjectStat(reply.size, reply.version, reply.mtime)

    async def list(self, pool: int, prefix: str = "", min_epoch: int = 0,
                   ns: str = "") -> list[str]:
        return (await self._call("list", pool, prefix, min_epoch, ns=ns)).names

    async def list_all(self, pool: int) -> list[tuple[str, str]]:
        """(namespace, name) of every object in the pool."""
        return [(n, o) for n, o in (await self._call("list_all", pool, "-")).names]

    # -- omap
    async def omap_get(self, pool: int, name: str, keys: list[str] | None = None,
                       min_epoch: int = 0, ns: str = "") -> dict[str, bytes]:
        """The values of `keys` that exist, or every key when `keys` is None."""
        keys = None if keys is None else list(keys)
        return (await self._call("omap_get", pool, name, min_epoch, keys=keys, ns=ns)).values

    async def omap_set(self, pool: int, name: str, values: dict[str, bytes],
                       min_epoch: int = 0, ns: str = "") -> None:
        await self._call("omap_set", pool, name, min_epoch, values=dict(values), ns=ns)

    async def omap_rm(self, pool: int, name: str, keys: list[str], min_epoch: int = 0,
                      ns: str = "") -> None:
        await self._call("omap_rm", pool, name, min_epoch, keys=list(keys), ns=ns)


class ResendingOSD:
    """The osd as the MDS uses it: an op whose connection is lost is sent again on a new
    session (`reopen` gives one, once an osd is reachable), as Ceph's objecter resends ops to
    a restarted OSD instead of failing them. Every op the MDS sends may be resent: journal
    writes use `append_at`, the others are idempotent (a resent `remove` that finds nothing
    succeeds).

    Resends go out in issue order: an op waits until every older op still in flight has
    been sent on the current session (the osd runs one connection's ops in order, so a
    journal append never overtakes an older one). An op without a reply for
    `objecter_timeout` seconds (`timeout()`; a message lost while the connection stays up)
    declares the session lost: every op on it is resent on a new one."""

    def __init__(self, reopen, in_flight=None, timeout=None) -> None:
        self._reopen = reopen  # async () -> OSDClient
        self._client: OSDClient | None = None
        self._lock = trio.Lock()
        self.in_flight = in_flight  # an mds.ophealth.InFlight: ops and when each began
        self._timeout = timeout or (lambda: math.inf)
        self._seqs = itertools.count()
        self._sent: dict[int, OSDClient | None] = {}  # op in flight -> the session it is on
        self._moved = trio.Event()  # set and replaced whenever _sent changes

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

    def _note(self, seq: int, client: OSDClient | None) -> None:
        if client is None:
            self._sent.pop(seq, None)
        else:
            self._sent[seq] = client
        self._moved.set()
        self._moved = trio.Event()

    async def _in_turn(self, seq: int, client: OSDClient) -> None:
        """Wait until every older op in flight is on `client` (or `client` is replaced)."""
        while self._client is client and any(
                s < seq and on is not client for s, on in self._sent.items()):
            await self._moved.wait()

    async def _resend(self, name: str, *args, **kwargs):
        seq = next(self._seqs)
        self._sent[seq] = None
        try:
            client, resent = None, False
            while True:
                client = await self._session(client if resent else None)
                await self._in_turn(seq, client)
                if client is not self._client:
                    continue  # replaced while waiting: the new one
                self._note(seq, client)
                limit = self._timeout()
                try:
                    with trio.move_on_after(limit):
                        return await getattr(client, name)(*args, **kwargs)
                    client.abort(f"no reply within objecter_timeout ({limit:g}s)")
                except OSDError as e:
                    if isinstance(e, Blocklisted) or e.code != errno.ENOTCONN:
                        if e.code == errno.ENOENT and resent and name == "remove":
                            return None
                        raise
                resent = True
        finally:
            self._note(seq, None)

    def __getattr__(self, name: str):
        if name not in _OPS:
            raise AttributeError(name)

        async def op(*args, **kwargs):
            return await self._do(name, *args, **kwargs)

        return op


_OPS = frozenset({"append_at", "write_full", "read", "remove", "stat", "list", "omap_get",
                  "omap_set", "omap_rm"})
