"""The object store daemon's trio shell: serves `osd_op`, follows the OSDMap, fences (F4).

Ops on one connection run strictly in order: an op held at the epoch barrier holds the ones
behind it, which is what a journal writer needs. The SQLite calls run directly on the trio
thread rather than in a worker thread: each is short (one fsync for a write), ops never
interleave inside the store, and virtual time under the autojump clock stays honest (with a
worker thread the clock would jump ahead while the fsync runs).

The osd keeps the newest OSDMap in its store, so a restarted osd fences from its first op;
until it has any map at all it holds every op (as if each asked for epoch 1). A pool that
leaves the OSDMap (`osd pool rm`) takes its objects with it.

Watch/notify (osd/watch.py keeps the books): a `notify` is answered once every watcher acked
or its timeout passed, so it runs in its own task and the ops behind it (among them the
sender's own `notify_ack`, when it watches the object too) go on.
"""

from __future__ import annotations

import errno
import itertools
import math
import os
import sqlite3

import msgpack
import structlog
import trio

from common import messages as m
from common.auth import cephx_on, hello_key
from common.backoff import Backoff
from common.cephx_net import accept_service
from common.config import Config
from common.monclient import MonClient
from common.net import (
    ENTITY_RE,
    Connection,
    ConnectionClosed,
    ProtocolError,
    guarded,
    parse_hostport,
    use_messenger,
)
from common.osdmap import OSDMap
from osd import opcaps
from osd.store import Stat, Store, StoreError, locator
from osd.watch import Watches

log = structlog.get_logger("osd")

EBLOCKLISTED = errno.ESHUTDOWN  # 108, the errno Ceph returns to a blocklisted client
HELLO_TIMEOUT = 10.0
EPOCH_TIMEOUT = 30.0  # how long an op may wait at the epoch barrier
REPLY_SLACK = 4096  # room for the rest of a reply next to the data of a read
WATCH_TIMEOUT = 30.0  # osd_client_watch_timeout: a watch outlives its connection this long
NOTIFY_TIMEOUT = 10.0  # client_notify_timeout: a notify's wait when it names none


def is_fenced(osdmap: OSDMap, addr: str) -> bool:
    """F4: the sender's address instance is blocklisted, or its whole IP ("ip:0/0") is."""
    if osdmap.is_blocklisted(addr):
        return True
    host = addr.split("/")[0].rpartition(":")[0]
    return bool(host) and osdmap.is_blocklisted(f"{host}:0/0")


class OSDServer:
    def __init__(self, config: Config, epoch_timeout: float = EPOCH_TIMEOUT) -> None:
        self.config = config
        self.entity = config.name
        try:
            self.osd_id = int(config.entity_id)
        except ValueError:
            raise ValueError(f"an osd id is a number, not {config.entity_id!r}") from None
        self.epoch_timeout = epoch_timeout
        self.osdmap = OSDMap(epoch=0)
        self.store: Store | None = None
        self.addr = ""  # "ip:port" where ops are served
        self._map_changed = trio.Event()
        self._mon_knows_boot = True
        self.watches = Watches()
        self._conn_ids = itertools.count(1)
        self._conns: dict[int, Connection] = {}
        self._notified: dict[int, trio.Event] = {}  # notify id -> set when it completes
        self._monc: MonClient | None = None
        self.auth = None  # cephx: a cephx_net.CephxClient (from `run`)
        self.fenced_gids = opcaps.GidAddrs()  # cephx: every address each gid was seen at

    # -- life cycle
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        use_messenger(self.config, self.entity)
        self.auth = hello_key(self.config)  # cephx: its mon session's and its clients' side
        data_dir = self.config.get("osd_data")
        self.store = Store(data_dir)
        try:
            saved = self.store.get_meta("osdmap")
            if saved is not None:
                self.osdmap = OSDMap.from_wire(msgpack.unpackb(saved, raw=False))
            host = parse_hostport(self.config.get("public_addr") or "127.0.0.1", 0)[0]
            listeners = await trio.open_tcp_listeners(0, host=host)
            self.addr = f"{host}:{listeners[0].socket.getsockname()[1]}"
            _write_atomically(os.path.join(data_dir, "addr"), self.addr + "\n")
            log.info("osd listening", addr=self.addr, osd_data=data_dir,
                     osdmap_epoch=self.osdmap.epoch)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(trio.serve_listeners, self._handle, listeners)
                nursery.start_soon(self._mon_loop)
                nursery.start_soon(self._expire_watches)
                task_status.started(self)
        finally:
            self.store.close()

    # -- the mon session: subscribe to the OSDMap, announce our address on every session
    async def _mon_loop(self) -> None:
        hunt = self.config.get("mon_client_hunt_interval")
        async with MonClient.open(self.config.get("mon_host"), self.entity,
                                  auth=self.auth, timeout=math.inf,
                                  backoff=Backoff(hunt, 10 * hunt), reconnect=True,
                                  max_size=self.config.get("ms_max_message_size"), log=log,
                                  on_push=self._mon_push) as monc:
            self._monc = monc
            await monc.subscribe("osdmap", "config")  # config: ms_inject_* at run time
            if self._mon_knows_boot:
                monc.set_session_msg("osd_boot", m.OSDBoot(osd_id=self.osd_id, addr=self.addr))
                await monc.send(m.OSDBoot(osd_id=self.osd_id, addr=self.addr))
            await trio.sleep_forever()

    def _mon_push(self, msg) -> None:
        if isinstance(msg, m.OSDMapMsg):
            try:
                osdmap = OSDMap.from_wire(msg.osdmap)
            except (KeyError, TypeError, ValueError) as e:
                raise ProtocolError(f"bad osdmap: {e!r}") from None
            self._on_osdmap(osdmap)
        elif isinstance(msg, m.ConfigMsg):
            changed = self.config.set_runtime(msg.values)
            if changed:
                log.info("config changed", options=changed)
        elif isinstance(msg, m.Error):
            if "osd_boot" in msg.message:  # an older mon: carry on without announcing
                log.warning("the monitor does not accept osd_boot; not announcing our address")
                self._mon_knows_boot = False
                self._monc.drop_session_msg("osd_boot")
            raise ProtocolError(f"monitor said: {msg.message}")

    def _on_osdmap(self, osdmap: OSDMap) -> None:
        if osdmap.epoch <= self.osdmap.epoch:
            return
        self.store.set_meta("osdmap", msgpack.packb(osdmap.to_wire()))
        log.info("osdmap", epoch=osdmap.epoch, blocklist=len(osdmap.blocklist))
        for pool in sorted(set(self.osdmap.pools) - set(osdmap.pools)):
            n = self.store.remove_pool(pool)
            log.info("pool removed", pool=pool, objects=n)
        self.osdmap = osdmap
        self._map_changed.set()
        self._map_changed = trio.Event()

    async def _wait_for_epoch(self, epoch: int) -> bool:
        with trio.move_on_after(self.epoch_timeout):
            while self.osdmap.epoch < epoch:
                await self._map_changed.wait()
            return True
        return False

    # -- client connections
    async def _handle(self, stream: trio.SocketStream) -> None:
        await guarded(Connection(stream, self.config.get("ms_max_message_size"),
                                 send_timeout=self.config.get("ms_send_timeout"),
                                 max_pending_sends=self.config.get("ms_max_queued_messages")),
                      self._serve_conn, log)

    async def _serve_conn(self, conn: Connection) -> None:
        entity = await self._handshake(conn)
        if entity is not None:
            await self._serve(conn, entity)

    async def _handshake(self, conn: Connection) -> str | None:
        with trio.move_on_after(HELLO_TIMEOUT):
            hello = await conn.recv()
            if not isinstance(hello, m.Hello):
                raise ProtocolError(f"expected hello, got {hello.TYPE}")
            refusal = None
            if hello.proto != m.PROTOCOL_VERSION:
                refusal = (errno.EPROTONOSUPPORT, f"protocol {hello.proto} not supported "
                                                  f"(want {m.PROTOCOL_VERSION})")
            elif not ENTITY_RE.match(hello.entity):
                refusal = (errno.EINVAL, f"bad entity name '{hello.entity}'")
            if refusal:
                log.warning("refusing connection", peer=conn.peer, entity=hello.entity,
                            reason=refusal[1])
                await conn.send(m.Error(code=refusal[0], message=refusal[1]))
                return None
            if cephx_on(self.config):
                got = await accept_service(
                    conn, hello, "osd", self.auth,
                    lambda proof: m.HelloOk(global_id=0, fsid=self.osdmap.fsid, mon=self.entity,
                                            auth=proof), log)
                if got is None:
                    return None
                self.fenced_gids.saw(got[0].gid, got[1])
                conn.osd_caps = opcaps.parse(got[0].caps)
                return got[0].entity
            await conn.send(m.HelloOk(global_id=0, fsid=self.osdmap.fsid, mon=self.entity))
            return hello.entity
        log.warning("closing connection: no hello in time", peer=conn.peer)
        return None

    async def _serve(self, conn: Connection, entity: str) -> None:
        cid = next(self._conn_ids)
        self._conns[cid] = conn
        try:
            while True:
                msg = await conn.recv()
                if not isinstance(msg, m.OSDOp):
                    raise ProtocolError(f"unexpected message {msg.TYPE} from {entity}")
                if conn.identity is not None and \
                        (refused := self._refuse(conn, entity, msg)) is not None:
                    await self._send(conn, refused)
                elif msg.op == "notify":
                    self._nursery.start_soon(self._answer_notify, conn, entity, msg, cid)
                else:
                    await self._send(conn, await self._execute(entity, msg, cid))
        finally:
            del self._conns[cid]
            self.watches.disconnect(cid, trio.current_time())

    def _refuse(self, conn: Connection, entity: str, op: m.OSDOp) -> m.OSDOpReply | None:
        """cephx: the op's address must be the connection's (an instance named by the peer
        at the handshake, or the one its gid was fenced at), and its osd caps must allow it
        on the pool and namespace. Logged, and answered with Ceph's errno."""
        why = opcaps.check(conn.identity, conn.bound_addr, getattr(conn, "osd_caps", None),
                           op, self.osdmap, self.fenced_gids)
        if why is None:
            return None
        code, message = why
        log.warning("refusing op", entity=entity, op=op.op, object=f"{op.pool}/{op.name}",
                    reason=message)
        return m.OSDOpReply(tid=op.tid, rc=-code, epoch=self.osdmap.epoch, error=message)

    async def _answer_notify(self, conn: Connection, entity: str, op: m.OSDOp,
                             cid: int) -> None:
        reply = await self._execute(entity, op, cid)
        try:
            await self._send(conn, reply)
        except (ConnectionClosed, trio.ClosedResourceError, trio.BrokenResourceError, OSError):
            pass  # the notifier went away meanwhile

    async def _send(self, conn: Connection, msg) -> None:
        """A reply the peer does not read for ms_send_timeout closes its connection (the
        Connection's send_timeout): a peer that stopped reading holds no more than one reply
        here, and watch notifies no more than ms_max_queued_messages (issue 14)."""
        await conn.send(msg)

    # -- watch/notify
    async def _notify(self, entity: str, op: m.OSDOp, key: str) -> dict:
        timeout = op.timeout if op.timeout > 0 else NOTIFY_TIMEOUT
        nid, targets = self.watches.notify((op.pool, key), timeout, trio.current_time())
        done = self._notified[nid] = trio.Event()
        if not targets:
            done.set()
        for cid, cookie in targets:
            conn = self._conns.get(cid)
            if conn is not None:
                msg = m.WatchNotify(cookie=cookie, notify_id=nid, notifier=entity,
                                    payload=op.data)
                with trio.move_on_after(timeout):
                    try:
                        await conn.send(msg)
                    except (ConnectionClosed, trio.ClosedResourceError, trio.BrokenResourceError,
                            OSError):
                        pass  # the watcher will time out (or its watch expire)
        try:
            with trio.move_on_after(timeout):
                await done.wait()
        finally:
            self._notified.pop(nid, None)
            n = self.watches.finish(nid)
        return {"acks": n.acks, "timeouts": n.timeouts}

    def _acked(self, notify_id: int) -> None:
        event = self._notified.get(notify_id)
        if event is not None:
            event.set()

    async def _expire_watches(self) -> None:
        while True:
            await trio.sleep(1.0)
            for nid in self.watches.expire(trio.current_time()):
                self._acked(nid)

    # -- one op: barrier, fence, execute
    async def _execute(self, entity: str, op: m.OSDOp, cid: int = 0) -> m.OSDOpReply:
        def fail(code: int, message: str) -> m.OSDOpReply:
            return m.OSDOpReply(tid=op.tid, rc=-code, epoch=self.osdmap.epoch, error=message)

        if not op.addr:
            return fail(errno.EINVAL, "op without the sender's address")
        need = max(op.min_epoch, 1)
        if self.osdmap.epoch < need and not await self._wait_for_epoch(need):
            return fail(errno.ETIMEDOUT, f"timed out waiting for osdmap epoch {need} "
                                         f"(have {self.osdmap.epoch})")
        if is_fenced(self.osdmap, op.addr):
            log.warning(f"rejecting op from blocklisted {entity} {op.addr}", op=op.op,
                        object=f"{op.pool}/{op.name}", epoch=self.osdmap.epoch)
            return fail(EBLOCKLISTED, f"{op.addr} is blocklisted")
        try:
            if op.op == "notify":
                key = locator(op.ns, op.name)
                self.store.stat(op.pool, key)  # ENOENT, as Ceph's notify on no object
                fields = await self._notify(entity, op, key)
            else:
                fields = self._run(op, entity, cid)
        except StoreError as e:
            if e.code == errno.EIO:
                log.error("object store error", op=op.op, error=str(e))
            return fail(e.code, str(e))
        except sqlite3.DatabaseError as e:
            log.error("object store error", op=op.op, error=str(e))
            return fail(errno.EIO, f"store failure: {e}")
        return m.OSDOpReply(tid=op.tid, rc=0, epoch=self.osdmap.epoch, **fields)

    def _run(self, op: m.OSDOp, entity: str = "", cid: int = 0) -> dict:
        s, pool = self.store, op.pool
        if op.op == "list":
            return {"names": s.list(pool, op.name, op.ns)}
        if op.op == "list_all":
            return {"names": [list(x) for x in s.list_all(pool)]}
        name = locator(op.ns, op.name)
        if op.op == "operate":
            return s.operate(pool, name, op.ops)
        if op.op == "watch":
            s.stat(pool, name)  # ENOENT: Ceph watches existing objects only
            self.watches.watch((pool, name), cid, op.cookie, entity,
                               op.timeout if op.timeout > 0 else WATCH_TIMEOUT)
            return {}
        if op.op == "unwatch":
            if not self.watches.unwatch(cid, op.cookie):
                raise StoreError(errno.ENOTCONN, f"no watch with cookie {op.cookie}")
            return {}
        if op.op == "notify_ack":
            if self.watches.ack(op.notify_id, cid, op.cookie, op.data):
                self._acked(op.notify_id)
            return {}
        if op.op == "append":
            return _stat(s.append(pool, name, op.data))
        if op.op == "append_at":
            return _stat(s.append_at(pool, name, op.offset, op.data))
        if op.op == "write_full":
            return _stat(s.write_full(pool, name, op.data))
        if op.op == "read":
            self._check_read_size(op, name)
            return {"data": s.read(pool, name, op.offset, op.length)}
        if op.op == "remove":
            s.remove(pool, name)
            return {}
        if op.op == "stat":
            return _stat(s.stat(pool, name))
        if op.op == "omap_get":
            return {"values": s.omap_get(pool, name, op.keys)}
        if op.op == "omap_set":
            return _stat(s.omap_set(pool, name, op.values))
        if op.op == "omap_rm":
            return _stat(s.omap_rm(pool, name, op.keys or []))
        raise StoreError(errno.EOPNOTSUPP, f"unknown op {op.op!r}")

    def _check_read_size(self, op: m.OSDOp, name: str) -> None:
        """A read must fit in one reply frame; bigger ones are refused, never truncated."""
        size = self.store.stat(op.pool, name).size
        n = max(0, (size if op.length < 0 else min(size, op.offset + op.length)) - op.offset)
        cap = self.config.get("ms_max_message_size") - REPLY_SLACK
        if n > cap:
            raise StoreError(errno.EFBIG, f"a read of {n} bytes exceeds the {cap}-byte reply "
                                          f"cap; read in ranges")


def _stat(st: Stat) -> dict:
    return {"size": st.size, "version": st.version, "mtime": st.mtime}


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
