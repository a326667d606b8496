"""The filesystem client library: metadata requests to rank 0 of a file system, following the
FSMap through failovers (DESIGN §5, ref C4).

Resource handling: `async with FSClient.open(mon_host, ...) as fs:` holds a monitor session
(subscribed to the FSMap) and at most one connection to the MDS holding rank 0; both end with
the block. Several trio tasks may call the same FSClient at once: replies are matched by tid.

Failover: a request that loses its MDS connection, gets -EAGAIN/-ESTALE ("not serving the rank
now"), or whose rank holder changes in a newer map (a new gid, incarnation or address, C4), is
resent once rank 0 is up:active (or up:clientreplay) again, with the SAME tid and retry+1. The
MDS recognises a repeat by (client entity, tid) and answers it from its completed-requests
record, so resending a mutation the old holder already applied is safe. The client's entity
towards the MDS is `client.<global_id>`, the id the monitor assigned at hello, so that two
clients never share a request id.

Error handling: an unreachable monitor raises MonUnreachable from `open`; a request that fails
raises FSClientError with a positive errno (ETIMEDOUT when no active holder answered within
`timeout` seconds of the request being made). `open` raises EHOSTUNREACH at once when a rank's
holder is laggy, a rank is damaged or the file system is down (Ceph's mount check).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import random
import socket

import structlog
import trio

from client.filelock import LockDenied
from client.fscore import (
    EBLOCKLISTED,
    ClientCore,
    FSClientError,
    LostRequest,
    Outcome,
    ident,
    outcome,
    stuck_unavailable,
)
from client.locks import ClientLocks
from client.mdssession import MDS_CONNECT_TIMEOUT, RETRY_PAUSE, MDSSession, Pending
from client.unsafe import UnsafeRequests
from common import messages as m
from common import states
from common.fsmap import FSMap, MDSInfo
from common.monclient import MonClient, MonUnreachable
from common.net import (
    HandshakeError,
    background,
    connect,
    current_auth,
    parse_hostport,
)

log = structlog.get_logger("client")

CLOSE_TIMEOUT = 1.0

__all__ = ["EBLOCKLISTED", "FSClient", "FSClientError", "LockDenied", "LostRequest",
           "MonUnreachable", "stuck_unavailable"]


class FSClient:
    def __init__(self, global_id: int, auth: str, fs_name: str | None, timeout: float,
                 nursery: trio.Nursery) -> None:
        self.global_id = global_id
        self.entity = f"client.{global_id}"  # our name towards the MDS
        self.auth = auth
        self.timeout = timeout
        self.nursery = nursery
        self.core = ClientCore(fs_name)
        self.log = log.bind(entity=self.entity)
        self._map_changed = trio.Event()  # set and replaced on every newer map
        self.unsafe = UnsafeRequests(self)  # answered unsafe, until their safe reply
        self._sessions: dict[int, MDSSession] = {}  # rank -> session with its holder
        self._connect_locks: dict[int, trio.Lock] = {}
        self.addr = ""  # our instance "ip:0/nonce", as the MDS (and a blocklist) names us
        self._nonce = random.randint(1, 2**31 - 1)
        self.evicted: str | None = None  # why the MDS evicted us, once it has
        self._attempts: dict[int, tuple[tuple, trio.CancelScope]] = {}  # _open_unless_moved
        self.root = "/"
        self.refused: str | None = None  # the MDS rejected our session for good (caps)
        # sent at session open, libcephfs's ceph_set_uuid / ceph_set_session_timeout
        self.metadata: dict[str, str] = {}
        self.locks = ClientLocks(self)  # file locks (re-sent at reconnect) and reclaim

    @property
    def fsmap(self) -> FSMap | None:
        return self.core.fsmap

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, mon_host: str, fs_name: str | None = None, timeout: float = 60.0,
                   entity: str | None = None, auth: str = "",
                   connect_timeout: float | None = None, hunt_interval: float = 1.0,
                   require_mds: bool = True, root: str = "/"):
        """`entity` is the name to authenticate as with the monitor (default: the cephx
        credentials' own, else client.admin);
        `connect_timeout` bounds the wait for the monitor and the first map (default
        `timeout`), `timeout` bounds each request. `root` is the directory mounted (ceph-fuse
        -r; the MDS checks it against a path-restricted client's caps). With `require_mds` (ceph-fuse's
        fuse_require_active_mds) opening fails with EHOSTUNREACH when the map says the file
        system is stuck unavailable (`stuck_unavailable`)."""
        connect_timeout = timeout if connect_timeout is None else connect_timeout
        auth = auth or current_auth()
        if auth:  # cephx: this instance's tickets name its own gid
            auth = auth.fork()
        entity = entity or getattr(auth, "entity", None) or "client.admin"
        async with MonClient.open(mon_host, entity, auth, connect_timeout,
                                  hunt_interval, reconnect=True, log=log,
                                  keep_gid=True) as monc, \
                background() as nursery:
            fs = cls(monc.global_id, auth, fs_name, timeout, nursery)
            fs.root = root
            monc.on_push = fs._on_mon
            await monc.subscribe("fsmap")
            with trio.move_on_after(connect_timeout):
                while fs.fsmap is None:
                    await fs._map_changed.wait()
            if fs.fsmap is None:
                raise MonUnreachable(f"no fsmap from the monitor at {mon_host} "
                                     f"within {connect_timeout:g}s")
            stuck = stuck_unavailable(fs.core.filesystem())  # ENOENT now, not later
            if stuck is not None and require_mds:
                # Client::mount fails at once rather than wait for its timeout; the kernel
                # client says EHOSTUNREACH, ceph-fuse "no MDS server is up"
                raise FSClientError(errno.EHOSTUNREACH, f"mds cluster unavailable: "
                                    f"{stuck}; probably no MDS server is up?")
            yield fs
            lost = await fs.sync()  # unmount: what was answered unsafe is journaled first
            if lost:
                fs.log.warning(f"{len(lost)} requests answered unsafe were lost",
                               tids=[x.tid for x in lost])
            await fs._close_session()

    # -- the file system operations (mutations return the inode when the MDS sends it, or {})
    async def mkdir(self, path: str, mode: int = 0o755) -> dict:
        return (await self.request("mkdir", {"path": path, "mode": mode})).get("inode", {})

    async def create(self, path: str, mode: int = 0o644) -> dict:
        return (await self.request("create", {"path": path, "mode": mode})).get("inode", {})

    async def unlink(self, path: str) -> None:
        await self.request("unlink", {"path": path})

    async def rmdir(self, path: str) -> None:
        await self.request("rmdir", {"path": path})

    async def rename(self, src: str, dst: str) -> None:
        await self.request("rename", {"src": src, "dst": dst})

    async def setattr(self, path: str, **attrs) -> dict:
        """mode, uid, gid, size, mtime, xattrs ({name: value}, added to the inode's)."""
        return (await self.request("setattr", dict(attrs, path=path))).get("inode", {})

    async def stat(self, path: str) -> dict:
        return (await self.request("getattr", {"path": path}))["inode"]

    async def ls(self, path: str) -> list[tuple[str, dict]]:
        return [(name, inode) for name, inode in
                (await self.request("readdir", {"path": path}))["entries"]]

    # -- file locks and reclaim: the `locks` part (client.locks)
    async def setlk(self, path: str, owner: str, type_: str, start: int = 0,
                    length: int = 0) -> None:
        await self.locks.setlk(path, owner, type_, start, length)

    async def getlk(self, path: str, owner: str, type_: str, start: int = 0,
                    length: int = 0) -> dict:
        return await self.locks.getlk(path, owner, type_, start, length)

    async def reclaim_reset(self, uuid: str) -> int:
        return await self.locks.reclaim_reset(uuid)

    async def request(self, op: str, args: dict, on_lost=None) -> dict:
        """Send one request to the rank holding the path; return its result once it is
        answered: a mutation on its unsafe reply (applied, not yet journaled), as Ceph's
        client returns. Its session then takes the safe reply as it comes (`safe_reply`);
        after a failover a task resends it (C4, `recover`); if it cannot be made safe, the
        request is recorded lost, `on_lost(LostRequest)` is called and `sync` hands it out.
        A rank that does not hold the path names the one that does (a forward)."""
        core = self.core
        tid, rank = core.start(op, args)
        p = Pending(tid, op, args, rank)
        # the request again with the same tid, on the same session: the MDS knows a repeat
        p.again = lambda: core.request(p.tid, p.op, p.args, p.req.retry + 1)
        handed_off = False
        try:
            with trio.move_on_after(self.timeout):
                reply = await self._drive(p, until_unsafe=True)
                if outcome(reply) is Outcome.UNSAFE:
                    handed_off = True
                    self.unsafe.hand_off(p, on_lost)
                    return reply.result
                return p.result(reply)
        finally:
            if not handed_off:
                self.unsafe.settle(p)
        self._check_evicted(sent=True)
        raise FSClientError(errno.ETIMEDOUT, f"no reply to {op} within {self.timeout:g}s "
                                             f"({core.rank_status(p.rank)})")

    async def _drive(self, p: Pending, until_unsafe: bool) -> m.ClientReply:
        """Send `p` (again, after a failover or forward) until a final reply, or with
        `until_unsafe` an unsafe one. Raises FSClientError if we were evicted."""
        core = self.core
        while True:
            if p.waiting:  # answered unsafe on this session: the next reply is the safe one
                reply = await p.session.next_reply(p.tid, p.again, core.resend_after())
            else:
                p.rank, p.session = await self._serving_session(p.rank, sent=p.retry > 0)
                p.req = core.request(p.tid, p.op, p.args, p.retry)
                reply = await p.session.call(p.req, p.again, core.resend_after())
            p.waiting = False
            what = outcome(reply)
            if what is Outcome.UNSAFE:
                p.unsafe = reply
                p.waiting = True
                core.answered_unsafe(p.tid, p.rank, p.req)
                if until_unsafe:
                    return reply
                continue
            if what is Outcome.FORWARD:
                p.rank, sub = core.forwarded(reply)
                self.log.debug("forwarded", tid=p.tid, to_rank=p.rank, subtree=sub)
                p.retry += 1
                continue
            if what in (Outcome.RETRY, Outcome.LOST):
                self._check_evicted(sent=True)
                if reply is not None:
                    self.log.info("mds is not serving the rank; waiting for a newer map",
                                  mds=p.session.name, tid=p.tid, rc=reply.rc, error=reply.error)
                    await self._newer_map(self.fsmap.epoch, RETRY_PAUSE)
                p.retry += 1
                self.log.info(f"retrying tid {p.tid}", op=p.op, retry=p.retry)
                continue
            return reply

    async def sync(self, path: str | None = None) -> list[LostRequest]:
        """Wait until what was answered unsafe so far (with `path`: naming it or beneath it,
        an fsync) is safe or lost; return the lost ones (`UnsafeRequests.sync`)."""
        return await self.unsafe.sync(path)

    # -- sessions with rank 0's holder (C1-C6)
    def note_evicted(self, mds: str, reason: str) -> None:
        if self.evicted is None:
            self.evicted = reason
            self.locks.held.forget()
            self.log.error(f"{self.entity} was evicted by {mds} ({reason}); its requests fail",
                           addr=self.addr)

    def _check_evicted(self, sent: bool = False) -> None:
        if self.refused is not None:  # ceph-fuse: "mount error 1 = Operation not permitted"
            raise FSClientError(errno.EPERM, f"the MDS rejected our session: {self.refused}",
                                unknown=sent)
        if self.evicted is not None:
            raise FSClientError(EBLOCKLISTED, f"{self.entity} was evicted by the MDS "
                                              f"({self.evicted}) and is blocklisted",
                                unknown=sent)

    def _lock(self, rank: int) -> trio.Lock:
        return self._connect_locks.setdefault(rank, trio.Lock())

    async def _serving_session(self, rank: int, sent: bool = False) -> tuple[int, MDSSession]:
        while True:
            self._check_evicted(sent)
            rank = self.core.usable(rank)
            info = self.core.serving_holder(rank)
            s = self._sessions.get(rank)
            if info is not None and s is not None and s.is_open and not s.dead and \
                    s.ident == ident(info):
                return rank, s  # the common case: no lock to take
            if info is not None:
                async with self._lock(rank):
                    s = self._sessions.get(rank)
                    if s is None or s.dead or s.ident != ident(info):
                        s = await self._open_unless_moved(info, rank)
                        if s is not None:
                            self._sessions[rank] = s
                            self._check_session()  # a map may have moved the rank meanwhile
                    if s is not None and not s.dead and s.is_open:
                        return rank, s
            self._check_evicted(sent)
            epoch = self.fsmap.epoch
            await self._newer_map(epoch, RETRY_PAUSE if info is not None else None)

    async def _open_unless_moved(self, info: MDSInfo, rank: int) -> MDSSession | None:
        """`_open`, given up as soon as a newer map gives the rank to another incarnation
        (`_on_map`): connecting to a dead host's address can take seconds to fail (no RST
        comes back, e.g. a killed container), and meanwhile the rank's lock would keep
        `_reconnect` from the new holder until its reconnect window has closed."""
        with trio.CancelScope() as scope:
            self._attempts[rank] = (ident(info), scope)
            try:
                return await self._open(info, rank)
            finally:
                self._attempts.pop(rank, None)
        self.log.info(f"gave up connecting to mds.{info.name}: the map moved rank {rank}",
                      addr=info.addr)
        return None

    async def _open(self, info: MDSInfo, rank: int) -> MDSSession | None:
        """Connect and open a session (request_open); None if the MDS would not have it now."""
        s = await self._connect(info)
        if s is None:
            return None
        meta = {"addr": self.addr, "entity_id": self.entity, "hostname": socket.gethostname(),
                "pid": os.getpid(), "root": self.root, **self.metadata}
        try:
            if await s.send(m.ClientSession("request_open", metadata=meta)):
                with trio.move_on_after(MDS_CONNECT_TIMEOUT):
                    await s.answered.wait()
        except BaseException:  # cancelled by _open_unless_moved
            s.kill()
            raise
        if not s.is_open:
            if s.close_reason:
                self.log.info(f"mds.{info.name} did not open our session", reason=s.close_reason)
            s.kill()
            return None
        self.core.had_session.add(rank)
        self.nursery.start_soon(s.renew, self._renew_interval)
        return s

    async def _reconnect(self, info: MDSInfo, rank: int) -> None:
        """C4: the rank's new holder is in up:reconnect: resend the requests it answered
        unsafe (replay), then reconnect our session."""
        async with self._lock(rank):
            old = self._sessions.get(rank)
            if old is not None and not old.dead and old.ident == ident(info):
                return
            s = await self._connect(info)
            if s is None:
                return
            replay = self.core.replay(rank)
            for req in replay:
                s.replies.expect(req.tid)
                await s.send(req)
            self.log.info(f"reconnecting session to mds.{info.name}", rank=rank,
                          replayed=len(replay))
            if await s.send(m.ClientReconnect(metadata={"addr": self.addr},
                                              locks=self.locks.held.to_wire())):
                with trio.move_on_after(MDS_CONNECT_TIMEOUT):
                    await s.answered.wait()
            if s.is_open:
                self._sessions[rank] = s
                self.nursery.start_soon(s.renew, self._renew_interval)
                self._check_session()
            else:
                self.log.warning(f"mds.{info.name} refused our reconnect",
                                 reason=s.close_reason or "no answer")
                s.kill()

    async def _close_session(self) -> None:
        """Unmount: close our sessions (request_close), so that none is left to autoclose."""
        for s in list(self._sessions.values()):
            if s.dead or not s.is_open:
                continue
            s.answered = trio.Event()
            if await s.send(m.ClientSession("request_close")):
                with trio.move_on_after(CLOSE_TIMEOUT):
                    while not s.dead:
                        await s.answered.wait()
                        s.answered = trio.Event()

    def _renew_interval(self) -> float:
        return self.core.renew_interval()

    async def _connect(self, info: MDSInfo) -> MDSSession | None:
        host, port = parse_hostport(info.addr.split("/")[0])
        verb = "reconnecting" if self.core.had_session else "connecting"
        self.log.info(f"{verb} to mds.{info.name}", addr=info.addr,
                      state=states.name(info.state))
        try:
            with trio.fail_after(MDS_CONNECT_TIMEOUT):
                conn, _ = await connect(host, port, self.entity, global_id=self.global_id,
                                        auth=self.auth)
        except (OSError, HandshakeError, trio.TooSlowError) as e:
            self.log.warning(f"cannot connect to mds.{info.name}", addr=info.addr,
                             reason=str(e) or type(e).__name__)
            return None
        if not self.addr:
            sock = getattr(conn.stream, "socket", None)
            ip = sock.getsockname()[0] if sock is not None else "127.0.0.1"
            self.addr = f"{ip}:0/{self._nonce}"
        session = MDSSession(info, conn, self)
        self.nursery.start_soon(session.receive)
        return session

    def _check_session(self) -> None:
        """C4: a session whose rank is now held by another daemon (or none) is marked down."""
        for rank, s in list(self._sessions.items()):
            if s.dead:
                continue
            if self.core.moved(rank, s.ident):
                info = self.core.holder(rank)
                self.log.info("failover noticed", rank=rank, old=s.name, epoch=self.fsmap.epoch,
                              new=f"mds.{info.name}" if info else None,
                              state=states.name(info.state) if info else None)
                s.kill()

    # -- the map
    async def _newer_map(self, epoch: int, max_wait: float | None) -> None:
        with trio.move_on_after(math.inf if max_wait is None else max_wait):
            while self.fsmap.epoch <= epoch:
                await self._map_changed.wait()

    def _on_map(self, fsmap: FSMap) -> None:
        if not self.core.newer(fsmap):
            return
        self._check_session()
        for rank, (incarnation, scope) in list(self._attempts.items()):
            if self.core.moved(rank, incarnation):
                scope.cancel()  # connecting to a holder the map has replaced
        if self.evicted is None:
            for rank, info in self.core.to_reconnect():
                self.nursery.start_soon(self._reconnect, info, rank)
        event, self._map_changed = self._map_changed, trio.Event()
        event.set()

    def _on_mon(self, msg) -> None:
        """What the monitor pushes: the FSMap (a bad one is ignored; a newer one follows)."""
        if isinstance(msg, m.FSMapMsg):
            try:
                fsmap = FSMap.from_wire(msg.fsmap)
            except (KeyError, TypeError, ValueError) as e:
                self.log.warning("ignoring a bad fsmap", reason=repr(e))
                return
            self._on_map(fsmap)
