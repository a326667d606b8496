"""The MDS daemon's trio shell: maps and the work of each state, with its parts composed.
Decisions are in sans-IO cores: `mds.rank` (state machine), `mds.beacon` (lagginess),
`mds.lifecycle` (respawn, backoffs, B5 holds, work failures), `mds.serving`, `mds.pins`.

The work of each rank state is found in a table keyed by state (`_work_table`): creating
writes a new journal, replay waits for the fence (F3) and replays the journal from the osd,
standby-replay follows it, active serves clients (`mds.rankdata`). Every state is reported to
the monitor and logged with Ceph's wording. The daemon is composed of parts: `MonSession`
(`mds.monsession`: the monitors), `RankRuntime` (`mds.runtime`: created when the daemon takes
a rank; its data, client sessions and replay), `ClientServer` (`mds.clientserver`: clients
and requests) and `PeerLink` (`mds.peerlink`: the other ranks); each reports a fatal condition
through `MDSDaemon.fatal`.
"""

from __future__ import annotations

import os
import random
import socket
import threading
from collections.abc import Callable

import structlog
import trio

from common import log as logsetup
from common import messages as m
from common import states
from common.auth import hello_key
from common.config import Config
from common.mdsmap import MDSMap
from common.net import (
    parse_hostport,
    use_auth,
    use_messenger,
)
from common.osdmap import OSDMap
from mds import admin, lifecycle, ophealth, process
from mds.clientserver import ClientServer
from mds.monsession import MonSession
from mds.peerlink import PeerLink
from mds.rank import Log, RankStateMachine, RequestState, Respawn, Start, own_fs
from mds.rankdata import Damaged, Fenced, RankData
from mds.runtime import RankRuntime, lazy_flush_interval
from mds.sessionmap import SessionMap
from osd.objecter import OSDError

log = structlog.get_logger("mds")

VERSION = "mdsemu 0.1.0"
RESPAWN_SETTLE = 0.05  # seconds other tasks may run once a respawn is decided


class MDSDaemon:
    def __init__(self, config: Config, respawn: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.auth = None  # cephx: a cephx_net.CephxClient (from `run`)
        self.name = config.entity_id
        self.respawn_hook = respawn
        self.gid = 0
        self.nonce = random.randint(1, 2**31 - 1)
        self.addr = ""
        self.sm: RankStateMachine | None = None
        self.mdsmap: MDSMap | None = None  # the newest map acted on (what `mdsmap` gets, B7)
        self.stopping = False
        self._acked_dne: trio.Event | None = None
        self.nursery: trio.Nursery | None = None
        self.respawn_reason: str | None = None
        self.osdmap = OSDMap(epoch=0)
        self.osdmap_changed = trio.Event()
        self.ios = ophealth.InFlight()  # osd ops in flight (MDS_SLOW_METADATA_IO)
        self.requests_in_flight = ophealth.InFlight()  # client requests (MDS_SLOW_REQUEST)
        self._no_sessions = SessionMap()  # what a daemon without a rank serves: nothing
        self.map_seen = trio.Event()  # set (and replaced) on every map
        self.started = 0.0
        self.fsid = ""
        self.runtime: RankRuntime | None = None  # once we take a rank: its data, sessions
        self.mon = MonSession(self)  # the monitors: beacons, maps
        self.clients = ClientServer(self)  # sessions and requests
        self.peers = PeerLink(self)  # the other ranks: subtrees, cross-rank operations

    @property
    def fs(self) -> MDSMap | None:
        """Our file system's map; None while a standby (its map is a null one) or booting."""
        return own_fs(self.mdsmap)

    @property
    def data(self) -> RankData | None:
        """The rank's data, once its work has loaded (or created) it."""
        return self.runtime.data if self.runtime is not None else None

    @property
    def sessionmap(self) -> SessionMap:
        """The rank's client sessions (none without a rank)."""
        return self.runtime.sessionmap if self.runtime is not None else self._no_sessions

    @property
    def state(self) -> int:
        return self.sm.state if self.sm else states.BOOT

    # -- life cycle
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled, or until the map removes us (see `_respawn`)."""
        self.started = trio.current_time()
        use_messenger(self.config, f"mds.{self.name}")
        self.auth = hello_key(self.config)  # cephx: one for its mon session, osd and peers
        use_auth(self.auth)
        host = parse_hostport(self.config.get("public_addr") or "127.0.0.1", 0)[0]
        listener = (await trio.open_tcp_listeners(0, host=host))[0]
        port = listener.socket.getsockname()[1]
        self.addr = f"{host}:{port}/{self.nonce}"
        if self.respawn_hook is not None and threading.current_thread() is threading.main_thread():
            process.watch_termination_signals()
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            nursery.start_soon(trio.serve_listeners, self.clients.serve_conn, [listener])
            asok = process.admin_socket_listener(self.config.get("admin_socket"))
            if asok is not None:
                nursery.start_soon(trio.serve_listeners, self.clients.serve_admin, [asok])
            nursery.start_soon(self.mon.run)
            task_status.started(self)

    # -- respawn and shutdown
    def fatal(self, reason: str) -> None:
        """The one way to report a fatal condition (every part of the daemon uses it):
        re-execute (the process) or, with no hook (in-process), end `run` with the reason
        in `respawn_reason` so that a supervisor starts a fresh daemon with a new gid."""
        verdict = lifecycle.on_removed(self.stopping, process.signalled(),
                                       self.respawn_reason is not None)
        if verdict == lifecycle.END:  # B10: the map that drops us answers our down:dne
            log.info("removed from the map while shutting down; not respawning")
            if self._acked_dne is not None:
                self._acked_dne.set()
            return
        if verdict == lifecycle.IGNORE:
            return  # already on the way out
        log.warning(reason)
        self.respawn_reason = reason
        if self.nursery is None:
            if self.respawn_hook is not None:
                self.respawn_hook(reason)
            return
        self.nursery.start_soon(self._respawn_after_settling, reason)

    async def data_io(self, coro) -> bool:
        """Run a metadata write outside a state's work; a fenced or damaged rank respawns."""
        try:
            await coro
            return True
        except (Fenced, Damaged, OSDError) as e:
            self.fatal(str(e))
            return False

    def run_admin(self, args: list[str], fmt: str, now: float) -> tuple[int, str, str]:
        """A command (`tell`, the admin socket): the answer, then its effects."""
        reply, effects = admin.run(args, fmt, self, now)
        for e in effects:
            if isinstance(e, admin.Evict):
                self.nursery.start_soon(self.clients.evict, e.session, e.message, e.blocklist)
            elif isinstance(e, admin.ConfigChanged):
                self.config_changed(e.names)
        return reply

    async def _respawn_after_settling(self, reason: str) -> None:
        """Ceph's journal and objecter run in threads of their own: a write already released
        (e.g. by clearing mds_log_pause) goes out while the dispatcher decides to respawn,
        and a fenced instance's write is refused by the osd (F4). Let the other tasks run
        until they block, briefly, then respawn."""
        import trio.testing  # here, not at the top: it imports pytest (~8 MB in every MDS)

        with trio.move_on_after(RESPAWN_SETTLE):
            await trio.testing.wait_all_tasks_blocked()
        if self.respawn_hook is not None and not (self.stopping or process.signalled()):
            self.respawn_hook(reason)
        self.nursery.cancel_scope.cancel()

    async def shutdown(self) -> None:
        """B10: tell the monitor we are going (down:dne) and wait up to 1 s for the ack."""
        self.stopping = True
        if self.mon.conn is None or self.gid == 0 or self.state == states.BOOT:
            return
        self.sm.want_state = states.DNE
        with trio.move_on_after(1.0):
            self._acked_dne = trio.Event()
            await self.mon.send_beacon()
            await self._acked_dne.wait()
            log.info("mon acknowledged our shutdown")

    # -- what the mon session asks of us (mds.monsession)
    def connected(self, global_id: int, fsid: str, mon: str) -> None:
        """A monitor session is open: the first one gives us our gid (kept on reconnects)."""
        self.fsid = fsid
        if self.gid == 0:
            self.gid = global_id
            self.sm = RankStateMachine(self.gid)
            logsetup.bind(gid=self.gid)
            log.info("mds starting", gid=self.gid, addr=self.addr, mon=mon)
        else:
            log.info("reconnected to the monitor", mon=mon)

    def removed(self) -> None:
        """The monitor acknowledged our down:dne (B10)."""
        if self._acked_dne is not None:
            self._acked_dne.set()

    def on_osdmap(self, osdmap: OSDMap) -> None:
        if osdmap.epoch > self.osdmap.epoch:
            self.osdmap = osdmap
            self.clients.apply_blocklist()
            self.osdmap_changed.set()
            self.osdmap_changed = trio.Event()

    def beacon_msg(self, seq: int) -> m.Beacon:
        want = lifecycle.beacon_state(self.sm.want_state if self.sm else states.BOOT,
                                      self.stopping)
        c = self.config
        return m.Beacon(
            global_id=self.gid, name=self.name, state=want, seq=seq,
            version=self.sm.effective_epoch if self.sm else 0, addr=self.addr,
            fs=c.get("mds_join_fs"),
            health=self._health_metrics(),
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

    def _health_metrics(self) -> list[dict]:
        """What we report in the beacon while we hold a rank (Ceph's Beacon::notify_health,
        called on every tick of a rank: a replay stalled on the osd shows slow IOs too)."""
        if self.data is None:
            return []
        c = self.config
        return ophealth.metrics(
            trio.current_time(), requests=self.requests_in_flight, ios=self.ios,
            op_complaint=c.get("mds_op_complaint_time"),
            io_complaint=c.get("osd_op_complaint_time"),
            damaged=bool(self.data.store.damaged),
            trim=(self.data.health(c.get("mds_log_warn_factor"))
                  if self.state == states.ACTIVE else []),
            laggy_clients=[s.num for s in self.sessionmap.laggy_clients])

    def config_changed(self, changed: list[str]) -> None:
        """Act on options that changed at run time (mon config db or `tell ... config set`).
        Like Ceph's config observers, this runs even while laggy (B5 defers only messages)."""
        if not changed:
            return
        log.info("config changed", options=changed)
        if "mds_log_pause" in changed and self.data is not None:
            self.data.set_log_pause(self.config.get("mds_log_pause"))
        if "mdsemu_log_flush_interval" in changed and self.data is not None:
            self.data.mdlog.flush_interval = lazy_flush_interval(self.config, self.fs)
        if "mdsemu_log_max_unflushed" in changed and self.data is not None:
            self.data.mdlog.max_unflushed = self.config.get("mdsemu_log_max_unflushed")
        self.mon.wake()  # e.g. mds_join_fs: the mon hears of it now (S3)

    # -- maps and the work of each state
    def on_mdsmap(self, mdsmap: MDSMap) -> None:
        """A map from our `mdsmap` subscription: our file system's, or a standby's null map
        (Ceph's MDSDaemon::handle_mds_map)."""
        if self.sm is None or self.respawn_reason is not None:
            return
        actions = self.sm.handle_map(mdsmap)
        if mdsmap.epoch >= self.sm.epoch:
            self.mdsmap = mdsmap
            self.map_seen.set()
            self.map_seen = trio.Event()
            if self.data is not None:
                self.data.mdlog.flush_interval = lazy_flush_interval(self.config, self.fs)
        if actions:
            log.info(f"Updating MDS map to version {mdsmap.epoch} from mon")
        self._act(actions)

    def _act(self, actions) -> None:
        for action in actions:
            if isinstance(action, Log):
                log.info(action.message)
            elif isinstance(action, RequestState):
                log.info("requesting state", state=states.name(action.state))
                self.mon.wake()
            elif isinstance(action, Start):
                if self.runtime is None:  # we take a rank (or follow one, standby-replay)
                    self.runtime = RankRuntime(self)
                self.runtime.enter(action.state, self._work)  # the last state's tasks end
            elif isinstance(action, Respawn):
                self.fatal(action.reason)

    async def _work(self, state: int) -> None:
        """The work of `state`, in the state's nursery (RankRuntime.enter), retried as the
        work-failure policy says; once done, what the state machine asks for next."""
        step = self._work_table()[state]
        delays = lifecycle.work_backoff(self.config.get("mon_client_hunt_interval")).delays()
        while True:
            try:
                await step()
                break
            except Fenced as e:
                failure = lifecycle.work_failure("fenced", str(e))
            except Damaged as e:
                failure = lifecycle.work_failure("damaged", str(e))
            except OSDError as e:
                failure = lifecycle.work_failure("osd", str(e))
            if failure.action == lifecycle.RESPAWN:
                self.fatal(failure.reason)
                return
            if failure.action == lifecycle.DAMAGED:
                await self._report_damaged(failure.reason)
                return
            # The osd is down or restarting: start the step over with a new session
            # (its address comes from the OSDMap), as Ceph's objecter waits.
            delay = next(delays)
            log.warning("metadata pool unreachable, retrying", error=failure.reason,
                        state=states.name(state), retry_in=delay)
            self.runtime.drop_osd()
            await trio.sleep(delay)
        if self.sm.state == state and self.mdsmap is not None:
            self._act(self.sm.step_done(state, self.mdsmap,
                                        replay_queued=bool(self.clients.replay_queue)))

    async def _report_damaged(self, reason: str) -> None:
        """F5: ask for down:damaged, wait (bounded) for the mon, then respawn as a standby."""
        log.error("metadata damaged; reporting down:damaged", reason=reason)
        self.sm.want_state = states.DAMAGED
        self.mon.wake()
        with trio.move_on_after(self.config.get("mds_mon_shutdown_timeout")):
            while self.gid in self.mdsmap.mds_info:
                await trio.sleep(0.05)
        self.fatal("respawning after reporting down:damaged")

    def _work_table(self) -> dict:
        """The work of each state the state machine starts (mds.rank.WORK_STATES)."""
        return {states.STANDBY_REPLAY: self.runtime.work_standby_replay,
                states.REPLAY: self.runtime.work_replay,
                states.CREATING: self.runtime.work_creating,
                states.STARTING: self.runtime.work_starting,
                states.RESOLVE: self.peers.work_resolve,
                states.RECONNECT: self.clients.work_reconnect,
                states.REJOIN: self._work_rejoin,
                states.CLIENTREPLAY: self.clients.work_clientreplay,
                states.ACTIVE: self._work_active,
                states.STOPPING: self.peers.work_stopping}

    async def _work_rejoin(self) -> None:
        log.info("rejoin_start")
        log.info("rejoin_done")

    async def _work_active(self) -> None:
        log.info("active_start")
        log.info("recovery_done -- successful recovery!")
        await self.clients.session_upkeep()
