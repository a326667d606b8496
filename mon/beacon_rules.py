"""The monitor's beacon rules, sans-IO (ref M2–M7, B4, B8, B10, F5, X4; Ceph's
MDSMonitor::preprocess_beacon and prepare_beacon), a part of `MDSMonitor`.

`handle` checks a beacon against the committed map and makes its changes on the pending one:
it returns the reply to send now, or the kind of reply (ACK, NULL, DAMAGED) that waits for
the pending proposal to commit; `deferred_reply` builds that reply once it has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from common import states
from common.fsmap import MDSInfo
from common.messages import Beacon, BeaconAck

if TYPE_CHECKING:
    from mon.mds_monitor import MDSMonitor

log = structlog.get_logger("mon")

# the reply a batched beacon waits for (sent when its proposal commits)
ACK, NULL, DAMAGED = "ack", "null", "damaged"


class BeaconRules:
    def __init__(self, mon: MDSMonitor) -> None:
        self.mon = mon

    def deferred_reply(self, b: Beacon, kind: str) -> BeaconAck:
        if kind == ACK:
            return self._ack(b, b.global_id)
        if kind == DAMAGED:  # F5: ack, then respawn
            return BeaconAck(seq=b.seq, state=states.DAMAGED, version=self.mon.fsmap.epoch)
        return self._null(b)

    def _null(self, b: Beacon) -> BeaconAck:
        return BeaconAck(seq=b.seq, state=b.state, version=0, null_map=True)

    def _ack(self, b: Beacon, gid: int) -> BeaconAck:
        """B4: echo seq and state, with the committed epoch the daemon should have seen."""
        fsmap = self.mon.fsmap
        if not fsmap.gid_exists(gid):
            return self._null(b)
        return BeaconAck(seq=b.seq, state=b.state, version=fsmap.effective_epoch(gid))

    def handle(self, b: Beacon, now: float, wall: float) -> BeaconAck | str | None:
        """The reply now, or the kind of reply (ACK, NULL, DAMAGED) that waits for the
        pending proposal to commit. Checks are made on the committed map, changes on the
        pending one (Ceph's preprocess and prepare)."""
        gid = b.global_id
        info = self.mon.fsmap.info(gid)
        if info is None:
            if self.mon.view.info(gid) is not None:  # booted in the pending proposal
                return ACK if b.state == states.BOOT else None
            if b.state != states.BOOT:  # M3: unknown gid, so it must respawn (B8)
                log.info("beacon from unknown gid, replying with a null map", gid=gid, name=b.name)
                return self._null(b)
            self._boot(b, now, wall)
            return ACK
        if b.state == states.DNE:  # B10/M7: a clean shutdown, before the seq and epoch checks
            if self.mon.view.info(gid) is not None:
                log.info("down:dne from mds, failing it", name=info.name, gid=gid)
                self.mon.fail_mds_gid(gid, wall)
            return NULL
        if b.state == states.BOOT or info.state_seq > b.seq:  # M2
            return None
        self.mon.beacons.note(gid, now, b.seq)
        if b.version != self.mon.fsmap.effective_epoch(gid):  # M4: has not seen the latest map
            return self._ack(b, gid)
        seen = self.mon.fsmap.info(gid)  # the committed map, which this daemon has seen
        if seen is not None and seen.state == states.ACTIVE and b.state == states.ACTIVE:
            self.mon.seen_active.add(gid)  # X2: it may be asked to stop now
        join_fscid = self.mon.fscid_for(b.fs)
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
        p = self.mon.pfs
        if self.mon.opt("mds_enforce_unique_name"):
            for other in [i for i in p.all_infos() if i.name == b.name]:
                self.mon.clog(wall, "INF", f"daemon mds.{b.name} restarted")
                self.mon.fail_mds_gid(other.gid, wall)
        info = MDSInfo(
            gid=b.global_id,
            name=b.name,
            state_seq=b.seq,
            addr=b.addr,
            join_fscid=self.mon.fscid_for(b.fs),
            standby_for_rank=b.standby_for_rank,
            standby_for_name=b.standby_for_name,
            standby_for_fscid=b.standby_for_fscid,
            standby_replay=b.standby_replay,
        )
        p.insert(info)
        self.mon.beacons.note(b.global_id, now, b.seq)
        self.mon.metadata[b.global_id] = dict(b.sys_info, addr=b.addr, name=b.name)
        self.mon.daemon_health[b.global_id] = list(b.health)
        self.mon.health_changed = True
        log.info("mds boot", name=b.name, gid=b.global_id, addr=b.addr)

    def _evict(self, b: Beacon, info: MDSInfo, why: str, wall: float) -> str:
        log.warning("evicting mds", name=info.name, gid=info.gid, why=why)
        self.mon.fail_mds_gid(info.gid, wall)
        return NULL

    def _prepare_state(self, b: Beacon, info: MDSInfo, join_fscid: int, wall: float) -> str:
        """M7, on the pending map (a change batched before this beacon is built on)."""
        if self.mon.view.info(info.gid) is None:
            return NULL  # failed in the pending proposal
        info = self.mon.view.info(info.gid)
        want, cur = b.state, info.state
        if cur == states.STANDBY and want != states.STANDBY:
            return self._evict(b, info, f"standby asked for {states.name(want)}", wall)
        if cur == states.STANDBY_REPLAY and want not in (states.STANDBY_REPLAY, states.DAMAGED):
            return self._evict(b, info, f"standby-replay asked for {states.name(want)}", wall)
        if not states.transition_valid(cur, want):
            return self._evict(
                b, info, f"invalid transition {states.name(cur)} -> {states.name(want)}", wall
            )
        p = self.mon.pfs
        m = p.modify_daemon(info.gid, wall)
        m.laggy_since = 0.0
        m.join_fscid = join_fscid
        (m.standby_for_rank, m.standby_for_name, m.standby_for_fscid, m.standby_replay) = (
            b.standby_for_rank, b.standby_for_name, b.standby_for_fscid, b.standby_replay,
        )
        self._note_health(info.gid, info, b.health, wall)
        if want == states.STOPPED and cur != want:
            self._stopped(info.gid, wall)
            return NULL
        if want == states.DAMAGED and cur != want:
            self._damaged(info.gid, wall)
            return DAMAGED
        if want != cur:
            m.state = want
            m.state_seq = b.seq
            fs = p.fs_of(info.gid)
            if want == states.ACTIVE and fs is not None:
                self.mon.clog(
                    wall, "INF",
                    f"daemon mds.{m.name} is now active in filesystem {fs.fs_name} as rank {m.rank}",
                )
        return ACK

    def _note_health(self, gid: int, info: MDSInfo, health: list, wall: float) -> None:
        old = self.mon.daemon_health.get(gid, [])
        if health == old:
            return
        new_types = {h.get("type") for h in health if isinstance(h, dict)}
        for h in old:
            if isinstance(h, dict) and h.get("type") not in new_types:
                self.mon.clog(
                    wall, "INF",
                    f"MDS health message cleared (mds.{info.name}): {h.get('message', '')}",
                )
        self.mon.daemon_health[gid] = [h for h in health if isinstance(h, dict)]
        self.mon.health_changed = True

    def _stopped(self, gid: int, wall: float) -> None:
        """X4: the rank has finished stopping."""
        p = self.mon.pfs
        fs = p.fs_of(gid)
        info = p.info(gid)
        for follower in p.stop(gid, wall):
            self.mon.fail_mds_gid(follower, wall)
        self.mon.forget(gid)
        self.mon.clog(
            wall, "INF",
            f"daemon mds.{info.name} finished stopping rank {info.rank} in filesystem "
            f"{fs.fs_name} (now has {len(fs.in_)} ranks)",
        )

    def _damaged(self, gid: int, wall: float) -> None:
        """F5: a rank holder or its follower reports the rank's metadata damaged."""
        p = self.mon.pfs
        fs = p.fs_of(gid)
        rank = p.info(gid).rank
        holder, follower = fs.holder(rank), fs.follower(rank)
        if follower is not None:
            self.mon.fail_mds_gid(follower.gid, wall)
        if holder is not None:
            epoch = self.mon.blocklist(holder.addr, wall) if holder.addr else 0
            p.damaged(holder.gid, epoch, wall)
            self.mon.forget(holder.gid)
        else:  # the follower of a failed rank (its fs is not joinable)
            fs.failed.discard(rank)
            fs.damaged.add(rank)


def _legacy(info: MDSInfo) -> tuple:
    return (info.standby_for_rank, info.standby_for_name, info.standby_for_fscid,
            info.standby_replay)
