"""The MDS daemon's trio shell: the mon session, beacons, map handling and the work of each
state. Decisions are in `mds.rank` (state machine) and `mds.beacon` (lagginess).

The work of each rank state is a method `_work_<state>`; in this release it is short (there is
no journal yet), but every state is entered, reported to the monitor and logged with Ceph's
wording, so the journal, sessions and reconnect slot in here.
"""

from __future__ import annotations

import functools
import os
import random
import socket
import sys
from collections.abc import Callable

import structlog
import trio

from common import log as logsetup
from common import messages as m
from common import states
from common.config import Config
from common.fsmap import FSMap
from common.net import ConnectionClosed, HandshakeError, ProtocolError, connect, parse_hostport
from mds.beacon import BeaconState
from mds.rank import Log, RankStateMachine, RequestState, Respawn, Start

log = structlog.get_logger("mds")

VERSION = "mdsemu 0.1.0"


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
        self.connected = trio.Event()
        self.respawn_reason: str | None = None

    @property
    def state(self) -> int:
        return self.sm.state if self.sm else states.BOOT

    # -- life cycle
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled, or until the map removes us (see `_respawn`)."""
        host = parse_hostport(self.config.get("public_addr") or "127.0.0.1", 0)[0]
        listener = (await trio.open_tcp_listeners(0, host=host))[0]
        port = listener.socket.getsockname()[1]
        self.addr = f"{host}:{port}/{self.nonce}"
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            nursery.start_soon(trio.serve_listeners, self._client_conn, [listener])
            nursery.start_soon(self._mon_session_loop)
            task_status.started(self)

    async def _client_conn(self, stream) -> None:
        # Client sessions arrive with the filesystem client; until then, say so and close.
        await stream.aclose()

    def _respawn(self, reason: str) -> None:
        """Re-execute (the process) or, with no hook (in-process), end `run` with the reason
        in `respawn_reason` so that a supervisor starts a fresh daemon with a new gid."""
        if self._stopping:
            # B10: the map that drops us answers our down:dne beacon (the mon publishes it
            # before the ack); we are leaving, so this is the end, not a reason to respawn.
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
                                         max_size=self.config.get("ms_max_message_size"))
            except (OSError, HandshakeError) as e:
                log.warning("cannot reach the monitor, retrying", mon=f"{host}:{port}",
                            error=str(e), retry_in=backoff)
                await trio.sleep(backoff)
                backoff = min(backoff * 2, 5 * self.config.get("mon_client_hunt_interval") + 2)
                continue
            backoff = self.config.get("mon_client_hunt_interval")
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
                    self.connected.set()
                    await self._guard(functools.partial(self._receive_loop, conn),
                                      nursery.cancel_scope)
            finally:
                self.conn = None
                self.connected = trio.Event()
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
                self._on_fsmap(FSMap.from_wire(msg.fsmap))
            elif isinstance(msg, m.ConfigMsg):
                changed = self.config.set_runtime(msg.values)
                if changed:
                    log.info("config changed", options=changed)
                    self._wake.set()  # e.g. mds_join_fs: the mon hears of it now (S3)
            elif isinstance(msg, m.OSDMapMsg):
                pass  # fencing waits on the OSDMap once there is a journal (F3)
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
        if self.beacon.acked(ack.seq, trio.current_time()):
            log.info(" MDS is no longer laggy")

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
            await step()
            if self.sm.state == state and self.fsmap is not None:
                self._act(self.sm.step_done(state, self.fsmap))

    async def _work_standby_replay(self) -> None:
        log.info("replay_start")  # R5: follow the journal every mds_replay_interval
        await trio.sleep_forever()

    async def _work_replay(self) -> None:
        log.info("replay_start")
        await trio.sleep(0)
        log.info("Finished replaying journal")
        log.info("making mds journal writeable")

    async def _work_creating(self) -> None:
        log.info("boot_create")

    async def _work_starting(self) -> None:
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
        await trio.sleep(0)
        log.info("stopping_done")

