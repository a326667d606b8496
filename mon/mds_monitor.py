"""The monitor's MDS logic, sans-IO (ref §4–§8, §10, §14; Ceph's MDSMonitor).

Inputs are beacons, ticks and commands, each with the time as plain numbers: `now` from a
monotonic clock for intervals, `wall` (seconds since the epoch) for displayed stamps. Every entry
point returns its `Effects`: the reply and what the trio shell must do about what committed
(persist, then publish, then reply).

Proposals are batched as Ceph's PaxosService batches them: a beacon that changes the map
(`prepare_beacon`) is held in the pending proposal, its reply waiting for the commit, which
comes at `propose_due` (`paxos_min_wait` after the first change if nothing was committed for
`paxos_propose_interval`, else `paxos_propose_interval` after the last commit); the shell then
calls `propose_pending`. Commands, the tick and `osd_boot` open a proposal with `propose`, which
commits what is pending with it at once, so failover does not wait for a batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from common import states, summary
from common.config import Config
from common.fsmap import FS_CLUSTER_ID_NONE, FSMap, MDSInfo
from common.health import HealthCheck, fs_health_checks
from common.messages import Beacon
from common.osdmap import OSDMap
from mon import osd_monitor
from mon import rank_filling as rf
from mon.beacon_rules import BeaconRules
from mon.beacon_times import BeaconTimes
from mon.config_monitor import ConfigMonitor
from mon.health_monitor import HealthLog
from mon.proposal import Effects, Proposal, log_cluster

log = structlog.get_logger("mon")

FIRST_GID = 4100
# T0: ticks run back to back after a commit (Ceph's on_active) end when a tick proposes
# nothing; this bound only stops a bug from spinning the monitor.
MAX_TICKS_PER_COMMIT = 50

_NOW = object()  # reply_to of a beacon proposed at once (handle_beacon)


class MDSMonitor:
    def __init__(
        self,
        config: Config,
        fsmap: FSMap | None = None,
        osdmap: OSDMap | None = None,
        next_gid: int = FIRST_GID,
        config_db: dict[str, dict[str, str]] | None = None,
        now: float = 0.0,
    ) -> None:
        self.config = config
        self.fsmap = fsmap or FSMap()
        self.osdmap = osdmap or OSDMap()
        self.next_gid = next_gid
        self.gid_reserved = next_gid  # the stored bound (see _reserve_gids)
        self.configs = ConfigMonitor(config, config_db)
        self.beacons = BeaconTimes(now)
        # gids whose beacon showed they have seen themselves up:active: only those are asked
        # to stop (X2). Committing "active" and, a tick later, "stopping" at once would let
        # the daemon see only the second map (maps are coalesced), go rejoin -> stopping,
        # which is invalid, and respawn; its successor would do the same, forever.
        self.seen_active: set[int] = set()
        self.daemon_health: dict[int, list] = {}
        self.metadata: dict[int, dict] = {}
        self._proposal: Proposal | None = None  # open while a call builds one
        self._effects: Effects | None = None  # what that call returns
        self._pending: Proposal | None = None  # beacons batched between calls
        self.propose_due: float | None = None  # when the shell is to call propose_pending
        self.last_commit = -1e9  # `now` of the last commit (Ceph's paxos last_commit_time)
        self.health_log = HealthLog(self.health_checks())
        self.health_changed = False  # daemon_health or options changed since health_checks
        self.rules = BeaconRules(self)

    # -- options (read on use, so `config set` applies at once)
    def opt(self, name: str):
        return self.config.get(name)

    @property
    def config_db(self) -> dict[str, dict[str, str]]:
        return self.configs.db

    def config_set(self, who: str, name: str, value: str) -> None:
        """`config set`: applied at once, stored and published with the open proposal."""
        effects = self._open()[1]
        self.configs.set(who, name, value)
        effects.config = self.health_changed = True  # health reads options too

    def config_rm(self, who: str, name: str) -> None:
        effects = self._open()[1]
        effects.config = self.configs.rm(who, name) or effects.config
        self.health_changed = self.health_changed or effects.config

    # -- proposals: every entry point opens one, commits it, and returns its Effects
    @contextmanager
    def propose(self, now: float, wall: float) -> Iterator[Effects]:
        """Open a proposal. When the block ends it is committed, with the ticks T0 runs after
        each FSMap commit, into the Effects yielded; if the block raises, nothing of it is
        kept (its pending maps and cluster-log lines are dropped)."""
        if self._proposal is not None:
            raise RuntimeError("a proposal is already open")
        effects = self._effects = Effects()
        try:
            if self._pending is not None:  # what beacons batched goes first, at once
                self._proposal, self._pending, self.propose_due = self._pending, None, None
                self._commit(now, wall)
            self._proposal = Proposal(self.fsmap, self.osdmap)
            yield effects
            self._commit(now, wall)
            for fsmap in effects.fsmaps:  # on_active logs each committed map, at DBG
                effects.clog.append((wall, "DBG", f"fsmap {summary.mds_stat_plain(fsmap)}"))
        finally:
            self._proposal = self._effects = None

    def _open(self) -> tuple[Proposal, Effects]:
        if self._proposal is None or self._effects is None:
            raise RuntimeError("no proposal open (use MDSMonitor.propose)")
        return self._proposal, self._effects

    @property
    def pfs(self) -> FSMap:
        """The pending FSMap of the open proposal, to change (Ceph's pending_fsmap)."""
        return self._open()[0].fsmap

    @property
    def posd(self) -> OSDMap:
        """The pending OSDMap of the open proposal, to change."""
        return self._open()[0].osdmap

    @property
    def view(self) -> FSMap:
        """The newest FSMap: pending if a proposal changed it, else committed."""
        return self._proposal.fs_view if self._proposal is not None else self.fsmap

    @property
    def view_osd(self) -> OSDMap:
        return self._proposal.osd_view if self._proposal is not None else self.osdmap

    def _commit(self, now: float, wall: float) -> None:
        """Commit the proposal being built. Then, as Ceph's PaxosService::_active runs the
        leader's MDSMonitor::on_active -> tick() after every FSMap commit (T0), tick at once,
        and again after each tick that commits an FSMap, until a tick proposes nothing. So a
        replacement after `mds fail`, a new rank after `max_mds` grows or a follower assignment
        does not wait for the next `mon_tick_interval`."""
        fs_committed = self._commit_proposal(now, wall)
        for _ in range(MAX_TICKS_PER_COMMIT):
            if not fs_committed:
                return
            self._proposal = Proposal(self.fsmap, self.osdmap)
            self._tick(now, wall)
            fs_committed = self._commit_proposal(now, wall)
        log.error("ticks after a commit keep proposing; waiting for the periodic tick")

    def _commit_proposal(self, now: float, wall: float) -> bool:
        """Commit one proposal, with the health changes it makes; True if it held an FSMap."""
        proposal, effects = self._open()
        self._proposal = None
        pending_fs, pending_osd = proposal.pending_fsmap, proposal.pending_osdmap
        if pending_fs is not None:
            pending_fs.sanity()
            self.fsmap = pending_fs
            effects.fsmaps.append(pending_fs)
        if pending_osd is not None:
            self.osdmap = effects.osdmap = pending_osd
        effects.clog += proposal.clog_lines
        if proposal.dirty:
            self.last_commit = now
        for reply_to, b, kind in proposal.waiters:  # B4: acked once the map has it
            effects.acks.append((reply_to, self.rules.deferred_reply(b, kind)))
        # Ceph logs health changes as each proposal encodes its checks (log_health); they are
        # computed again only when the map or a daemon's health changed (same lines)
        if pending_fs is not None or self.health_changed:
            self.health_changed = False
            period = self.opt("mon_health_log_update_period")
            for level, message in self.health_log.update(self.health_checks(), now, period):
                log_cluster(level, message)
                effects.clog.append((wall, level, message))
        return pending_fs is not None

    def clog(self, wall: float, level: str, message: str) -> None:
        """Cluster log, published with the open proposal (dropped if it aborts)."""
        self._open()[0].clog(wall, level, message)

    def allocate_gid(self) -> int:
        gid = self.next_gid
        self.next_gid += 1
        self._reserve_gids()
        return gid

    def note_gid(self, gid: int) -> None:
        self.next_gid = max(self.next_gid, gid + 1)
        self._reserve_gids()

    def _reserve_gids(self) -> None:
        """As Ceph's AuthMonitor preallocates global ids: the store keeps a bound above every
        gid handed out (`gid_reserved`, where a restarted monitor starts), moved on by
        mon_globalid_prealloc at a time, so a session costs no write of its own."""
        if self.next_gid > self.gid_reserved:
            self.gid_reserved = self.next_gid + self.opt("mon_globalid_prealloc")

    def session_gid(self, entity: str, global_id: int) -> int:
        """The gid of a new session (given at `hello`): an MDS reconnecting with the gid of an
        earlier session keeps it, so a restarted mon sees the same daemons; anyone else gets
        a new one. The shell persists `gid_reserved`, if it moved, before it answers."""
        if global_id > 0 and entity.startswith("mds."):
            self.note_gid(global_id)
            return global_id
        return self.allocate_gid()

    # -- fencing (F1)
    def blocklist(self, addr: str, wall: float, duration: float | None = None) -> int:
        if duration is None:
            duration = self.opt("mon_mds_blocklist_interval")
        self.posd.blocklist[addr] = wall + duration
        return self.posd.epoch

    def fail_mds_gid(self, gid: int, wall: float) -> MDSInfo:
        """F1: blocklist a rank holder, then erase the daemon (its rank becomes failed)."""
        info = self.pfs.info(gid)
        assert info is not None
        epoch = 0
        if info.rank >= 0 and info.state != states.STANDBY_REPLAY and info.addr:
            epoch = self.blocklist(info.addr, wall)
        self.pfs.erase(gid, epoch, wall)
        self.forget(gid)
        return info

    def remove_mds_gid(self, gid: int, wall: float) -> None:
        """`mds rm` (A7): erase a daemon that holds no rank, with no fencing."""
        self.pfs.erase(gid, 0, wall)
        self.forget(gid)

    def forget(self, gid: int) -> None:
        """A daemon left the map: drop its beacon stamp, health and metadata (F1)."""
        self.beacons.forget(gid)
        self.seen_active.discard(gid)
        if self.daemon_health.pop(gid, None):
            self.health_changed = True
        self.metadata.pop(gid, None)

    def fscid_for(self, fs_name: str) -> int:
        fs = self.view.fs_by_name(fs_name) if fs_name else None
        return fs.fscid if fs else FS_CLUSTER_ID_NONE

    # -- beacons (M2–M7), batched
    def prepare_beacon(self, b: Beacon, now: float, wall: float, reply_to=None) -> Effects:
        """Ceph's preprocess/prepare_beacon. The Effects' reply is the BeaconAck to send now,
        or None: the beacon is dropped silently (M2), or its change waits in the pending
        proposal and its reply comes out, with `reply_to`, in the `acks` of the call that
        commits it (B4: the ack carries the epoch that has the change)."""
        if self._proposal is not None:
            raise RuntimeError("a proposal is already open")
        proposal = self._pending or Proposal(self.fsmap, self.osdmap)
        effects = self._effects = Effects()
        self._proposal = proposal
        try:
            reply = self.rules.handle(b, now, wall)
            if isinstance(reply, str):
                proposal.waiters.append((reply_to, b, reply))
            else:
                effects.reply = reply
        finally:
            self._proposal = self._effects = None
        if (proposal.dirty or self.health_changed) and self._pending is None:
            self._pending = proposal
            # Ceph's PaxosService::should_propose
            interval = self.opt("paxos_propose_interval")
            if now - self.last_commit > interval:
                self.propose_due = now + self.opt("paxos_min_wait")
            else:
                self.propose_due = self.last_commit + interval
        return effects

    def propose_pending(self, now: float, wall: float) -> Effects:
        """Commit the batched proposal (the shell calls this at `propose_due`)."""
        if self._pending is None:
            return Effects()
        with self.propose(now, wall) as effects:
            pass
        return effects

    def handle_beacon(self, b: Beacon, now: float, wall: float) -> Effects:
        """A beacon proposed at once, not batched (the simulator's way): the reply in the
        Effects is the BeaconAck to send, or None to drop the beacon silently (M2)."""
        prepared = self.prepare_beacon(b, now, wall, reply_to=_NOW)
        if self._pending is None:
            return prepared
        out = self.propose_pending(now, wall)
        mine = [reply for to, reply in out.acks if to is _NOW]
        out.acks = [(to, reply) for to, reply in out.acks if to is not _NOW]
        out.reply = mine[-1] if mine else prepared.reply
        return out

    # -- tick (T0–T7)
    def tick(self, now: float, wall: float) -> Effects:
        with self.propose(now, wall) as effects:
            self._tick(now, wall)
        return effects

    def _tick(self, now: float, wall: float) -> None:
        grace = self.opt("mds_beacon_grace")
        interval = self.opt("mds_beacon_interval")
        self.beacons.tick(now, grace, interval)  # T1
        # T0 step 1: standby_count_wanted -1 becomes 1 once there is something to count.
        view = self.view
        for fs in list(view.filesystems.values()):
            if fs.standby_count_wanted == -1 and fs.ranks_in_state(states.ACTIVE):
                if len(view.standby_daemons) + len(fs.followers()) > 0:
                    self.pfs.filesystems[fs.fscid].standby_count_wanted = 1
        self.beacons.sync(self.view.mds_roles, now)  # T2
        self._check_health(now, wall, grace, interval)
        self._rebalance_affinity(wall)
        proposal, force = self._open()[0], self.opt("mon_force_standby_active")
        for fscid in sorted(self.view.filesystems):
            rf.resize(proposal, fscid, force, wall, self.seen_active)
        for fscid in sorted(self.view.filesystems):
            rf.promote_standbys(proposal, fscid, force, wall)
        self._expire_blocklist(wall)

    def _check_health(self, now: float, wall: float, grace: float, interval: float) -> None:
        late, may_replace = self.beacons.overdue(  # T3, T4
            now, grace, interval, self.opt("mds_beacon_mon_down_grace"))
        to_remove: list[int] = []
        for gid, since in late:
            info = self.view.info(gid)
            if info is None:
                continue
            if not info.laggy:  # T5; logged once, as it becomes laggy, not at every tick
                log.info(f"no beacon from mds.{info.rank}.{info.inc} (gid: {gid} addr: "
                         f"{info.addr} state: {states.name(info.state)}) since {since:.3f}")
                log.info(f" marking {gid} {info.addr} mds.{info.rank}.{info.inc} "
                         f"{states.name(info.state)} laggy")
                self.pfs.modify_daemon(gid, wall).laggy_since = wall
            if may_replace:
                to_remove.append(gid)
        for gid in to_remove:
            self._drop_mds(gid, wall)

    def _drop_mds(self, gid: int, wall: float) -> None:
        """T6. Decided on the view: the pending map is taken only for a change, so a laggy
        holder that nobody can replace yet proposes nothing at each tick (taking it copies
        the map with a new epoch: every tick after a commit then committed one more, T0's
        bound was reached and a map went out every tick)."""
        view = self.view
        info = view.info(gid)
        if info is None or info.frozen:
            return
        if info.state in (states.STANDBY, states.STANDBY_REPLAY):
            self.fail_mds_gid(gid, wall)
        else:
            fs = view.fs_of(gid)
            force = self.opt("mon_force_standby_active")
            repl = rf.replacement(view, fs, info.rank, force) if fs.joinable else None
            if repl is None:
                return  # stays laggy, holding its rank, until a standby appears
            self._replace(info, repl, wall)
        self.clog(
            wall, "INF",
            f"MDS daemon mds.{info.name} is removed because it is dead or otherwise unavailable.",
        )

    def _replace(self, info: MDSInfo, repl: MDSInfo, wall: float) -> None:
        """Fail a rank holder and promote `repl` into its rank, in one proposal (T6, T7)."""
        self.clog(
            wall, "WRN",
            f"Replacing daemon mds.{info.name} as rank {info.rank} "
            f"with standby daemon mds.{repl.name}",
        )
        log.info(f" replacing {info.gid} {info.addr} mds.{info.rank}.{info.inc} "
                 f"{states.name(info.state)} with {repl.gid}/{repl.name} {repl.addr}")
        fscid = self.pfs.mds_roles[info.gid]
        self.fail_mds_gid(info.gid, wall)
        self.pfs.promote(repl.gid, self.pfs.filesystems[fscid], info.rank, wall)

    def _rebalance_affinity(self, wall: float) -> None:
        """T7: at most one daemon per fs is replaced by a standby with better affinity."""
        force = self.opt("mon_force_standby_active")
        for fscid in sorted(self.view.filesystems):
            swap = rf.low_affinity_swap(self.view, self.view.filesystems[fscid], force)
            if swap is None:
                continue
            info, cand = swap
            follower = info.state == states.STANDBY_REPLAY
            kind = "standby-replay" if follower else "active"
            self.clog(wall, "INF", f"Dropping low affinity {kind} daemon mds.{info.name} in "
                                   f"favor of higher affinity standby.")
            if follower:
                self.fail_mds_gid(info.gid, wall)  # S6 assigns the better one below
            else:
                self._replace(info, cand, wall)

    def _expire_blocklist(self, wall: float) -> None:
        expired = [a for a, t in self.view_osd.blocklist.items() if t <= wall]
        for addr in expired:
            del self.posd.blocklist[addr]

    # -- the OSD side
    def osd_boot(self, osd_id: int, addr: str, now: float, wall: float) -> Effects:
        with self.propose(now, wall) as effects:
            osd_monitor.prepare_boot(self._open()[0], osd_id, addr, wall)
        return effects

    # -- health (H1–H6, H8)
    def health_checks(self) -> dict[str, HealthCheck]:
        return fs_health_checks(self.fsmap, self.daemon_health,
                                self.opt("mon_force_standby_active"))

