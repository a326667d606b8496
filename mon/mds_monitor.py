"""The monitor's MDS logic, sans-IO (ref §4–§8, §10, §14; Ceph's MDSMonitor).

Inputs are beacons, ticks and commands, each with the time as plain numbers: `now` from a
monotonic clock for intervals, `wall` (seconds since the epoch) for displayed stamps. Every entry
point (`handle_beacon`, `tick`, `osd_boot`, and `commands.run`) opens one proposal with
`propose`, which commits it before the call returns, and returns its `Effects`: the reply and
what the trio shell must do about the commit (persist, then publish, then reply).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from common import states, summary
from common.config import Config
from common.fsmap import FS_CLUSTER_ID_NONE, FSMap, MDSInfo
from common.health import HealthCheck, fs_health_checks
from common.messages import Beacon, BeaconAck
from common.osdmap import OSDMap
from mon import osd_monitor
from mon import rank_filling as rf
from mon.beacon_times import BeaconTimes
from mon.config_monitor import ConfigMonitor
from mon.health_monitor import HealthLog
from mon.proposal import Effects, Proposal, log_cluster

log = structlog.get_logger("mon")

FIRST_GID = 4100
# T0: ticks run back to back after a commit (Ceph's on_active) end when a tick proposes
# nothing; this bound only stops a bug from spinning the monitor.
MAX_TICKS_PER_COMMIT = 50


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
        self.health_log = HealthLog(self.health_checks())

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
        effects.config = True

    def config_rm(self, who: str, name: str) -> None:
        effects = self._open()[1]
        effects.config = self.configs.rm(who, name) or effects.config

    # -- proposals: every entry point opens one, commits it, and returns its Effects
    @contextmanager
    def propose(self, now: float, wall: float) -> Iterator[Effects]:
        """Open a proposal. When the block ends it is committed, with the ticks T0 runs after
        each FSMap commit, into the Effects yielded; if the block raises, nothing of it is
        kept (its pending maps and cluster-log lines are dropped)."""
        if self._proposal is not None:
            raise RuntimeError("a proposal is already open")
        effects = self._effects = Effects()
        self._proposal = Proposal(self.fsmap, self.osdmap)
        try:
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
        # Ceph logs health changes as each proposal encodes its checks (log_health)
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
        return gid

    def note_gid(self, gid: int) -> None:
        self.next_gid = max(self.next_gid, gid + 1)

    def session_gid(self, entity: str, global_id: int) -> int:
        """The gid of a new session (given at `hello`): an MDS reconnecting with the gid of an
        earlier session keeps it, so a restarted mon sees the same daemons; anyone else gets
        a new one. The shell persists `next_gid` before it answers."""
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
        self._forget(gid)
        return info

    def remove_mds_gid(self, gid: int, wall: float) -> None:
        """`mds rm` (A7): erase a daemon that holds no rank, with no fencing."""
        self.pfs.erase(gid, 0, wall)
        self._forget(gid)

    def _forget(self, gid: int) -> None:
        """A daemon left the map: drop its beacon stamp, health and metadata (F1)."""
        self.beacons.forget(gid)
        self.seen_active.discard(gid)
        self.daemon_health.pop(gid, None)
        self.metadata.pop(gid, None)

    def _fscid_for(self, fs_name: str) -> int:
        fs = self.view.fs_by_name(fs_name) if fs_name else None
        return fs.fscid if fs else FS_CLUSTER_ID_NONE

    # -- beacons (M2–M7)
    def handle_beacon(self, b: Beacon, now: float, wall: float) -> Effects:
        """The reply in the Effects is the BeaconAck to send, or None to drop the beacon
        silently (M2)."""
        with self.propose(now, wall) as effects:
            effects.reply = self._handle_beacon(b, now, wall)
        return effects

    def _null(self, b: Beacon) -> BeaconAck:
        return BeaconAck(seq=b.seq, state=b.state, version=0, null_map=True)

    def _ack(self, b: Beacon, gid: int) -> BeaconAck:
        """B4: echo seq and state, with the epoch the daemon should have seen."""
        view = self.view
        if not view.gid_exists(gid):
            return self._null(b)
        return BeaconAck(seq=b.seq, state=b.state, version=view.effective_epoch(gid))

    def _handle_beacon(self, b: Beacon, now: float, wall: float) -> BeaconAck | None:
        gid = b.global_id
        info = self.fsmap.info(gid)
        if info is None:
            if b.state != states.BOOT:  # M3: unknown gid, so it must respawn (B8)
                log.info("beacon from unknown gid, replying with a null map", gid=gid, name=b.name)
                return self._null(b)
            self._boot(b, now, wall)
            return self._ack(b, gid)
        if b.state == states.DNE:  # B10/M7: a clean shutdown, before the seq and epoch checks
            log.info("down:dne from mds, failing it", name=info.name, gid=gid)
            self.fail_mds_gid(gid, wall)
            return self._null(b)
        if b.state == states.BOOT or info.state_seq > b.seq:  # M2
            return None
        self.beacons.note(gid, now, b.seq)
        if b.version != self.fsmap.effective_epoch(gid):  # M4: has not seen the latest map
            return self._ack(b, gid)
        if info.state == states.ACTIVE and b.state == states.ACTIVE:
            self.seen_active.add(gid)  # it has processed a map that shows it active
        join_fscid = self._fscid_for(b.fs)
        legacy = (b.standby_for_rank, b.standby_for_name, b.standby_for_fscid, b.standby_replay)
        unchanged = (
            not info.laggy
            and b.state == info.state
            and join_fscid == info.join_fscid
            and legacy == _legacy(info)
        )
        if unchanged:  # M5: fast path, nothing to propose
            self._note_health(gid, info, b.health, wall)
            return self._ack(b, gid)
        return self._prepare_state(b, info, join_fscid, wall)

    def _boot(self, b: Beacon, now: float, wall: float) -> None:
        """M6."""
        p = self.pfs
        if self.opt("mds_enforce_unique_name"):
            for other in [i for i in p.all_infos() if i.name == b.name]:
                self.clog(wall, "INF", f"daemon mds.{b.name} restarted")
                self.fail_mds_gid(other.gid, wall)
        info = MDSInfo(
            gid=b.global_id,
            name=b.name,
            state_seq=b.seq,
            addr=b.addr,
            join_fscid=self._fscid_for(b.fs),
            standby_for_rank=b.standby_for_rank,
            standby_for_name=b.standby_for_name,
            standby_for_fscid=b.standby_for_fscid,
            standby_replay=b.standby_replay,
        )
        p.insert(info)
        self.beacons.note(b.global_id, now, b.seq)
        self.metadata[b.global_id] = dict(b.sys_info, addr=b.addr, name=b.name)
        self.daemon_health[b.global_id] = list(b.health)
        log.info("mds boot", name=b.name, gid=b.global_id, addr=b.addr)

    def _evict(self, b: Beacon, info: MDSInfo, why: str, wall: float) -> BeaconAck:
        log.warning("evicting mds", name=info.name, gid=info.gid, why=why)
        self.fail_mds_gid(info.gid, wall)
        return self._null(b)

    def _prepare_state(
        self, b: Beacon, info: MDSInfo, join_fscid: int, wall: float
    ) -> BeaconAck | None:
        """M7."""
        want, cur = b.state, info.state
        if cur == states.STANDBY and want != states.STANDBY:
            return self._evict(b, info, f"standby asked for {states.name(want)}", wall)
        if cur == states.STANDBY_REPLAY and want not in (states.STANDBY_REPLAY, states.DAMAGED):
            return self._evict(b, info, f"standby-replay asked for {states.name(want)}", wall)
        if not states.transition_valid(cur, want):
            return self._evict(
                b, info, f"invalid transition {states.name(cur)} -> {states.name(want)}", wall
            )
        p = self.pfs
        m = p.modify_daemon(info.gid, wall)
        m.laggy_since = 0.0
        m.join_fscid = join_fscid
        (m.standby_for_rank, m.standby_for_name, m.standby_for_fscid, m.standby_replay) = (
            b.standby_for_rank, b.standby_for_name, b.standby_for_fscid, b.standby_replay,
        )
        self._note_health(info.gid, info, b.health, wall)
        if want == states.STOPPED and cur != want:
            self._stopped(info.gid, wall)
            return self._null(b)
        if want == states.DAMAGED and cur != want:
            self._damaged(info.gid, wall)
            return BeaconAck(seq=b.seq, state=want, version=p.epoch)  # F5: ack, then respawn
        if want != cur:
            m.state = want
            m.state_seq = b.seq
            fs = p.fs_of(info.gid)
            if want == states.ACTIVE and fs is not None:
                self.clog(
                    wall, "INF",
                    f"daemon mds.{m.name} is now active in filesystem {fs.fs_name} as rank {m.rank}",
                )
        return self._ack(b, info.gid)

    def _note_health(self, gid: int, info: MDSInfo, health: list, wall: float) -> None:
        old = self.daemon_health.get(gid, [])
        if health == old:
            return
        new_types = {h.get("type") for h in health if isinstance(h, dict)}
        for h in old:
            if isinstance(h, dict) and h.get("type") not in new_types:
                self.clog(
                    wall, "INF",
                    f"MDS health message cleared (mds.{info.name}): {h.get('message', '')}",
                )
        self.daemon_health[gid] = [h for h in health if isinstance(h, dict)]

    def _stopped(self, gid: int, wall: float) -> None:
        """X4: the rank has finished stopping."""
        p = self.pfs
        fs = p.fs_of(gid)
        info = p.info(gid)
        for follower in p.stop(gid, wall):
            self.fail_mds_gid(follower, wall)
        self._forget(gid)
        self.clog(
            wall, "INF",
            f"daemon mds.{info.name} finished stopping rank {info.rank} in filesystem "
            f"{fs.fs_name} (now has {len(fs.in_)} ranks)",
        )

    def _damaged(self, gid: int, wall: float) -> None:
        """F5: a rank holder or its follower reports the rank's metadata damaged."""
        p = self.pfs
        fs = p.fs_of(gid)
        rank = p.info(gid).rank
        holder, follower = fs.holder(rank), fs.follower(rank)
        if follower is not None:
            self.fail_mds_gid(follower.gid, wall)
        if holder is not None:
            epoch = self.blocklist(holder.addr, wall) if holder.addr else 0
            p.damaged(holder.gid, epoch, wall)
            self._forget(holder.gid)
        else:  # the follower of a failed rank (its fs is not joinable)
            fs.failed.discard(rank)
            fs.damaged.add(rank)

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
            log.info(
                f"no beacon from mds.{info.rank}.{info.inc} (gid: {gid} addr: {info.addr} "
                f"state: {states.name(info.state)}) since {since:.3f}"
            )
            if not info.laggy:  # T5
                log.info(f" marking {gid} {info.addr} mds.{info.rank}.{info.inc} "
                         f"{states.name(info.state)} laggy")
                self.pfs.modify_daemon(gid, wall).laggy_since = wall
            if may_replace:
                to_remove.append(gid)
        for gid in to_remove:
            self._drop_mds(gid, wall)

    def _drop_mds(self, gid: int, wall: float) -> None:
        """T6."""
        p = self.pfs
        info = p.info(gid)
        if info is None or info.frozen:
            return
        if info.state in (states.STANDBY, states.STANDBY_REPLAY):
            self.fail_mds_gid(gid, wall)
        else:
            fs = p.fs_of(gid)
            force = self.opt("mon_force_standby_active")
            repl = rf.replacement(p, fs, info.rank, force) if fs.joinable else None
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


def _legacy(info: MDSInfo) -> tuple:
    return (info.standby_for_rank, info.standby_for_name, info.standby_for_fscid,
            info.standby_replay)
