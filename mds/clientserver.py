"""The MDS's side of its clients (`ClientServer`, a part of MDSDaemon): connections, sessions
(C1-C6), requests with early and safe replies, reconnect (C1-C3), clientreplay (R3 step 6) and
eviction. The decisions are in `mds.sessionmap` and `mds.serving`; this is the trio layer."""

from __future__ import annotations

import contextlib
import errno
import time

import structlog
import trio

from common import messages as m
from common import states
from common.auth import cephx_on
from common.cephx_net import accept_service, peer_ip
from common.net import Connection, ConnectionClosed, ProtocolError
from mds import authcaps, filelocks, lifecycle, ophealth, pins, serving, subtree
from mds.rankdata import Damaged, Fenced
from mds.sessionmap import evicting_line
from osd.objecter import OSDError

log = structlog.get_logger("mds")


class ClientServer:
    """Serves the rank's clients. Reads the daemon's state (its rank, maps, session map and
    the rank's data) through `mds`; reports a fatal condition with `mds.fatal`."""

    def __init__(self, mds) -> None:
        self.mds = mds
        self.replay_queue: list = []  # (conn, client, request) replayed during reconnect
        self._reconnect_changed = trio.Event()

    async def serve_conn(self, stream) -> None:
        """A filesystem client (or `mdsemu tell`): hello, then session control and requests.
        A client that stops reading is disconnected after ms_send_timeout, or once
        ms_max_queued_messages replies wait for it (each request is a task: unbounded else)."""
        c = self.mds.config
        conn = Connection(stream, c.get("ms_max_message_size"),
                          send_timeout=c.get("ms_send_timeout"),
                          max_pending_sends=c.get("ms_max_queued_messages"))
        client = ""
        try:
            hello = await conn.recv()
            if not isinstance(hello, m.Hello) or not hello.entity.startswith(("client.",
                                                                              "mds.")):
                raise ProtocolError("expected a hello from a client or an MDS")
            if not await self._authenticate(conn, hello):
                return
            if hello.entity.startswith("mds."):  # a peer rank (subtrees)
                while True:
                    msg = await conn.recv()
                    if not isinstance(msg, m.MDSPeer):
                        raise ProtocolError(f"unexpected {msg.TYPE} from {hello.entity}")
                    rc, result = await self.mds.peers.peer_op(msg)
                    await conn.send(m.MDSPeerReply(rc=rc, result=result))
            client = hello.entity
            while True:
                await self._client_message(conn, client, await conn.recv())
        except ProtocolError as e:
            log.warning("closing client connection: bad input", peer=conn.peer, reason=str(e))
        except ConnectionClosed:
            pass
        finally:
            s = self.mds.sessionmap.get(client)
            if s is not None and s.conn is conn:
                s.conn = None
            await conn.aclose()

    async def _authenticate(self, conn: Connection, hello: m.Hello) -> bool:
        """cephx (when required): the peer's entity and caps come from its ticket, and they
        stay with this connection (`conn.identity`)."""
        me = f"mds.{self.mds.name}"
        if not cephx_on(self.mds.config):
            await conn.send(m.HelloOk(global_id=0, fsid="", mon=me))
            return True
        got = await accept_service(conn, hello, "mds", self.mds.auth,
                                   lambda proof: m.HelloOk(global_id=0, fsid="", mon=me,
                                                           auth=proof), log)
        if got is not None:
            conn.mds_caps = authcaps.parse(got[0].caps)
        return got is not None

    def _denied(self, conn: Connection, client: str, what: str) -> bool:
        """cephx: log a request the client's MDS caps refuse."""
        log.warning("denied by mds caps", client=client, request=what,
                    caps=conn.identity.caps if conn.identity else "")
        return True

    def _holding(self, is_command: bool) -> bool:
        return lifecycle.hold_client_message(is_command, self.mds.state,
                                             self.mds.mon.beacon.laggy(trio.current_time()))

    async def serve_admin(self, stream) -> None:
        """The admin socket (`mdsemu daemon mds.a ...`, Ceph's `ceph daemon`): commands only,
        answered in any state, also once the map no longer names this daemon."""
        conn = Connection(stream, self.mds.config.get("ms_max_message_size"))
        try:
            while True:
                msg = await conn.recv()
                if not isinstance(msg, m.Command):
                    raise ProtocolError(f"expected a command on the admin socket, "
                                        f"not {msg.TYPE}")
                rc, outs, outb = self.mds.run_admin(msg.args, msg.format, trio.current_time())
                await conn.send(m.CommandReply(tid=msg.tid, rc=rc, outs=outs, outb=outb))
        except ProtocolError as e:
            log.warning("closing admin socket connection: bad input", reason=str(e))
        except ConnectionClosed:
            pass
        finally:
            await conn.aclose()

    async def _client_message(self, conn: Connection, client: str, msg) -> None:
        if self._holding(isinstance(msg, m.Command)):  # B5
            log.info(f"laggy, deferring {msg.TYPE}", client=client)
            while self._holding(False) and self.mds.respawn_reason is None:
                await self.mds.mon.unlaggy.wait()
        now = trio.current_time()
        s = self.mds.sessionmap.get(client)
        if s is not None:  # as in Ceph, a session is its client's, whichever connection
            s.seen(now)
        caps = getattr(conn, "mds_caps", None)
        if isinstance(msg, m.Command):  # `mdsemu tell mds.<who> ...`: no session needed
            if conn.identity is not None and not authcaps.allow_all(caps) and \
                    self._denied(conn, client, "tell"):
                await conn.send(m.CommandReply(tid=msg.tid, rc=-errno.EACCES,
                                               outs="access denied"))
                return
            rc, outs, outb = self.mds.run_admin(msg.args, msg.format, now)
            await conn.send(m.CommandReply(tid=msg.tid, rc=rc, outs=outs, outb=outb))
        elif isinstance(msg, m.ClientSession):
            await self._session_op(conn, client, msg, now)
        elif isinstance(msg, m.ClientReconnect):
            await self._client_reconnect(conn, client, msg, now)
        elif isinstance(msg, m.ClientRequest):
            if s is None:
                rc, error = serving.no_session_reply(client)
                await conn.send(m.ClientReply(tid=msg.tid, rc=rc, error=error))
                return
            refused = authcaps.check_request(caps, msg.op, msg.args) \
                if conn.identity is not None else None
            if refused is not None and self._denied(conn, client, f"{msg.op} {msg.args}"):
                await conn.send(m.ClientReply(tid=msg.tid, rc=-refused[0], error=refused[1]))
                return
            s.requests += 1
            s.conn = conn
            if serving.queue_for_clientreplay(msg.replay, self.mds.state):
                self.replay_queue.append((conn, client, msg))  # for up:clientreplay (R3 6)
                return
            conn.busy += 1
            self.mds.nursery.start_soon(self._client_request, conn, client, msg)
        else:
            raise ProtocolError(f"unexpected {msg.TYPE} from a client")

    async def _session_op(self, conn: Connection, client: str, msg: m.ClientSession,
                          now: float) -> None:
        s = self.mds.sessionmap.get(client)
        if msg.op == "request_open":
            addr = msg.metadata.get("addr")
            why = self._cephx_open_refusal(conn, msg.metadata)
            if why is not None:
                log.warning("rejecting session", client=client, reason=why)
                await conn.send(m.ClientSession("reject", metadata={"error_string": why}))
                return
            known = self.mds.data.store.sessions.get(client) if self.mds.data is not None else None
            verdict, why = serving.open_verdict(
                addr, self.mds.osdmap.blocklist, self.mds.state,
                self.mds.data is not None and self.mds.respawn_reason is None,
                known.get("addr") if known is not None else None)
            if verdict == "bad":
                raise ProtocolError(why)
            if verdict == "reject":
                log.info("rejecting blocklisted client", client=client, addr=addr)
                await conn.send(m.ClientSession("reject", metadata={"error_string": why}))
                return
            if verdict == "close":
                await conn.send(m.ClientSession("close", metadata={"reason": why}))
                return
            meta = {k: v for k, v in msg.metadata.items() if isinstance(v, (str, int))}
            s = self.mds.sessionmap.add(client, addr, meta, now)
            s.conn = conn
            if verdict == "journal":
                data = self.mds.data
                if not await self.mds.data_io(data.journal_session(client, addr, meta, True)):
                    return
            log.info("session opened", client=client, addr=addr)
            await conn.send(m.ClientSession("open", seq=msg.seq))
        elif msg.op == "request_renewcaps":
            if s is None:
                await conn.send(m.ClientSession("close", metadata={"reason": "no session"}))
                return
            s.renewed(now)
            s.conn = conn
            await conn.send(m.ClientSession("renewcaps", seq=msg.seq))
        elif msg.op == "request_flush_mdlog":
            # Ceph's CEPH_SESSION_REQUEST_FLUSH_MDLOG: a client about to wait for its safe
            # replies (sync, fsync, unmount) has the journal written now, not at the tick
            data = self.mds.data
            if s is not None and data is not None:
                self.mds.nursery.start_soon(self.mds.data_io, data.flush_log())
        elif msg.op == "request_reclaim":
            await self._reclaim(conn, client, msg)
        elif msg.op == "request_close":
            if s is not None:
                s.conn = conn
                await self._end_session(s, "closed", journal=True)
            else:
                await conn.send(m.ClientSession("close", metadata={"reason": "closed"}))
        else:
            raise ProtocolError(f"unknown session op {msg.op!r}")

    def _cephx_open_refusal(self, conn: Connection, meta: dict) -> str | None:
        """cephx: a session for a root the caps do not cover is refused (Ceph's
        "non-allowable root"), and so is an address that is not the connection's."""
        if conn.identity is None:
            return None
        root = meta.get("root") if isinstance(meta.get("root"), str) else "/"
        if not authcaps.check_root(getattr(conn, "mds_caps", None), root):
            return authcaps.NON_ALLOWABLE_ROOT
        addr = meta.get("addr")
        if isinstance(addr, str) and addr.split("/")[0].rpartition(":")[0] != peer_ip(conn):
            return f"address {addr} is not the connection's ({conn.peer})"
        return None

    async def _reclaim(self, conn: Connection, client: str, msg: m.ClientSession) -> None:
        """Ceph's Server::handle_client_reclaim with CEPH_RECLAIM_RESET: the sessions of
        other clients that carry the same reclaim uuid (the previous incarnation of an NFS
        head) are ended, evicted and blocklisted as `session evict` would, releasing their
        file locks. -ENOENT when there were none; -EAGAIN until this rank is active."""
        uuid = msg.metadata.get("uuid")
        if not isinstance(uuid, str) or not uuid or msg.metadata.get("flags") != "reset":
            raise ProtocolError("request_reclaim needs a uuid and flags 'reset'")
        if self.mds.state not in (states.ACTIVE, states.CLIENTREPLAY) or self.mds.data is None:
            result, old = -errno.EAGAIN, []
        else:
            old = [s for s in self.mds.sessionmap.sessions.values()
                   if s.client != client and s.metadata.get("uuid") == uuid]
            result = 0 if old else -errno.ENOENT
        blocklist = self.mds.config.get("mds_session_blocklist_on_evict")
        for s in old:
            log.info("reclaim reset", uuid=uuid, by=client, old=s.client)
            await self.evict(s, evicting_line(s, blocklist), blocklist)
        await self._send_to(conn, m.ClientSession("reclaim_reply", seq=msg.seq, metadata={
            "result": result, "sessions": len(old)}))

    async def _client_reconnect(self, conn: Connection, client: str, msg: m.ClientReconnect,
                                now: float) -> None:
        """C1-C3: a client's reconnect to this rank's new holder."""
        smap = self.mds.sessionmap
        timeout = self.mds.config.get("mds_reconnect_timeout")
        # Ceph: "we're almost in reconnect state (mdsmap delivery race?); waiting": the client
        # saw the map first, or our reconnect work has not begun yet
        with trio.move_on_after(timeout):
            while self.mds.sm is not None and serving.wait_for_reconnect_state(
                    self.mds.sm.want_state, self.mds.state, smap.reconnect_start is not None,
                    self.mds.respawn_reason is not None):
                with trio.move_on_after(0.05):
                    await self.mds.map_seen.wait()
        now = trio.current_time()
        verdict = serving.reconnect_verdict(smap.get(client) is not None, self.mds.state,
                                            smap.reconnect_start is not None,
                                            self.mds.config.get("mds_deny_all_reconnect"))
        if verdict == "sessionless":
            await conn.send(m.ClientSession("reject", metadata={"error_string": "sessionless"}))
            return
        if verdict == "deny":
            addr = msg.metadata.get("addr") if isinstance(msg.metadata.get("addr"), str) \
                else smap.get(client).addr
            self.clog("INF", smap.denied_reconnect(client, addr, states.name(self.mds.state), now,
                                                    timeout, self.mds.started))
            await conn.send(m.ClientSession("close", metadata={"reason": "denied reconnect"}))
            return
        s = smap.get(client)
        s.conn = conn
        if smap.reconnected(client, now):
            log.info("reconnect by client", client=client,
                     after=round(now - smap.reconnect_start, 3))
        if msg.locks and self.mds.data is not None:
            try:
                lost = await self.mds.data.reinstall_locks(client, msg.locks)
            except (KeyError, TypeError, ValueError) as e:
                raise ProtocolError(f"bad locks in a reconnect: {e}") from None
            except (Fenced, Damaged, OSDError) as e:
                self.mds.fatal(str(e))
                return
            if lost:
                log.warning("reconnect: locks lost to a conflict", client=client, lost=lost)
        await conn.send(m.ClientSession("open"))
        self._reconnect_changed.set()

    async def _client_request(self, conn: Connection, client: str, req) -> None:
        op = self.mds.requests_in_flight.start(trio.current_time())  # MDS_SLOW_REQUEST
        try:
            await self._serve_request(conn, client, req)
        finally:
            self.mds.requests_in_flight.done(op)
            conn.busy -= 1

    async def _serve_request(self, conn: Connection, client: str, req) -> None:
        if serving.waits_for_active(req.replay, self.mds.state):
            with trio.move_on_after(self.mds.config.get("mds_beacon_grace")):
                while self.mds.state != states.ACTIVE and self.mds.respawn_reason is None:
                    await self.mds.map_seen.wait()
        data = self.mds.data
        if not serving.serves(req.replay, self.mds.state) or data is None or \
                self.mds.respawn_reason is not None:
            reply = m.ClientReply(tid=req.tid, rc=-errno.EAGAIN, error="not active")
        else:
            async def early_reply(result: dict) -> None:
                with contextlib.suppress(ConnectionClosed):
                    # a client with one request at a time gets it at once; one that sent
                    # many gets the unsafe replies of a round in one write
                    await conn.send_coalesced(m.ClientReply(tid=req.tid, rc=0, result=result,
                                                            safe=False), gather=conn.busy > 1)

            # as Ceph's Server::early_reply: none for a replayed request, and so it is
            # journaled at once (clientreplay waits for each)
            early = early_reply if self.mds.config.get("mds_early_reply") and not req.replay \
                else None
            pin = pins.pin_in_request(req.op, req.args)
            if pin is not None and not pins.valid_pin(pin):
                with contextlib.suppress(ConnectionClosed):
                    await conn.send(m.ClientReply(tid=req.tid, rc=-errno.EINVAL,
                                                  error=f"invalid {subtree.PIN_XATTR} value"))
                return
            try:
                rc, result, error = await data.handle(f"{client}:{req.tid}", req.op, req.args,
                                                      early, req.oldest_tid)
            except (Fenced, Damaged, OSDError) as e:
                self.mds.fatal(str(e))
                return
            reply = m.ClientReply(tid=req.tid, rc=rc, result=result, error=error)
            self.mds.peers.after_request(req, rc)
        with contextlib.suppress(ConnectionClosed):  # one write for a group commit's replies
            await conn.send_coalesced(reply)

    async def _end_session(self, s, reason: str, journal: bool) -> None:
        """Close a session: tell the client (if connected) why, and journal the close."""
        self.mds.sessionmap.remove(s.client)
        conn, s.conn = s.conn, None
        if conn is not None:
            with contextlib.suppress(ConnectionClosed):
                await conn.send(m.ClientSession("close", metadata={"reason": reason}))
            await conn.aclose()
        if journal and self.mds.data is not None and s.client in self.mds.data.store.sessions:
            await self.mds.data_io(self.mds.data.journal_session(s.client, "", {}, False))
        self._reconnect_changed.set()

    async def evict(self, s, message: str, blocklist: bool) -> None:
        """C2/C6 and `session evict`: blocklist the client (osd blocklist add, through the
        monitor), then end its session; it finds out when it next talks to us."""
        if self.mds.sessionmap.get(s.client) is not s:
            return
        self.clog("WRN" if "unresponsive" in message else "INF", message)
        if blocklist:
            await self.mds.mon.command(["osd", "blocklist", "add", s.addr])
        await self._end_session(s, "evicted", journal=True)

    async def evict_all_if_last(self) -> None:
        """MDSRank::stopping_start: the last rank to stop evicts every client session first
        (blocklisting as mds_session_blocklist_on_evict says); nobody is left to serve them."""
        fs = self.mds.fs
        victims = self.mds.sessionmap.last_rank_stopping(len(fs.in_) if fs else 0)
        blocklist = self.mds.config.get("mds_session_blocklist_on_evict")
        for s in victims:
            await self.evict(s, evicting_line(s, blocklist), blocklist)

    def clog(self, level: str, message: str) -> None:
        """A cluster-log line, sent to the monitor (`ceph -w` shows it)."""
        (log.warning if level == "WRN" else log.info)(message, clog=level)
        if self.mds.mon.conn is not None:
            self.mds.nursery.start_soon(self.mds.mon.send, m.LogMsg(entries=[
                {"level": level, "message": message, "stamp": time.time()}]))

    def apply_blocklist(self) -> None:
        """Sessions of clients the OSDMap now blocklists end (e.g. `osd blocklist add`)."""
        for s in list(self.mds.sessionmap.sessions.values()):
            if s.addr in self.mds.osdmap.blocklist:
                self.mds.nursery.start_soon(self._end_session, s, "evicted", True)

    async def session_upkeep(self) -> None:
        """C5/C6 on an active rank's tick: stale and autoclose (skipped while laggy, B5)."""
        smap = self.mds.sessionmap
        had_laggy = False
        while True:
            await trio.sleep(self.mds.config.get("mds_tick_interval"))
            now = trio.current_time()
            if self.mds.mon.beacon.laggy(now):
                if smap.last_cleared_laggy < now - 2 * self.mds.config.get("mds_tick_interval"):
                    log.info("skipping upkeep work because connection to Monitors appears "
                             "laggy")  # once when it starts, not every tick
                smap.last_cleared_laggy = now
                continue
            fs = self.mds.fs
            if fs is None:
                continue
            osd_laggy = self.mds.config.get("defer_client_eviction_on_laggy_osds") and \
                ophealth.osd_laggy(self.mds.ios, now, self.mds.config.get("osd_op_complaint_time"))
            busy = filelocks.holders(self.mds.data.store.sessions) if self.mds.data else set()
            stale, evicts = smap.idle(now, fs.session_timeout, fs.session_autoclose,
                                      self.mds.config.get("mds_defer_session_stale"), osd_laggy,
                                      busy)
            if smap.laggy_clients and not had_laggy:
                log.info(f"Detected {len(smap.laggy_clients)} laggy clients, possibly due to "
                         f"laggy OSDs. Eviction is skipped until the OSDs return to normal.")
            had_laggy = bool(smap.laggy_clients)
            for s in stale:
                log.info("marking session stale", client=s.client)
                if s.conn is not None:
                    await self._send_to(s.conn, m.ClientSession("stale"))
            for e in evicts:
                await self.evict(e.session, e.message,
                                 self.mds.config.get("mds_session_blocklist_on_timeout"))

    async def _send_to(self, conn: Connection, msg) -> None:
        with contextlib.suppress(ConnectionClosed):
            await conn.send(msg)

    async def work_reconnect(self) -> None:
        """C1/C2: wait for every replayed session to reconnect, up to mds_reconnect_timeout
        (extended while a missing client was seen recently); then evict the missing."""
        log.info("reconnect_start")
        smap, now = self.mds.sessionmap, trio.current_time()
        smap.load(self.mds.data.store.sessions if self.mds.data else {}, now)
        for s in smap.start_reconnect(now, set(self.mds.osdmap.blocklist)):
            log.info("killing session of blocklisted client", client=s.client, addr=s.addr)
            await self._end_session(s, "evicted", journal=True)
        timeout = self.mds.config.get("mds_reconnect_timeout")
        tick = serving.reconnect_tick(self.mds.config.get("mds_tick_interval"), timeout)
        if not smap.reconnect_done():
            log.info(f"reconnect_clients -- {len(smap.gather)} sessions")
        while not smap.reconnect_done():
            with trio.move_on_after(tick):
                await self._reconnect_changed.wait()
            self._reconnect_changed = trio.Event()
            now = trio.current_time()
            if self.mds.mon.beacon.laggy(now):
                continue  # B5: no reconnect timeout while we are laggy ourselves
            verdict, evicts = smap.reconnect_tick(now, timeout)
            if verdict == "extend":
                log.info("extending reconnect interval")
            for e in evicts:
                await self.evict(e.session, e.message,
                                 self.mds.config.get("mds_session_blocklist_on_timeout"))
        smap.reconnect_start = None
        log.info("reconnect_done")

    async def work_clientreplay(self) -> None:
        """R3 step 6: re-execute, in order, the requests clients had unsafe replies for."""
        log.info("clientreplay_start", requests=len(self.replay_queue))
        while self.replay_queue:
            conn, client, req = self.replay_queue.pop(0)
            conn.busy += 1
            await self._client_request(conn, client, req)
        log.info("clientreplay_done")
