"""An MDS daemon for virtual-time tests, made of the daemon's own sans-IO cores.

Only the trio shell is replaced; every decision is the real one: the rank state machine
(`mds.rank`: R1-R7, B7-B9, X4), beacon seqs, acks and lagginess (`mds.beacon`: B4, B5), the
life decisions (`mds.lifecycle`: null maps, removal while stopping, down:dne, the B5 map hold,
the work-failure policy F4), who may open a session and whether a reconnect is accepted
(`mds.serving`: C1, C2), up:resolve's who-to-ask and when-done (`mds.pins`) and the rank's
client sessions with their reconnect window (`mds.sessionmap`: C1-C3). Like the daemon, it is
subscribed to `mdsmap` (B7): it gets its file system's MDSMap, or a standby's null map.

The work of a state finishes at once, except: a state in `hold` (until `Cluster.release`),
up:resolve (once every other rank has replayed and answered), up:reconnect (once every session
the rank replayed has reconnected, or the missing ones are evicted after
`mds_reconnect_timeout`, looked at every `serving.reconnect_tick`). The cluster (`monsim`)
delivers maps and acks and calls `on_map`, `on_ack` and `work_tick`; the daemon calls back
`Cluster.respawn`, `Cluster.request` (B3: a beacon now), `Cluster.journal` and `Cluster.evict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from common import states
from common.mdsmap import MDSMap
from common.messages import Beacon, BeaconAck
from mds import lifecycle, pins, serving
from mds.beacon import BeaconState
from mds.rank import Log, RankStateMachine, RequestState, Respawn, Start, own_fs
from mds.sessionmap import SessionMap

LEGACY = ("standby_for_rank", "standby_for_name", "standby_for_fscid", "standby_replay")


@dataclass
class SimClient:
    """A client with a session on one rank; a dead one never reconnects."""

    name: str  # "client.<id>"
    addr: str  # "ip:0/nonce", what a blocklist entry names
    fs: str
    rank: int
    alive: bool = True


@dataclass
class SimMDS:
    name: str
    fs: str = ""  # mds_join_fs
    legacy: dict = field(default_factory=dict)  # standby_for_rank/name/fscid, standby_replay
    hold: set[int] = field(default_factory=set)  # states whose work never finishes
    health: list = field(default_factory=list)
    gid: int = 0
    addr: str = ""
    alive: bool = True
    paused: bool = False
    stopping: bool = False  # B10: shutting down, beacons ask for down:dne
    respawns: int = 0
    respawn_reasons: list[str] = field(default_factory=list)
    last_sent: float = float("-inf")
    wake_at: float = math.inf  # the next tick of the running work (up:reconnect)
    history: list[str] = field(default_factory=list)  # states seen, "up:boot" on each start
    log: list[str] = field(default_factory=list)  # the state machine's log lines
    fscid: int = -1  # the file system of the role the daemon believes it has
    # per process (reset by `boot`)
    sm: RankStateMachine | None = None
    beacon: BeaconState | None = None
    sessions: SessionMap = field(default_factory=SessionMap)
    mdsmap: MDSMap | None = None  # the last map acted on
    deferred: MDSMap | None = None  # B5: a map held while laggy
    working: int | None = None  # the state whose work runs
    asked: set[int] = field(default_factory=set)  # up:resolve: ranks that answered

    def boot(self, gid: int, addr: str, grace: float) -> None:
        """A new process (first start or respawn): new gid, fresh cores, no sessions."""
        self.gid, self.addr = gid, addr
        self.sm = RankStateMachine(gid)
        self.beacon = BeaconState(grace)
        self.sessions = SessionMap()
        self.mdsmap = self.deferred = None
        self.working, self.wake_at, self.asked = None, math.inf, set()
        self.stopping = False
        self.fscid = -1
        self.history.append("up:boot")

    # -- what the daemon believes
    @property
    def state(self) -> int:
        return self.sm.state

    @property
    def rank(self) -> int:
        return self.sm.rank

    @property
    def want(self) -> int:
        return lifecycle.beacon_state(self.sm.want_state, self.stopping)

    @property
    def seq(self) -> int:
        return self.beacon.last_seq

    @property
    def version(self) -> int:
        return self.sm.effective_epoch

    def beacon_msg(self, seq: int) -> Beacon:
        legacy = {k: v for k, v in self.legacy.items() if k in LEGACY}
        return Beacon(global_id=self.gid, name=self.name, state=self.want, seq=seq,
                      version=self.version, addr=self.addr, fs=self.fs,
                      health=list(self.health), **legacy)

    # -- what the monitor sends
    def on_map(self, mdsmap: MDSMap, cluster, now: float) -> None:
        if lifecycle.hold_map(self.state, self.beacon.laggy(now)):
            self.deferred = mdsmap  # B5: the newest map waits for an ack
            return
        self._apply(mdsmap, cluster, now)

    def on_ack(self, ack: BeaconAck, cluster, now: float) -> None:
        if ack.null_map:
            if lifecycle.on_null_map_ack(self.stopping) == lifecycle.RESPAWN:
                self.fatal(lifecycle.REMOVED, cluster)
            return
        self.beacon.acked(ack.seq, now)
        if self.deferred is not None and not self.beacon.laggy(now):
            mdsmap, self.deferred = self.deferred, None
            self._apply(mdsmap, cluster, now)

    def _apply(self, mdsmap: MDSMap, cluster, now: float) -> None:
        before, gid = self.state, self.gid
        actions = self.sm.handle_map(mdsmap)
        if mdsmap.epoch >= self.sm.epoch:
            self.mdsmap = mdsmap
        if self.state != before:
            self.history.append(states.name(self.state))
        if self.gid in mdsmap.mds_info:  # our fs's map, or our own standby null map
            self.fscid = mdsmap.fscid
        self._act(actions, cluster, now)
        if self.gid == gid and self.working is not None:
            self._progress(cluster, now)  # the new map may let the work finish (resolve)

    def _act(self, actions, cluster, now: float) -> None:
        for action in actions:
            if isinstance(action, Log):
                self.log.append(action.message)
            elif isinstance(action, RequestState):
                cluster.request(self)  # B3
            elif isinstance(action, Start):
                self._start(action.state, cluster, now)
            elif isinstance(action, Respawn):
                self.fatal(action.reason, cluster)
                return

    def fatal(self, reason: str, cluster) -> None:
        """MDSDaemon.fatal: respawn, unless we are leaving anyway (B8/B10)."""
        if lifecycle.on_removed(self.stopping, False, False) == lifecycle.RESPAWN:
            self.respawn_reasons.append(reason)
            cluster.respawn(self)

    # -- the work of each state
    def _start(self, state: int, cluster, now: float) -> None:
        self.working, self.wake_at, self.asked = state, math.inf, set()
        fs = own_fs(self.mdsmap)
        if state in (states.REPLAY, states.STANDBY_REPLAY):  # the rank's journal: sessions
            self.sessions.load(cluster.journal_of(fs.fscid, self.rank), now)
        elif state == states.CREATING:
            cluster.journal_of(fs.fscid, self.rank).clear()
        elif state == states.RECONNECT:
            for s in self.sessions.start_reconnect(now, set(cluster.mon.osdmap.blocklist)):
                cluster.journal(self, "close", s.client)
            cluster.clients_reconnect(self, now)
            self.wake_at = now + self._reconnect_tick(cluster)
        elif state == states.STOPPING:
            for s in self.sessions.last_rank_stopping(len(fs.in_)):
                cluster.evict(self, s, "evicting last rank's client")
        self._progress(cluster, now)

    def _reconnect_tick(self, cluster) -> float:
        return serving.reconnect_tick(cluster.opt("mds_tick_interval"),
                                      cluster.opt("mds_reconnect_timeout"))

    def reconnect(self, client: SimClient, now: float) -> str:
        """C1/C2: a client's reconnect: "accept", "deny" or "sessionless"."""
        verdict = serving.reconnect_verdict(
            self.sessions.get(client.name) is not None, self.state,
            self.sessions.reconnect_start is not None, False)
        if verdict == "accept":
            self.sessions.reconnected(client.name, now)
        return verdict

    def work_tick(self, cluster, now: float) -> None:
        """The periodic part of the running work: up:reconnect's window (C2)."""
        self.wake_at = math.inf
        if self.working != states.RECONNECT or self.state in self.hold:
            return
        if not self.beacon.laggy(now):  # B5: no reconnect timeout while laggy
            verdict, evicts = self.sessions.reconnect_tick(now, cluster.opt(
                "mds_reconnect_timeout"))
            if verdict == "extend":
                self.log.append("extending reconnect interval")
            for e in evicts:
                cluster.evict(self, e.session, e.message)
        if self.working == states.RECONNECT:
            self.wake_at = now + self._reconnect_tick(cluster)
            self._progress(cluster, now)

    def _progress(self, cluster, now: float) -> None:
        """Finish the running work if it can finish now (then ask what comes next)."""
        state = self.working
        if state is None or state in self.hold or state != self.state:
            return
        if state == states.STANDBY_REPLAY:
            return  # R5: follows the journal until promoted
        if state == states.ACTIVE:
            self.working = None
            return
        if state == states.RESOLVE:
            fs = own_fs(self.mdsmap)
            if fs is None:
                return  # removed from the map while shutting down (no respawn): nothing to do
            others = {r: (fs.mds_info[fs.up[r]].state if r in fs.up else None)
                      for r in fs.in_ if r != self.rank}
            self.asked |= set(pins.resolve_next(others, self.asked, serving.REPLAYED))
            if not pins.resolve_done(others, self.asked):
                return
        if state == states.RECONNECT and not self.sessions.reconnect_done():
            return
        if state == states.RECONNECT:
            self.sessions.reconnect_start = None
        self.working, self.wake_at = None, math.inf
        self._act(self.sm.step_done(state, self.mdsmap), cluster, now)

    def release(self, cluster, now: float) -> None:
        """The held work may finish now."""
        self.hold = set()
        if self.deferred is None and self.mdsmap is not None:
            self._progress(cluster, now)
