"""The monitor's trio shell: sockets, the tick timer, the store, subscriptions.

All decisions are in `MDSMonitor` and `commands`; this module moves bytes and keeps the order
that makes them durable: persist a commit, then publish it, then reply.
"""

from __future__ import annotations

import errno
import math
import select
import time
import uuid

import structlog
import trio

from common import keyring
from common import messages as m
from common.auth import cephx_on
from common.caps import CapsError, MonCaps
from common.config import Config
from common.fsmap import FSMap
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
from common.outqueue import OutQueue
from mon import auth_commands, auth_session, commands
from mon.auth_monitor import AuthMonitor
from mon.mds_monitor import FIRST_GID, MDSMonitor
from mon.nfs_services import NFSServices
from mon.proposal import Effects
from mon.stats import DaemonStats
from mon.store import MonStore
from mon.subscriptions import BadSubscription, Frames, Subs, frame

log = structlog.get_logger("mon")

HELLO_TIMEOUT = 10.0
RECENT_LOG = 20


class Session:
    """One peer's session: its subscriptions and what waits to be sent to it (bounded, maps
    coalesced: see common/outqueue.py)."""

    def __init__(self, conn: Connection, entity: str, gid: int, max_queued: int) -> None:
        self.conn = conn
        self.entity = entity
        self.gid = gid
        self.subs = Subs(entity, gid)
        self.out = OutQueue(max_queued)
        self.wake = trio.Event()
        self.scope: trio.CancelScope | None = None
        self.blocked_since: float | None = None  # when the send in progress began
        self.key: bytes | None = None  # cephx: the session key
        self.caps: MonCaps | None = None  # cephx: the peer's mon caps (None: auth is off)

    def may(self, need: set[str] | None = None, profile: str = "") -> bool:
        """cephx: does the peer's mon caps allow it? (Always, with auth off.)"""
        if self.caps is None:
            return True
        if profile:
            return self.caps.has_profile(profile)
        return self.caps.allows(need or {"r"})

    def queue(self, msg) -> None:
        self.queue_frame(frame(msg))

    def queue_frame(self, data: bytes, key: str | None = None) -> None:
        if not self.out and self.blocked_since is None:  # the sender is idle: write now
            try:
                sent = self.conn.send_nowait(data)
            except ConnectionClosed:
                self.close()
                return
            if sent == len(data):
                return
            if sent:  # the rest first, then whatever comes next
                self.out.push_front(data[sent:])
                self.wake.set()
                return
        if not self.out.put(data, key):  # a consumer this slow is cut off, not waited for
            log.warning("closing connection: peer too slow, send queue full", peer=self.conn.peer,
                        entity=self.entity, queued=len(self.out))
            self.close()
            return
        self.wake.set()

    def close(self) -> None:
        if self.scope is not None:
            self.scope.cancel()


class MonServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.name = config.name
        self.sessions: set[Session] = set()
        self.core: MDSMonitor | None = None
        self.store: MonStore | None = None
        self.port = 0
        self.started_at = 0.0
        self.log_seq = 0
        self.stats = DaemonStats()
        self.nfs = NFSServices()
        self.frames = Frames()
        self.propose_wake = trio.Event()  # the core has batched something to propose

    # -- start-up
    def _open(self) -> None:
        path = self.config.get("mon_data")
        self.store = MonStore(path, self.config.get("mon_max_mdsmap_epochs"))
        now = trio.current_time()
        if self.store.is_new():
            fsid = self.config.get("fsid") or str(uuid.uuid4())
            fsmap = FSMap(epoch=1, btime=time.time())
            osdmap = OSDMap(epoch=1, fsid=fsid)
            self.store.commit(fsmap=fsmap, osdmap=osdmap,
                              kv={"fsid": fsid, "next_gid": FIRST_GID, "config_db": {}})
            log.info("created a new cluster", fsid=fsid, mon_data=path)
        fsmap = self.store.latest_fsmap()
        osdmap = self.store.latest_osdmap()
        config_db = self.store.get("config_db", {})
        self.core = MDSMonitor(self.config, fsmap, osdmap, self.store.get("next_gid", FIRST_GID),
                               config_db, now=now)
        self.core.configs.apply()
        self.gids_stored = self.core.gid_reserved  # next_gid in the store: see _reserve_gids
        recent = self.store.recent_log(1)
        self.log_seq = recent[0]["seq"] if recent else 0
        self.fsid = self.store.get("fsid")
        self.auth = AuthMonitor.from_kv(self.store.get("auth"), self.store.get("auth_rotating"))
        if cephx_on(self.config) and not self.auth.entities:
            self._mkfs_auth()
        log.info("mon store loaded", fsmap_epoch=fsmap.epoch, osdmap_epoch=osdmap.epoch)

    def _mkfs_auth(self) -> None:
        """Like `ceph-mon --mkfs --keyring`: the first cephx start imports the monitor's
        keyring (every entity in it, with its caps) into the auth database."""
        path = self.config.get("keyring")
        try:
            entries = keyring.load(path)
        except (OSError, keyring.KeyringError, CapsError) as e:
            raise SystemExit(f"mon: cephx is required but the keyring {path!r} cannot be "
                             f"read: {e}") from None
        self.auth.import_entries(entries)
        self._persist_auth()
        log.info("auth database created from the keyring", keyring=path, entities=len(entries))

    def _persist_auth(self) -> None:
        if self.auth.dirty:
            self.store.commit(kv=self.auth.to_kv())
            self.auth.dirty = False

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self._open()
        use_messenger(self.config, self.name)
        host, port = parse_hostport(self.config.get("public_addr") or
                                    self.config.get("mon_host").split(",")[0])
        listeners = await trio.open_tcp_listeners(port, host=host)
        self.port = listeners[0].socket.getsockname()[1]
        self.started_at = trio.current_time()
        log.info("mon listening", addr=f"{host}:{self.port}", fsid=self.fsid)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(trio.serve_listeners, self._handle, listeners)
                nursery.start_soon(self._tick_loop)
                nursery.start_soon(self._watch_stuck)
                nursery.start_soon(self._proposer)
                task_status.started(self.port)
        finally:
            self.store.close()

    async def _tick_loop(self) -> None:
        while True:
            await trio.sleep(self.config.get("mon_tick_interval"))
            self.carry_out(self.core.tick(trio.current_time(), time.time()))
            if cephx_on(self.config):  # rotating service secrets (auth_service_ticket_ttl)
                rotated = self.auth.tick(time.time(), self.config.get("auth_service_ticket_ttl"))
                self._persist_auth()
                auth_session.rotated(list(self.sessions), rotated, self.auth)

    async def _proposer(self) -> None:
        """Commit the beacons the core batched when it says (Ceph's propose timer)."""
        while True:
            self.propose_wake = trio.Event()
            due = self.core.propose_due
            if due is not None and due <= trio.current_time():
                self.carry_out(self.core.propose_pending(trio.current_time(), time.time()))
                continue
            with trio.move_on_at(due if due is not None else math.inf):
                await self.propose_wake.wait()

    # -- commit, then publish, then reply
    def carry_out(self, out: Effects):
        """Persist what a call into the core committed, publish it, and return the reply to
        send: the one way from a core's Effects to the wire."""
        if out.changed:
            self._persist_and_publish(out)
        for session, ack in out.acks:  # beacons that waited for this commit (B4)
            session.queue(ack)
        return out.reply

    def _persist_and_publish(self, out: Effects) -> None:
        entries = []
        for wall, level, message in out.clog:
            self.log_seq += 1
            entries.append({"seq": self.log_seq, "stamp": wall, "who": self.name,
                            "level": level, "message": message})
        kv = {"next_gid": self.core.gid_reserved}
        self.gids_stored = self.core.gid_reserved
        if out.config:  # the core has applied it already
            kv["config_db"] = self.core.config_db
        self.store.commit(fsmaps=out.fsmaps, osdmap=out.osdmap, kv=kv, log=entries)
        osd_frame = frame(m.OSDMapMsg(osdmap=out.osdmap.to_wire())) if out.osdmap else None
        log_frame = frame(m.LogMsg(entries=entries)) if entries else None
        for s in list(self.sessions):
            if out.fsmaps:
                self._send_maps(s)
            if osd_frame is not None and "osdmap" in s.subs:
                s.queue_frame(osd_frame, "osdmap")
            if out.config and "config" in s.subs:
                s.queue_frame(frame(self._config_for(s)), "config")
            if log_frame is not None and "log" in s.subs:
                s.queue_frame(log_frame)

    def _send_maps(self, s: Session) -> None:
        """Ceph's check_sub: each FSMap or MDSMap the session has not seen, encoded once for
        all its subscribers, replacing one of the same subscription still waiting."""
        for key, data in s.subs.due_maps(self.core.fsmap, self.frames):
            s.queue_frame(data, key)

    def _config_for(self, s: Session) -> m.ConfigMsg:
        return m.ConfigMsg(values=self.core.configs.values_for(s.entity))

    # -- connections
    async def _handle(self, stream: trio.SocketStream) -> None:
        await guarded(Connection(stream, self.config.get("ms_max_message_size")),
                      self._serve_conn, log)

    async def _serve_conn(self, conn: Connection) -> None:
        session = await self._handshake(conn)
        if session is not None:
            await self._serve_session(session)

    async def _serve_session(self, session: Session) -> None:
        self.sessions.add(session)
        error: Exception | None = None
        try:
            async with trio.open_nursery() as nursery:
                session.scope = nursery.cancel_scope
                nursery.start_soon(self._sender, session)
                try:
                    await self._receive_loop(session)
                except (ProtocolError, ConnectionClosed) as e:
                    error = e
                nursery.cancel_scope.cancel()
        finally:
            self.sessions.discard(session)
        if error is not None:
            raise error

    async def _handshake(self, conn: Connection) -> Session | None:
        with trio.move_on_after(HELLO_TIMEOUT):
            hello = await conn.recv()
            break_reason = None
            if not isinstance(hello, m.Hello):
                raise ProtocolError(f"expected hello, got {hello.TYPE}")
            if hello.proto != m.PROTOCOL_VERSION:
                break_reason = (errno.EPROTONOSUPPORT,
                                f"protocol {hello.proto} not supported (want {m.PROTOCOL_VERSION})")
            elif not ENTITY_RE.match(hello.entity):
                break_reason = (errno.EINVAL, f"bad entity name '{hello.entity}'")
            key = caps = None
            if not break_reason and cephx_on(self.config):
                try:
                    key, caps = await auth_session.authenticate(conn, hello, self.auth,
                                                                self.config.get(
                                                                    "cephx_sign_messages"))
                except auth_session.Refused as e:
                    break_reason = (e.code, str(e))
            if break_reason:
                log.warning("refusing connection", peer=conn.peer, entity=hello.entity,
                            reason=break_reason[1])
                await conn.send(m.Error(code=break_reason[0], message=break_reason[1]))
                return None
            gid = self.core.session_gid(hello.entity, hello.global_id)
            if key is not None and hello.global_id > 0 and self._may_reclaim(hello):
                gid = hello.global_id  # cephx global_id reclaim: a client keeps its gid
                self.core.note_gid(gid)
            if self.core.gid_reserved != self.gids_stored:
                self.store.commit(kv={"next_gid": self.core.gid_reserved})
                self.gids_stored = self.core.gid_reserved
            await conn.send(m.HelloOk(global_id=gid, fsid=self.fsid, mon=self.name,
                                      auth=getattr(conn, "auth_reply", b"")))
            session = Session(conn, hello.entity, gid, self.config.get("ms_max_queued_messages"))
            if key is not None:
                auth_session.sign(conn, key, self.config.get("cephx_sign_messages"))
                session.key, session.caps = key, caps
            log.debug("session opened", peer=conn.peer, entity=hello.entity, gid=gid)
            return session
        log.warning("closing connection: no hello in time", peer=conn.peer)
        return None

    def _may_reclaim(self, hello: m.Hello) -> bool:
        """An authenticated client may keep the gid of its earlier session, its tickets' (and
        its MDS sessions') name, unless another entity's live session holds it."""
        return hello.entity.startswith("client.") and not any(
            s.gid == hello.global_id and s.entity != hello.entity for s in self.sessions)

    async def _sender(self, session: Session) -> None:
        """Send what the session queued. A send is never cancelled half way (that would cut a
        frame); `_watch_stuck` closes a session whose send stays blocked."""
        try:
            while True:
                data = session.out.pop()
                if data is None:
                    session.wake = trio.Event()
                    await session.wake.wait()
                    continue
                session.blocked_since = trio.current_time()
                await session.conn.send_frame(data)
                session.blocked_since = None
        except ConnectionClosed:
            pass
        session.close()

    async def _watch_stuck(self) -> None:
        """A peer that leaves one send blocked past ms_send_timeout, with its socket still not
        writable (so the peer does not read, rather than this monitor being too busy to
        send), is disconnected and logged."""
        while True:
            timeout = self.config.get("ms_send_timeout")
            await trio.sleep(timeout / 4)
            now = trio.current_time()
            for s in list(self.sessions):
                if s.blocked_since is not None and now - s.blocked_since > timeout \
                        and not writable(s.conn):
                    log.warning("closing connection: peer stuck, not reading", peer=s.conn.peer,
                                entity=s.entity, timeout=timeout, queued=len(s.out))
                    s.close()

    async def _receive_loop(self, session: Session) -> None:
        while True:
            msg = await session.conn.recv()
            now, wall = trio.current_time(), time.time()
            if isinstance(msg, m.Beacon):
                if not session.entity.startswith("mds.") or msg.global_id != session.gid \
                        or not session.may(profile="mds"):
                    raise ProtocolError(
                        f"beacon for gid {msg.global_id} on the session of {session.entity} "
                        f"(gid {session.gid})")
                due = self.core.propose_due
                reply = self.carry_out(self.core.prepare_beacon(msg, now, wall, session))
                if self.core.propose_due != due:
                    self.propose_wake.set()
                if msg.stats:
                    self.stats.note(msg.global_id, now, msg.stats)
                if reply is not None:
                    session.queue(reply)
            elif isinstance(msg, m.OSDBoot):
                if not session.entity.startswith("osd.") or not session.may(profile="osd"):
                    raise ProtocolError(f"osd_boot from {session.entity}")
                self.carry_out(self.core.osd_boot(msg.osd_id, msg.addr, now, wall))
            elif isinstance(msg, m.NFSReport):  # an NFS head: mon/nfs_services.py
                if not session.entity.startswith("client."):
                    raise ProtocolError(f"nfs_report from {session.entity}")
                self.nfs.report(msg.cluster_id, msg.nodeid, msg.hostname, msg.ip, msg.port,
                                msg.grace, now, ingress=msg.ingress)
            elif isinstance(msg, m.Subscribe):
                self._subscribe(session, msg)
            elif isinstance(msg, m.LogMsg):
                self._daemon_log(session, msg)
            elif isinstance(msg, m.AuthGetTickets) and session.key is not None:
                for reply in auth_session.tickets(session, msg, self.auth,
                                                  self.config.get("auth_service_ticket_ttl"),
                                                  wall):
                    session.queue(reply)
                self._persist_auth()
            elif isinstance(msg, m.Command) and not self._command_allowed(session, msg):
                session.queue(m.CommandReply(tid=msg.tid, rc=-errno.EACCES,
                                             outs="access denied"))
            elif isinstance(msg, m.Command) and msg.args[:1] == ["auth"]:
                rc, outs, outb = auth_commands.run(self.auth, msg.args, msg.format)
                self._persist_auth()
                session.queue(m.CommandReply(tid=msg.tid, rc=rc, outs=outs, outb=outb))
            elif isinstance(msg, m.Command):
                rc, outs, outb = self.carry_out(commands.run(
                    self.core, msg.args, msg.format, session.entity, now, wall,
                    history=self.store.fsmap_at, extra=self._command_extra(now)))
                session.queue(m.CommandReply(tid=msg.tid, rc=rc, outs=outs, outb=outb))
            else:
                raise ProtocolError(f"unexpected message {msg.TYPE} from {session.entity}")

    def _command_allowed(self, session: Session, msg: m.Command) -> bool:
        """Mon caps (cephx): a read-only client may `fs dump`, not `fs set` (EACCES)."""
        if session.caps is None:
            return True
        if all(isinstance(a, str) for a in msg.args) and \
                session.caps.allows_command(msg.args):
            return True
        log.warning("access denied", entity=session.entity, command=" ".join(map(str, msg.args)),
                    caps=session.caps and self.auth.caps_of(session.entity, "mon"))
        return False

    def _daemon_log(self, session: Session, msg: m.LogMsg) -> None:
        """Cluster-log lines a daemon sends (e.g. an MDS evicting a client)."""
        if not session.entity.startswith("mds.") or not session.may(profile="mds"):
            raise ProtocolError(f"cluster log entries from {session.entity}")
        entries = []
        for e in msg.entries:
            if not isinstance(e, dict) or not isinstance(e.get("message"), str) or \
                    e.get("level") not in ("DBG", "INF", "WRN", "ERR"):
                raise ProtocolError("bad cluster log entry")
            self.log_seq += 1
            entries.append({"seq": self.log_seq, "stamp": time.time(), "who": session.entity,
                            "level": e["level"], "message": e["message"]})
            log.info("cluster log", channel="cluster", prio=e["level"], msg=e["message"],
                     who=session.entity)
        self.store.commit(log=entries)
        for s in list(self.sessions):
            if "log" in s.subs:
                s.queue(m.LogMsg(entries=entries))

    def _subscribe(self, session: Session, msg: m.Subscribe) -> None:
        if not session.may({"r"}):
            raise ProtocolError(f"{session.entity} may not read the maps (mon caps)")
        for what in msg.what:
            if not isinstance(what, str):
                raise ProtocolError(f"cannot subscribe to {what!r}")
            try:
                session.subs.add(what)
            except BadSubscription as e:
                raise ProtocolError(str(e)) from None
            if what == "fsmap" or what.startswith("mdsmap"):
                self._send_maps(session)
            elif what == "osdmap":
                session.queue_frame(frame(m.OSDMapMsg(osdmap=self.core.osdmap.to_wire())), what)
            elif what == "config":
                session.queue_frame(frame(self._config_for(session)), what)
            elif what == "log":
                session.queue(m.LogMsg(entries=self.store.recent_log(RECENT_LOG)))

    def _command_extra(self, now: float) -> dict:
        age = int(now - self.started_at)
        return {
            "status": {"fsid": self.fsid, "mon_names": [self.name.split(".", 1)[1]],
                       "mon_age": _age(age), "osd": None},
            "stats": self.stats.view(self.core.fsmap.mds_roles),
            "log": self.store.recent_log,
            "nfs": self.nfs,
        }


def writable(conn: Connection) -> bool:
    """The socket would take more bytes now (its send buffer is not full)."""
    try:
        poller = select.poll()
        poller.register(conn.stream.socket.fileno(), select.POLLOUT)
        return bool(poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return True


def _age(secs: int) -> str:
    if secs < 120:
        return f"{secs}s"
    if secs < 7200:
        return f"{secs // 60}m"
    return f"{secs // 3600}h"

