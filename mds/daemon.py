"""The MDS daemon's trio shell: the mon session, beacons, map handling and the work of each
state. Decisions are in `mds.rank` (state machine) and `mds.beacon` (lagginess).

The work of each rank state is a method `_work_<state>`: creating writes a new journal, replay
waits for the fence (F3) and replays the journal from the osd, standby-replay follows it, active
serves clients (`mds.rankdata`). Every state is reported to the monitor and logged with Ceph's
wording.
"""

from __future__ import annotations

import errno
import functools
import os
import random
import signal
import socket
import sys
import threading
from collections.abc import Callable

import structlog
import trio

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
from mds import admin
from mds.admin import Session
from mds.beacon import BeaconState
from mds.rank import Log, RankStateMachine, RequestState, Respawn, Start
from mds.rankdata import Damaged, Fenced, RankData
from osd.client import OSDClient, OSDError

log = structlog.get_logger("mds")

VERSION = "mdsemu 0.1.0"


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
        self.osd: OSDClient | None = None
        self._osd_scope: trio.CancelScope | None = None
        self._deferred_map: FSMap | None = None
        self.data: RankData | None = None
        self.sessions: dict[str, Session] = {}
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
            nursery.start_soon(self._mon_session_loop)
            task_status.started(self)

    async def _client_conn(self, stream) -> None:
        """A filesystem client: hello, then requests, each answered once it is safe."""
        conn = Connection(stream, self.config.get("ms_max_message_size"))
        try:
            hello = await conn.recv()
            if not isinstance(hello, m.Hello) or not hello.entity.startswith("client."):
                raise ProtocolError("expected a hello from a client")
            await conn.send(m.HelloOk(global_id=0, fsid="", mon=f"mds.{self.name}"))
            session = Session(hello.entity, conn.peer, trio.current_time())
            key = f"{hello.entity}@{conn.peer}"
            try:
                async with trio.open_nursery() as nursery:
                    await self._client_requests(conn, session, nursery)
            finally:
                self.sessions.pop(key, None)
        except ProtocolError as e:
            log.warning("closing client connection: bad input", peer=conn.peer, reason=str(e))
        except ConnectionClosed:
            pass
        finally:
            await conn.aclose()

    async def _client_requests(self, conn: Connection, session: Session, nursery) -> None:
        try:
            while True:
                req = await conn.recv()
                if isinstance(req, m.Command):  # `mdsemu tell mds.<who> ...`
                    rc, outs, outb = admin.run(req.args, req.format, self, trio.current_time())
                    await conn.send(m.CommandReply(tid=req.tid, rc=rc, outs=outs, outb=outb))
                    continue
                if not isinstance(req, m.ClientRequest):
                    raise ProtocolError(f"unexpected {req.TYPE} from a client")
                session.requests += 1
                self.sessions.setdefault(f"{session.entity}@{conn.peer}", session)
                nursery.start_soon(self._client_request, conn, session.entity, req)
        except ProtocolError as e:
            log.warning("closing client connection: bad input", peer=conn.peer, reason=str(e))
        except ConnectionClosed:
            pass
        nursery.cancel_scope.cancel()

    async def _client_request(self, conn: Connection, entity: str, req) -> None:
        data = self.data
        if self.state not in (states.ACTIVE, states.CLIENTREPLAY) or data is None:
            reply = m.ClientReply(tid=req.tid, rc=-errno.EAGAIN, error="not active")
        else:
            try:
                rc, result, error = await data.handle(f"{entity}:{req.tid}", req.op, req.args)
            except (Fenced, Damaged, OSDError) as e:
                self._respawn(str(e))
                return
            reply = m.ClientReply(tid=req.tid, rc=rc, result=result, error=error)
        try:
            await conn.send(reply)
        except ConnectionClosed:
            pass

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
        log.warning(reason)
        if self.respawn_hook is not None:
            self.respawn_hook(reason)
        if self.respawn_reason is None:
            self.respawn_reason = reason
        if self.nursery is not None:
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
                       clients=len({s.entity for s in self.sessions.values()
                                    if s.entity != "client.admin"})),
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
                changed = self.config.set_runtime(msg.values)
                if changed:
                    log.info("config changed", options=changed)
                    self._wake.set()  # e.g. mds_join_fs: the mon hears of it now (S3)
            elif isinstance(msg, m.OSDMapMsg):
                osdmap = OSDMap.from_wire(msg.osdmap)
                if osdmap.epoch > self.osdmap.epoch:
                    self.osdmap = osdmap
                    self._osdmap_changed.set()
                    self._osdmap_changed = trio.Event()
            elif isinstance(msg, m.Error):
                raise ProtocolError(f"monitor said: {msg.message}")

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
        if self._deferred_map is not None and not self.beacon.laggy(now):
            fsmap, self._deferred_map = self._deferred_map, None
            self._on_fsmap(fsmap)

    # -- maps and the work of each state
    def _on_fsmap(self, fsmap: FSMap) -> None:
        if self.sm is None:
            return
        actions = self.sm.handle_map(fsmap)
        if fsmap.epoch >= self.sm.epoch:
            self.fsmap = fsmap
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
                self._act(self.sm.step_done(state, self.fsmap))

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

    def _drop_osd(self) -> None:
        """Forget the osd session and what was loaded through it; the next step reloads."""
        if self._osd_scope is not None:
            self._osd_scope.cancel()
        self._osd_scope = None
        self.osd = None
        self.data = None

    async def _rank_data(self) -> RankData:
        """Open (once) the osd session and this rank's metadata, after the fence (F3)."""
        fs = self.fsmap.fs_of(self.gid)
        await self._wait_osdmap(fs.last_failure_osd_epoch)
        if self.data is not None:
            self.data.store.min_epoch = max(self.data.store.min_epoch, fs.last_failure_osd_epoch)
            return self.data
        if self.osd is None:
            addr = self.osdmap.osd_addrs[min(self.osdmap.osd_addrs)]
            self.osd = await self.nursery.start(self._osd_session, addr)
        c = self.config
        self.data = RankData(self.osd, fs.metadata_pool, self.sm.rank,
                             c.get("mds_log_events_per_segment"), c.get("mds_log_max_segments"),
                             min_epoch=fs.last_failure_osd_epoch)
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
        log.info("reconnect_start")
        log.info("reconnect_done")

    async def _work_rejoin(self) -> None:
        log.info("rejoin_start")
        log.info("rejoin_done")

    async def _work_clientreplay(self) -> None:
        log.info("clientreplay_start")
        log.info("clientreplay_done")

    async def _work_active(self) -> None:
        log.info("active_start")
        log.info("recovery_done -- successful recovery!")
        await trio.sleep_forever()

    async def _work_stopping(self) -> None:
        log.info("stopping_start")  # X4: hand subtrees over, flush and trim the journal
        if self.data is not None and self.data.ns is not None:
            await self.data.flush_all()
        log.info("stopping_done")

