"""The MDS daemon's trio shell: the mon session, beacons, map handling and the work of each
state. Decisions are in `mds.rank` (state machine) and `mds.beacon` (lagginess).

The work of each rank state is a method `_work_<state>`: creating writes a new journal, replay
waits for the fence (F3) and replays the journal from the osd, standby-replay follows it, active
serves clients (`mds.rankdata`). Every state is reported to the monitor and logged with Ceph's
wording.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import random
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

import structlog
import trio
import trio.testing

from common import log as logsetup
from common import messages as m
from common import states
from common.auth import hello_key
from common.config import Config
from common.fsmap import FSMap
from common.net import (
    Connection,
    ConnectionClosed,
    HandshakeError,
    ProtocolError,
    connect,
    parse_hostport,
)
from common.osdmap import OSDMap
from mds import admin, subtree
from mds.beacon import BeaconState
from mds.namespace import ROOT_INO, FSError
from mds.rank import Log, RankStateMachine, RequestState, Respawn, Start
from mds.rankdata import Damaged, Fenced, RankData
from mds.sessionmap import SessionMap
from osd.client import OSDClient, OSDError, ResendingOSD

log = structlog.get_logger("mds")

VERSION = "mdsemu 0.1.0"
PEER_TIMEOUT = 5.0  # seconds for a question to a peer rank
REPLAYED = (states.RESOLVE, states.RECONNECT, states.REJOIN, states.CLIENTREPLAY,
            states.ACTIVE, states.STOPPING)
RESPAWN_SETTLE = 0.05  # seconds other tasks may run once a respawn is decided


# SIGTERM/SIGINT seen by this process image (see watch_termination_signals).
_termination_seen: list[int] = []


def watch_termination_signals() -> None:
    """Note SIGTERM/SIGINT the moment Python sees them, then call the handler already in place
    (trio's signal receiver, which acts on it a few scheduler steps later). A respawn decided
    in between (e.g. a daemon removed while it was stopped gets `kill -TERM; kill -CONT`)
    must not re-execute the process: the signal would die with the old image (B10)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        inner = signal.getsignal(signum)
        if not callable(inner) or getattr(inner, "mdsemu_watch", False):
            continue

        def handler(sig, frame, inner=inner):
            _termination_seen.append(sig)
            inner(sig, frame)

        handler.mdsemu_watch = True
        signal.signal(signum, handler)


def exec_respawn(reason: str) -> None:  # pragma: no cover - replaces the process image
    """B8/B9: re-execute this very process (same pid, new gid), as ceph-mds does."""
    log.warning("respawn!", reason=reason)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)


class MDSDaemon:
    def __init__(self, config: Config, respawn: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.name = config.entity_id
        self.respawn_hook = respawn
        self.gid = 0
        self.nonce = random.randint(1, 2**31 - 1)
        self.addr = ""
        self.beacon = BeaconState(config.get("mds_beacon_grace"))
        self.sm: RankStateMachine | None = None
        self.fsmap: FSMap | None = None
        self.conn = None
        self._wake = trio.Event()  # B3: send a beacon now
        self._stopping = False
        self._acked_dne: trio.Event | None = None
        self._work_scope: trio.CancelScope | None = None
        self.nursery: trio.Nursery | None = None
        self.respawn_reason: str | None = None
        self.osdmap = OSDMap(epoch=0)
        self._osdmap_changed = trio.Event()
        self.osd = ResendingOSD(self._reopen_osd)  # objecter-like: resends on a new session
        self._osd_scope: trio.CancelScope | None = None
        self._deferred_map: FSMap | None = None
        self.data: RankData | None = None
        self.sessionmap = SessionMap()
        self.replay_queue: list = []  # (conn, client, request) replayed during reconnect
        self._reconnect_changed = trio.Event()
        self._mon_tid = 0
        self._export_seq = 0
        self._map_seen = trio.Event()  # set (and replaced) on every map
        self._unlaggy = trio.Event()  # set (and replaced) on each ack that ends laggy
        self.started = 0.0
        self.fsid = ""

    @property
    def state(self) -> int:
        return self.sm.state if self.sm else states.BOOT

    # -- life cycle
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled, or until the map removes us (see `_respawn`)."""
        self.started = trio.current_time()
        host = parse_hostport(self.config.get("public_addr") or "127.0.0.1", 0)[0]
        listener = (await trio.open_tcp_listeners(0, host=host))[0]
        port = listener.socket.getsockname()[1]
        self.addr = f"{host}:{port}/{self.nonce}"
        if self.respawn_hook is not None and threading.current_thread() is threading.main_thread():
            watch_termination_signals()
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            nursery.start_soon(trio.serve_listeners, self._client_conn, [listener])
            asok = admin_socket_listener(self.config.get("admin_socket"))
            if asok is not None:
                nursery.start_soon(trio.serve_listeners, self._admin_conn, [asok])
            nursery.start_soon(self._mon_session_loop)
            task_status.started(self)

    # -- clients: sessions (C1-C6) and requests
    async def _client_conn(self, stream) -> None:
        """A filesystem client (or `mdsemu tell`): hello, then session control and requests."""
        conn = Connection(stream, self.config.get("ms_max_message_size"))
        client = ""
        try:
            hello = await conn.recv()
            if not isinstance(hello, m.Hello) or not hello.entity.startswith(("client.",
                                                                              "mds.")):
                raise ProtocolError("expected a hello from a client or an MDS")
            await conn.send(m.HelloOk(global_id=0, fsid="", mon=f"mds.{self.name}"))
            if hello.entity.startswith("mds."):  # a peer rank (subtrees)
                while True:
                    msg = await conn.recv()
                    if not isinstance(msg, m.MDSPeer):
                        raise ProtocolError(f"unexpected {msg.TYPE} from {hello.entity}")
                    rc, result = await self._peer_op(msg)
                    await conn.send(m.MDSPeerReply(rc=rc, result=result))
            client = hello.entity
            while True:
                await self._client_message(conn, client, await conn.recv())
        except ProtocolError as e:
            log.warning("closing client connection: bad input", peer=conn.peer, reason=str(e))
        except ConnectionClosed:
            pass
        finally:
            s = self.sessionmap.get(client)
            if s is not None and s.conn is conn:
                s.conn = None
            await conn.aclose()

    def _laggy(self) -> bool:
        return self.sm is not None and self.sm.state != states.BOOT and \
            self.beacon.laggy(trio.current_time())

    async def _admin_conn(self, stream) -> None:
        """The admin socket (`mdsemu daemon mds.a ...`, Ceph's `ceph daemon`): commands only,
        answered in any state, also once the map no longer names this daemon."""
        conn = Connection(stream, self.config.get("ms_max_message_size"))
        try:
            while True:
                msg = await conn.recv()
                if not isinstance(msg, m.Command):
                    raise ProtocolError(f"expected a command on the admin socket, "
                                        f"not {msg.TYPE}")
                rc, outs, outb = admin.run(msg.args, msg.format, self, trio.current_time())
                await conn.send(m.CommandReply(tid=msg.tid, rc=rc, outs=outs, outb=outb))
        except ProtocolError as e:
            log.warning("closing admin socket connection: bad input", reason=str(e))
        except ConnectionClosed:
            pass
        finally:
            await conn.aclose()

    async def _client_message(self, conn: Connection, client: str, msg) -> None:
        if not isinstance(msg, m.Command) and self._laggy():
            # B5: while our beacons go unacked, client messages wait (waiting_for_nolaggy)
            log.info(f"laggy, deferring {msg.TYPE}", client=client)
            while self._laggy() and self.respawn_reason is None:
                await self._unlaggy.wait()
        now = trio.current_time()
        s = self.sessionmap.get(client)
        if s is not None:  # as in Ceph, a session is its client's, whichever connection
            s.seen(now)
        if isinstance(msg, m.Command):  # `mdsemu tell mds.<who> ...`: no session needed
            rc, outs, outb = admin.run(msg.args, msg.format, self, now)
            await conn.send(m.CommandReply(tid=msg.tid, rc=rc, outs=outs, outb=outb))
        elif isinstance(msg, m.ClientSession):
            await self._session_op(conn, client, msg, now)
        elif isinstance(msg, m.ClientReconnect):
            await self._client_reconnect(conn, client, now)
        elif isinstance(msg, m.ClientRequest):
            if s is None:
                await conn.send(m.ClientReply(tid=msg.tid, rc=-errno.ENOTCONN,
                                              error=f"no session for {client}"))
                return
            s.requests += 1
            s.conn = conn
            if msg.replay and self.state == states.RECONNECT:
                self.replay_queue.append((conn, client, msg))  # for up:clientreplay (R3 6)
                return
            self.nursery.start_soon(self._client_request, conn, client, msg)
        else:
            raise ProtocolError(f"unexpected {msg.TYPE} from a client")

    async def _session_op(self, conn: Connection, client: str, msg: m.ClientSession,
                          now: float) -> None:
        s = self.sessionmap.get(client)
        if msg.op == "request_open":
            addr = msg.metadata.get("addr")
            if not isinstance(addr, str) or not addr:
                raise ProtocolError("request_open without the client's addr")
            if addr in self.osdmap.blocklist:
                log.info("rejecting blocklisted client", client=client, addr=addr)
                await conn.send(m.ClientSession("reject",
                                                metadata={"error_string": "blocklisted"}))
                return
            if self.state not in (states.ACTIVE, states.CLIENTREPLAY) or self.data is None \
                    or self.respawn_reason is not None:
                await conn.send(m.ClientSession("close", metadata={
                    "reason": f"mds is {states.name(self.state)}"}))
                return
            meta = {k: v for k, v in msg.metadata.items() if isinstance(v, (str, int))}
            known = self.data.store.sessions.get(client)
            s = self.sessionmap.add(client, addr, meta, now)
            s.conn = conn
            if known is None or known.get("addr") != addr:
                if not await self._data_io(self.data.journal_session(client, addr, meta, True)):
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
        elif msg.op == "request_close":
            if s is not None:
                s.conn = conn
                await self._end_session(s, "closed", journal=True)
            else:
                await conn.send(m.ClientSession("close", metadata={"reason": "closed"}))
        else:
            raise ProtocolError(f"unknown session op {msg.op!r}")

    async def _client_reconnect(self, conn: Connection, client: str, now: float) -> None:
        """C1-C3: a client's reconnect to this rank's new holder."""
        smap = self.sessionmap
        timeout = self.config.get("mds_reconnect_timeout")
        if self.state != states.RECONNECT or smap.reconnect_start is None or \
                self.config.get("mds_deny_all_reconnect"):
            since = now - smap.reconnect_start if smap.reconnect_start is not None else 0.0
            self._clog("INF", f"denied reconnect attempt (mds is {states.name(self.state)}) "
                              f"from {client} after {since:g} (allowed interval {timeout:g})")
            await conn.send(m.ClientSession("close", metadata={"reason": "denied reconnect"}))
            return
        s = smap.get(client)
        if s is None:
            await conn.send(m.ClientSession("reject", metadata={"error_string": "sessionless"}))
            return
        s.conn = conn
        if smap.reconnected(client, now):
            log.info("reconnect by client", client=client,
                     after=round(now - smap.reconnect_start, 3))
        await conn.send(m.ClientSession("open"))
        self._reconnect_changed.set()

    async def _client_request(self, conn: Connection, client: str, req) -> None:
        if not req.replay and self.state in (states.REJOIN, states.CLIENTREPLAY):
            # A client saw the map that makes us active before we did: the request waits for
            # up:active (Ceph's wait_for_active) rather than bouncing.
            with trio.move_on_after(self.config.get("mds_beacon_grace")):
                while self.state != states.ACTIVE and self.respawn_reason is None:
                    await self._map_seen.wait()
        data = self.data
        serving = self.state == states.ACTIVE or (self.state == states.CLIENTREPLAY
                                                  and req.replay)
        if not serving or data is None or self.respawn_reason is not None:
            reply = m.ClientReply(tid=req.tid, rc=-errno.EAGAIN, error="not active")
        else:
            async def early_reply(result: dict) -> None:
                with contextlib.suppress(ConnectionClosed):
                    await conn.send(m.ClientReply(tid=req.tid, rc=0, result=result, safe=False))

            early = early_reply if self.config.get("mds_early_reply") else None
            pin = (req.args.get("xattrs") or {}).get(subtree.PIN_XATTR) \
                if req.op == "setattr" and isinstance(req.args.get("xattrs"), dict) else None
            if pin is not None and not _valid_pin(pin):
                with contextlib.suppress(ConnectionClosed):
                    await conn.send(m.ClientReply(tid=req.tid, rc=-errno.EINVAL,
                                                  error=f"invalid {subtree.PIN_XATTR} value"))
                return
            try:
                rc, result, error = await data.handle(f"{client}:{req.tid}", req.op, req.args,
                                                      early)
            except (Fenced, Damaged, OSDError) as e:
                self._respawn(str(e))
                return
            reply = m.ClientReply(tid=req.tid, rc=rc, result=result, error=error)
            self._after_request(req, rc)
        with contextlib.suppress(ConnectionClosed):
            await conn.send(reply)

    # -- subtrees across ranks (mds.subtree)
    async def _peer_op(self, msg: m.MDSPeer) -> tuple[int, dict]:
        """A peer rank's export, pin or resolve question."""
        data = self.data
        replayed = (states.RESOLVE, states.RECONNECT, states.REJOIN, states.CLIENTREPLAY,
                    states.ACTIVE, states.STOPPING)
        if data is None or data.ns is None or self.state not in replayed or \
                self.respawn_reason is not None:
            return -errno.EAGAIN, {}
        a = msg.args
        try:
            if msg.op == "export":
                if self.state not in (states.ACTIVE, states.CLIENTREPLAY):
                    return -errno.EAGAIN, {}
                ev = subtree.import_event(a["snapshot"], int(a["from"]), str(a["export_id"]))
                if not await self._data_io(data.import_subtree(ev)):
                    return -errno.EAGAIN, {}
                log.info("import_dir", path=data.ns.path_of(ev["root"]), from_rank=ev["from"],
                         entries=len(ev["entries"]))
                self.nursery.start_soon(self._enforce_pins, ev)
                return 0, {}
            if msg.op == "resolve":
                return 0, {"imports": data.imports_from(int(a["from"]))}
            if msg.op == "pin":
                with contextlib.suppress(FSError):  # our copy of the inode shows the new pin
                    data.ns.resolve(str(a["path"])).xattrs[subtree.PIN_XATTR] = \
                        str(int(a["target"]))
                self.nursery.start_soon(self._apply_pin, str(a["path"]), int(a["target"]),
                                        int(a["from"]))
                return 0, {}
        except (KeyError, TypeError, ValueError, IndexError) as e:
            log.warning("bad request from a peer", op=msg.op, error=repr(e))
            return -errno.EINVAL, {}
        return -errno.EINVAL, {}

    async def _peer_call(self, rank: int, op: str, args: dict) -> m.MDSPeerReply | None:
        """Ask the holder of `rank` (one connection per question); None if it cannot answer."""
        fs = self.fsmap.fs_of(self.gid) if self.fsmap else None
        info = fs.holder(rank) if fs is not None else None
        if info is None:
            return None
        host, port = parse_hostport(info.addr.split("/")[0])
        try:
            with trio.fail_after(PEER_TIMEOUT):
                conn, _ = await connect(host, port, f"mds.{self.name}", global_id=self.gid)
                try:
                    await conn.send(m.MDSPeer(op=op, args=args))
                    reply = await conn.recv()
                finally:
                    await conn.aclose()
        except (OSError, HandshakeError, ConnectionClosed, ProtocolError,
                trio.TooSlowError) as e:
            log.info("peer did not answer", rank=rank, op=op, error=str(e) or type(e).__name__)
            return None
        return reply if isinstance(reply, m.MDSPeerReply) else None

    async def export_subtree(self, root: int, target: int) -> bool:
        """Hand the subtree at `root` to rank `target`: freeze, flush, send until the
        importer has journaled it, then journal the EExport. False if abandoned."""
        data = self.data
        if data is None or root in data.frozen:
            return False
        self._export_seq += 1
        export_id = f"{self.gid}.{self._export_seq}"
        path = data.ns.path_of(root)
        log.info("export_dir", path=path, to_rank=target, export_id=export_id)
        try:
            snap = await data.export_prepare(root)
            backoff = 0.05
            while True:
                fs = self.fsmap.fs_of(self.gid)
                if fs is None or target not in fs.in_ or self.respawn_reason is not None:
                    data.export_abort(root)
                    log.warning("export abandoned", path=path, to_rank=target)
                    return False
                reply = await self._peer_call(target, "export", {
                    "export_id": export_id, "from": self.sm.rank, "snapshot": snap})
                if reply is not None and reply.rc == 0:
                    break
                await trio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
            await data.export_commit(root, target, export_id)
        except (Fenced, Damaged, OSDError) as e:
            self._respawn(str(e))
            return False
        log.info("export_finish", path=path, to_rank=target)
        return True

    async def _apply_pin(self, path: str, target: int, parent_rank: int) -> None:
        """ceph.dir.pin on `path` (set through the rank holding its parent, `parent_rank`):
        move the directory's contents to rank `target` (-1: back to the parent's rank)."""
        data = self.data
        if data is None or data.ns is None:
            return
        try:
            node = data.ns.resolve(path)
            while subtree.under(data.ns, node.ino, data.frozen):  # an export is under way
                await trio.sleep(0.05)
                node = data.ns.resolve(path)
        except FSError:
            return
        if not node.is_dir:
            return
        if node.ino in data.ns.exported:  # the contents are elsewhere: their holder moves them
            holder = data.ns.exported[node.ino]
            if holder != target:
                await self._peer_call(holder, "pin", {"path": path, "target": target,
                                                      "from": self.sm.rank})
            return
        if target < 0:
            if node.ino in data.ns.auth_roots and parent_rank != self.sm.rank:
                await self.export_subtree(node.ino, parent_rank)
            return
        if target == self.sm.rank:
            return
        fs = self.fsmap.fs_of(self.gid)
        holder = fs.holder(target) if fs is not None else None
        if holder is None or holder.state != states.ACTIVE:
            log.info("export pin to a rank that is not active; the subtree stays",
                     path=path, rank=target)
            return
        await self.export_subtree(node.ino, target)

    async def _enforce_pins(self, ev: dict) -> None:
        """Pins travel with their directories: an imported directory pinned to another rank
        goes on there (e.g. pinned while an ancestor was being exported)."""
        data = self.data
        for _, _, wire in [ev["chain"][-1]] + ev["entries"] if ev["chain"] else ev["entries"]:
            pin = (wire.get("xattrs") or {}).get(subtree.PIN_XATTR)
            if pin is None or not _valid_pin(pin) or int(pin) < 0 or int(pin) == self.sm.rank:
                continue
            if data is not self.data or wire["ino"] not in data.ns.inodes:
                continue
            await self._apply_pin(data.ns.path_of(wire["ino"]), int(pin), self.sm.rank)

    def _after_request(self, req, rc: int) -> None:
        """Pins (ceph.dir.pin) and the default spread of new top-level directories."""
        if rc != 0 or self.data is None:
            return
        if req.op == "setattr" and subtree.PIN_XATTR in (req.args.get("xattrs") or {}):
            target = int(req.args["xattrs"][subtree.PIN_XATTR])
            self.nursery.start_soon(self._apply_pin, req.args["path"], target, self.sm.rank)
        elif req.op == "mkdir" and self.sm.rank == 0:
            parts = [p for p in str(req.args.get("path", "")).split("/") if p]
            fs = self.fsmap.fs_of(self.gid)
            if len(parts) == 1 and fs is not None and fs.max_mds > 1:
                target = subtree.default_rank(parts[0], fs.max_mds)
                if target != 0:
                    self.nursery.start_soon(self._apply_pin, req.args["path"], target, 0)

    async def _data_io(self, coro) -> bool:
        """Run a metadata write outside a state's work; a fenced or damaged rank respawns."""
        try:
            await coro
            return True
        except (Fenced, Damaged, OSDError) as e:
            self._respawn(str(e))
            return False

    async def _end_session(self, s, reason: str, journal: bool) -> None:
        """Close a session: tell the client (if connected) why, and journal the close."""
        self.sessionmap.remove(s.client)
        conn, s.conn = s.conn, None
        if conn is not None:
            with contextlib.suppress(ConnectionClosed):
                await conn.send(m.ClientSession("close", metadata={"reason": reason}))
            await conn.aclose()
        if journal and self.data is not None and s.client in self.data.store.sessions:
            await self._data_io(self.data.journal_session(s.client, "", {}, False))
        self._reconnect_changed.set()

    async def evict(self, s, message: str, blocklist: bool) -> None:
        """C2/C6 and `session evict`: blocklist the client (osd blocklist add, through the
        monitor), then end its session; it finds out when it next talks to us."""
        if self.sessionmap.get(s.client) is not s:
            return
        self._clog("WRN" if "unresponsive" in message else "INF", message)
        if blocklist:
            await self._mon_command(["osd", "blocklist", "add", s.addr])
        await self._end_session(s, "evicted", journal=True)

    def _clog(self, level: str, message: str) -> None:
        """A cluster-log line, sent to the monitor (`ceph -w` shows it)."""
        (log.warning if level == "WRN" else log.info)(message, clog=level)
        if self.conn is not None:
            self.nursery.start_soon(self._send_quietly, m.LogMsg(entries=[
                {"level": level, "message": message, "stamp": time.time()}]))

    async def _mon_command(self, args: list[str]) -> None:
        self._mon_tid += 1
        await self._send_quietly(m.Command(tid=self._mon_tid, args=args,
                                           who=f"mds.{self.name}"))

    async def _send_quietly(self, msg) -> None:
        conn = self.conn
        if conn is not None:
            with contextlib.suppress(ConnectionClosed):
                await conn.send(msg)

    def _apply_blocklist(self) -> None:
        """Sessions of clients the OSDMap now blocklists end (e.g. `osd blocklist add`)."""
        for s in list(self.sessionmap.sessions.values()):
            if s.addr in self.osdmap.blocklist:
                self.nursery.start_soon(self._end_session, s, "evicted", True)

    async def _session_upkeep(self) -> None:
        """C5/C6 on an active rank's tick: stale and autoclose (skipped while laggy, B5)."""
        smap = self.sessionmap
        while True:
            await trio.sleep(self.config.get("mds_tick_interval"))
            now = trio.current_time()
            if self.beacon.laggy(now):
                if smap.last_cleared_laggy < now - 2 * self.config.get("mds_tick_interval"):
                    log.info("skipping upkeep work because connection to Monitors appears "
                             "laggy")  # once when it starts, not every tick
                smap.last_cleared_laggy = now
                continue
            fs = self.fsmap.fs_of(self.gid) if self.fsmap else None
            if fs is None:
                continue
            stale, evicts = smap.idle(now, fs.session_timeout, fs.session_autoclose,
                                      self.config.get("mds_defer_session_stale"))
            for s in stale:
                log.info("marking session stale", client=s.client)
                if s.conn is not None:
                    await self._send_to(s.conn, m.ClientSession("stale"))
            for e in evicts:
                await self.evict(e.session, e.message,
                                 self.config.get("mds_session_blocklist_on_timeout"))

    async def _send_to(self, conn: Connection, msg) -> None:
        with contextlib.suppress(ConnectionClosed):
            await conn.send(msg)

    def _respawn(self, reason: str) -> None:
        """Re-execute (the process) or, with no hook (in-process), end `run` with the reason
        in `respawn_reason` so that a supervisor starts a fresh daemon with a new gid."""
        if self._stopping or _termination_seen:
            # B10: the map that drops us answers our down:dne beacon (the mon publishes it
            # before the ack), or a stop signal is on its way to shutdown(); we are leaving,
            # so this is the end, not a reason to respawn.
            log.info("removed from the map while shutting down; not respawning")
            if self._acked_dne is not None:
                self._acked_dne.set()
            return
        if self.respawn_reason is not None:
            return  # already on the way out
        log.warning(reason)
        self.respawn_reason = reason
        if self.nursery is None:
            if self.respawn_hook is not None:
                self.respawn_hook(reason)
            return
        self.nursery.start_soon(self._respawn_after_settling, reason)

    async def _respawn_after_settling(self, reason: str) -> None:
        """Ceph's journal and objecter run in threads of their own: a write already released
        (e.g. by clearing mds_log_pause) goes out while the dispatcher decides to respawn,
        and a fenced instance's write is refused by the osd (F4). Let the other tasks run
        until they block, briefly, then respawn."""
        with trio.move_on_after(RESPAWN_SETTLE):
            await trio.testing.wait_all_tasks_blocked()
        if self.respawn_hook is not None and not (self._stopping or _termination_seen):
            self.respawn_hook(reason)
        self.nursery.cancel_scope.cancel()

    async def shutdown(self) -> None:
        """B10: tell the monitor we are going (down:dne) and wait up to 1 s for the ack."""
        self._stopping = True
        if self.conn is None or self.gid == 0 or self.state == states.BOOT:
            return
        self.beacon.want_state = states.DNE
        self.sm.want_state = states.DNE
        with trio.move_on_after(1.0):
            self._acked_dne = trio.Event()
            await self._send_beacon()
            await self._acked_dne.wait()
            log.info("mon acknowledged our shutdown")

    # -- the mon session (reconnects with backoff, keeps its gid)
    async def _mon_session_loop(self) -> None:
        hosts = [parse_hostport(h) for h in self.config.get("mon_host").split(",") if h.strip()]
        backoff = self.config.get("mon_client_hunt_interval")
        attempt = 0
        while True:
            host, port = hosts[attempt % len(hosts)]
            attempt += 1
            try:
                conn, ok = await connect(host, port, f"mds.{self.name}", self.gid,
                                         auth=hello_key(self.config),
                                         max_size=self.config.get("ms_max_message_size"))
            except (OSError, HandshakeError) as e:
                log.warning("cannot reach the monitor, retrying", mon=f"{host}:{port}",
                            error=str(e), retry_in=backoff)
                await trio.sleep(backoff)
                # Never wait longer than the grace between attempts: a restarted mon gives
                # us mds_beacon_mon_down_grace to come back (T3), then fails us.
                backoff = min(backoff * 2, 5 * self.config.get("mon_client_hunt_interval") + 2,
                              max(self.config.get("mds_beacon_grace"), 0.1))
                continue
            backoff = self.config.get("mon_client_hunt_interval")
            self.fsid = ok.fsid
            if self.gid == 0:
                self.gid = ok.global_id
                self.sm = RankStateMachine(self.gid)
                logsetup.bind(gid=self.gid)
                log.info("mds starting", gid=self.gid, addr=self.addr, mon=f"{host}:{port}")
            else:
                log.info("reconnected to the monitor", mon=f"{host}:{port}")
            self.conn = conn
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guard, self._beacon_loop, nursery.cancel_scope)
                    await conn.send(m.Subscribe(what=["fsmap", "osdmap", "config"]))
                    await self._guard(functools.partial(self._receive_loop, conn),
                                      nursery.cancel_scope)
            finally:
                self.conn = None
                await conn.aclose()
            await trio.sleep(self.config.get("mon_client_hunt_interval"))

    async def _guard(self, fn, scope: trio.CancelScope) -> None:
        """Run one half of the mon session; a network fault ends both halves, quietly."""
        try:
            await fn()
        except (ConnectionClosed, ProtocolError) as e:
            log.warning("lost the monitor connection", error=str(e))
        scope.cancel()

    async def _beacon_loop(self) -> None:
        """B2/B3: a beacon every mds_beacon_interval, or at once when the wanted state changes."""
        started = trio.current_time()
        while True:
            await self._send_beacon()
            with trio.move_on_after(self.config.get("mds_beacon_interval")):
                await self._wake.wait()
            self._wake = trio.Event()
            now = trio.current_time()
            self.beacon.grace = self.config.get("mds_beacon_grace")
            if self.beacon.laggy(now) and self.beacon.last_acked_stamp is not None:
                log.warning(f"MDS connection to Monitors appears to be laggy; "
                            f"{self.beacon.since_acked(now):.3f}s since last acked beacon")
            # A session whose beacons go unanswered this long is dead: a peer that vanished,
            # or our own address that changed, sends no RST. Hunt for a monitor again, as
            # Ceph's MonClient does after mon_client_ping_timeout.
            silent = now - max(started, self.beacon.last_acked_stamp or started)
            if silent > self.config.get("mon_client_ping_timeout"):
                raise ConnectionClosed(f"no beacon acked for {silent:.1f}s; "
                                       f"hunting for a new monitor session")

    def _beacon_msg(self, seq: int) -> m.Beacon:
        want = self.sm.want_state if self.sm else states.BOOT
        if self._stopping:
            want = states.DNE
        c = self.config
        return m.Beacon(
            global_id=self.gid, name=self.name, state=want, seq=seq,
            version=self.sm.effective_epoch if self.sm else 0, addr=self.addr,
            fs=c.get("mds_join_fs"),
            health=(self.data.health(c.get("mds_log_warn_factor"))
                    if self.data is not None and self.state == states.ACTIVE else []),
            stats=dict(self.data.stats() if self.data is not None else {},
                       clients=len(self.sessionmap.sessions)),
            standby_for_rank=c.get("mds_standby_for_rank"),
            standby_for_name=c.get("mds_standby_for_name"),
            standby_for_fscid=c.get("mds_standby_for_fscid"),
            standby_replay=c.get("mds_standby_replay"),
            sys_info=({"hostname": socket.gethostname(), "pid": os.getpid(),
                       "ceph_version": VERSION, "addr": self.addr}
                      if want == states.BOOT else {}),
        )

    async def _send_beacon(self) -> None:
        conn = self.conn
        if conn is None:
            return
        seq = self.beacon.sent(trio.current_time())
        await conn.send(self._beacon_msg(seq))

    async def _receive_loop(self, conn) -> None:
        while True:
            msg = await conn.recv()
            if isinstance(msg, m.BeaconAck):
                self._on_ack(msg)
            elif isinstance(msg, m.FSMapMsg):
                fsmap = FSMap.from_wire(msg.fsmap)
                if self.sm is not None and self.sm.state != states.BOOT and \
                        self.beacon.laggy(trio.current_time()):
                    # B5: while our beacons go unacked, maps wait until the monitors answer
                    log.info("laggy, deferring mdsmap", epoch=fsmap.epoch)
                    self._deferred_map = fsmap
                else:
                    self._on_fsmap(fsmap)
            elif isinstance(msg, m.ConfigMsg):
                self.config_changed(self.config.set_runtime(msg.values))
            elif isinstance(msg, m.OSDMapMsg):
                osdmap = OSDMap.from_wire(msg.osdmap)
                if osdmap.epoch > self.osdmap.epoch:
                    self.osdmap = osdmap
                    self._apply_blocklist()
                    self._osdmap_changed.set()
                    self._osdmap_changed = trio.Event()
            elif isinstance(msg, m.Error):
                raise ProtocolError(f"monitor said: {msg.message}")

    def config_changed(self, changed: list[str]) -> None:
        """Act on options that changed at run time (mon config db or `tell ... config set`).
        Like Ceph's config observers, this runs even while laggy (B5 defers only messages)."""
        if not changed:
            return
        log.info("config changed", options=changed)
        if "mds_log_pause" in changed and self.data is not None:
            self.data.set_log_pause(self.config.get("mds_log_pause"))
        self._wake.set()  # e.g. mds_join_fs: the mon hears of it now (S3)

    def _on_ack(self, ack: m.BeaconAck) -> None:
        if ack.null_map:
            if self._stopping:
                if self._acked_dne is not None:
                    self._acked_dne.set()
                return
            self._respawn("Map removed me from cluster; respawning! See cluster/monitor logs "
                          "for details.")
        now = trio.current_time()
        if self.beacon.acked(ack.seq, now):
            log.info(" MDS is no longer laggy")
        if not self.beacon.laggy(now):
            self._unlaggy.set()
            self._unlaggy = trio.Event()
        if self._deferred_map is not None and not self.beacon.laggy(now):
            fsmap, self._deferred_map = self._deferred_map, None
            self._on_fsmap(fsmap)

    # -- maps and the work of each state
    def _on_fsmap(self, fsmap: FSMap) -> None:
        if self.sm is None or self.respawn_reason is not None:
            return
        actions = self.sm.handle_map(fsmap)
        if fsmap.epoch >= self.sm.epoch:
            self.fsmap = fsmap
            self._map_seen.set()
            self._map_seen = trio.Event()
        if actions:
            log.info(f"Updating MDS map to version {fsmap.epoch} from mon")
        self._act(actions)

    def _act(self, actions) -> None:
        for action in actions:
            if isinstance(action, Log):
                log.info(action.message)
            elif isinstance(action, RequestState):
                log.info("requesting state", state=states.name(action.state))
                self._wake.set()
            elif isinstance(action, Start):
                if self._work_scope is not None:
                    self._work_scope.cancel()
                self.nursery.start_soon(self._work, action.state)
            elif isinstance(action, Respawn):
                self._respawn(action.reason)

    async def _work(self, state: int) -> None:
        with trio.CancelScope() as scope:
            self._work_scope = scope
            step = getattr(self, f"_work_{states.name(state).split(':')[1].replace('-', '_')}")
            backoff = self.config.get("mon_client_hunt_interval")
            while True:
                try:
                    await step()
                    break
                except Fenced as e:
                    self._respawn(str(e))
                    return
                except Damaged as e:
                    await self._report_damaged(str(e))
                    return
                except OSDError as e:
                    # The osd is down or restarting: wait and start the step over with a new
                    # session (its address comes from the OSDMap), as Ceph's objecter waits.
                    log.warning("metadata pool unreachable, retrying", error=str(e),
                                state=states.name(state), retry_in=backoff)
                    self._drop_osd()
                    await trio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
            if self.sm.state == state and self.fsmap is not None:
                self._act(self.sm.step_done(state, self.fsmap,
                                            replay_queued=bool(self.replay_queue)))

    # -- the metadata pool
    async def _wait_osdmap(self, epoch: int) -> None:
        """F3: wait for the OSDMap that blocklists the rank's previous instance."""
        if self.osdmap.epoch < epoch:
            log.info(f" waiting for osdmap {epoch} (which blocklists prior instance)")
        while self.osdmap.epoch < epoch or not self.osdmap.osd_addrs:
            await self._osdmap_changed.wait()

    async def _osd_session(self, addr: str, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as self._osd_scope:
            async with OSDClient.open(addr, f"mds.{self.name}", self.addr) as osd:
                task_status.started(osd)
                await trio.sleep_forever()

    async def _reopen_osd(self) -> OSDClient:
        """A new osd session (the OSDMap gives its address), for ResendingOSD: retried until
        an osd answers, as Ceph's objecter waits for the OSD to come back."""
        if self._osd_scope is not None:
            self._osd_scope.cancel()
        backoff = 0.05
        while True:
            while not self.osdmap.osd_addrs:
                await self._osdmap_changed.wait()
            addr = self.osdmap.osd_addrs[min(self.osdmap.osd_addrs)]
            try:
                return await self.nursery.start(self._osd_session, addr)
            except (OSError, OSDError, HandshakeError, ConnectionClosed) as e:
                log.warning("osd unreachable; waiting for it", addr=addr,
                            error=str(e) or type(e).__name__, retry_in=backoff)
            epoch = self.osdmap.epoch
            with trio.move_on_after(backoff):
                while self.osdmap.epoch == epoch:
                    await self._osdmap_changed.wait()
            backoff = min(backoff * 2, 2.0)

    def _drop_osd(self) -> None:
        """Forget the osd session and what was loaded through it; the next step reloads."""
        if self._osd_scope is not None:
            self._osd_scope.cancel()
        self._osd_scope = None
        self.data = None

    async def _rank_data(self) -> RankData:
        """Open (once) the osd session and this rank's metadata, after the fence (F3)."""
        fs = self.fsmap.fs_of(self.gid)
        await self._wait_osdmap(fs.last_failure_osd_epoch)
        if self.data is not None:
            self.data.store.min_epoch = max(self.data.store.min_epoch, fs.last_failure_osd_epoch)
            return self.data
        c = self.config
        self.data = RankData(self.osd, fs.metadata_pool, self.sm.rank,
                             c.get("mds_log_events_per_segment"), c.get("mds_log_max_segments"),
                             min_epoch=fs.last_failure_osd_epoch)
        self.data.set_log_pause(c.get("mds_log_pause"))
        return self.data

    async def _report_damaged(self, reason: str) -> None:
        """F5: ask for down:damaged, wait (bounded) for the mon, then respawn as a standby."""
        log.error("metadata damaged; reporting down:damaged", reason=reason)
        self.sm.want_state = states.DAMAGED
        self._wake.set()
        with trio.move_on_after(self.config.get("mds_mon_shutdown_timeout")):
            while self.fsmap.info(self.gid) is not None:
                await trio.sleep(0.05)
        self._respawn("respawning after reporting down:damaged")

    async def _work_standby_replay(self) -> None:
        log.info("replay_start")  # R5: follow the journal every mds_replay_interval
        data = await self._rank_data()
        await data.load()
        while True:
            await trio.sleep(self.config.get("mds_replay_interval"))
            await data.follow()

    async def _work_replay(self) -> None:
        log.info("replay_start")
        t0 = trio.current_time()
        following = self.data is not None and self.data.ns is not None
        data = await self._rank_data()
        if following:  # R6: the final pass of a promoted follower
            events = await data.follow()
        else:
            events = await data.load()
        log.info("Finished replaying journal", events=events, inodes=len(data.ns),
                 seconds=round(trio.current_time() - t0, 3))
        log.info("making mds journal writeable")

    async def _work_creating(self) -> None:
        log.info("boot_create")
        data = await self._rank_data()
        await data.create()

    async def _work_starting(self) -> None:
        data = await self._rank_data()
        await data.load()
        log.info("starting_done")

    async def _work_reconnect(self) -> None:
        """C1/C2: wait for every replayed session to reconnect, up to mds_reconnect_timeout
        (extended while a missing client was seen recently); then evict the missing."""
        log.info("reconnect_start")
        smap, now = self.sessionmap, trio.current_time()
        smap.load(self.data.store.sessions if self.data else {}, now)
        for s in smap.start_reconnect(now, set(self.osdmap.blocklist)):
            log.info("killing session of blocklisted client", client=s.client, addr=s.addr)
            await self._end_session(s, "evicted", journal=True)
        timeout = self.config.get("mds_reconnect_timeout")
        tick = min(self.config.get("mds_tick_interval"), timeout / 4 or 0.05)
        if not smap.reconnect_done():
            log.info(f"reconnect_clients -- {len(smap.gather)} sessions")
        while not smap.reconnect_done():
            with trio.move_on_after(tick):
                await self._reconnect_changed.wait()
            self._reconnect_changed = trio.Event()
            now = trio.current_time()
            if self.beacon.laggy(now):
                continue  # B5: no reconnect timeout while we are laggy ourselves
            verdict, evicts = smap.reconnect_tick(now, timeout)
            if verdict == "extend":
                log.info("extending reconnect interval")
            for e in evicts:
                await self.evict(e.session, e.message,
                                 self.config.get("mds_session_blocklist_on_timeout"))
        smap.reconnect_start = None
        log.info("reconnect_done")

    async def _work_resolve(self) -> None:
        """R3 step 3: ask every other rank, once it has replayed, which of our subtrees it
        imported; finish those exports (we died between its EImport and our EExport)."""
        log.info("resolve_start")
        asked: set[int] = set()
        while True:
            fs = self.fsmap.fs_of(self.gid)
            others = sorted(r for r in fs.in_ if r != self.sm.rank) if fs else []
            for rank in others:
                info = fs.holder(rank)
                if rank in asked or info is None or info.state not in REPLAYED:
                    continue
                reply = await self._peer_call(rank, "resolve", {"from": self.sm.rank})
                if reply is not None and reply.rc == 0:
                    for ino, export_id in reply.result.get("imports", []):
                        if not await self._data_io(
                                self.data.forget_exported(ino, rank, export_id)):
                            return
                    asked.add(rank)
            if all(r in asked for r in others):
                break
            epoch = self.fsmap.epoch
            with trio.move_on_after(0.2):
                while self.fsmap.epoch == epoch:
                    await self._map_seen.wait()

    async def _work_rejoin(self) -> None:
        log.info("rejoin_start")
        log.info("rejoin_done")

    async def _work_clientreplay(self) -> None:
        """R3 step 6: re-execute, in order, the requests clients had unsafe replies for."""
        log.info("clientreplay_start", requests=len(self.replay_queue))
        while self.replay_queue:
            conn, client, req = self.replay_queue.pop(0)
            await self._client_request(conn, client, req)
        log.info("clientreplay_done")

    async def _work_active(self) -> None:
        log.info("active_start")
        log.info("recovery_done -- successful recovery!")
        await self._session_upkeep()

    async def _work_stopping(self) -> None:
        """X4: hand every subtree to rank 0, then write everything back and trim."""
        log.info("stopping_start")
        data = self.data
        if data is not None and data.ns is not None:
            for root in sorted(data.ns.auth_roots - {ROOT_INO}):
                while root in data.ns.auth_roots:
                    if not await self.export_subtree(root, 0):
                        await trio.sleep(0.2)
            await data.flush_all()
        log.info("stopping_done")



def admin_socket_listener(path: str):
    """A listener on the unix socket `path` (replacing a stale file), or None: no path, or
    the directory cannot be written (logged; the daemon runs without one)."""
    if not path:
        return None
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            log.warning("admin socket in use by another process; none for us", path=path)
            return None
        except OSError:
            pass  # stale: the daemon that made it is gone
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock.bind(path)
        sock.listen(16)
    except OSError as e:
        sock.close()
        log.info("no admin socket", path=path, error=e.strerror or str(e))
        return None
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


def _valid_pin(value) -> bool:
    try:
        return int(value) >= -1
    except (TypeError, ValueError):
        return False
