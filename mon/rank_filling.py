"""Who takes which rank, sans-IO: the repairs one monitor tick makes (S4–S6, X1–X3, T7).

A mixin of `MDSMonitor` (mon/mds_monitor.py), split off by idea: it reads the maps through
`view`, changes the pending FSMap `pfs` and logs with `clog`, like the rest of the tick.
"""

from __future__ import annotations

import structlog

from common import states
from common.fsmap import FS_CLUSTER_ID_NONE, MAX_MDS, MDSInfo, MDSMap

log = structlog.get_logger("mon")


class RankFilling:
    def _replacement(self, fs: MDSMap, rank: int) -> MDSInfo | None:
        return self.view.find_replacement_for(fs, rank, self.opt("mon_force_standby_active"))

    def _follower_candidate(self, fs: MDSMap, rank: int) -> MDSInfo | None:
        """Who would start following `rank` now (S6). Seed 001's legacy `mds_standby_replay`
        daemons follow the rank they are aimed at, or any rank of their fs, even without
        allow_standby_replay; with the flag, any other available standby may follow too."""
        view = self.view
        aimed = loose = None
        for gid in sorted(view.standby_daemons):
            info = view.standby_daemons[gid]
            if not info.standby_replay or info.laggy or info.frozen:
                continue
            if view.legacy_aims_at(info, fs, rank):
                aimed = aimed or info
            elif not info.legacy_targeted and info.affinity in (FS_CLUSTER_ID_NONE, fs.fscid):
                loose = loose or info
        if aimed or loose or not fs.allow_standby_replay:
            return aimed or loose
        return view.get_available_standby(
            fs, rank, self.opt("mon_force_standby_active"), usable=lambda i: not i.standby_replay
        )

    def _rebalance_affinity(self, wall: float) -> None:
        """T7: at most one daemon per fs is replaced by a standby with better affinity."""
        for fscid in sorted(self.view.filesystems):
            fs = self.view.filesystems[fscid]
            if not fs.joinable or not fs.is_resizeable():
                continue
            for gid in sorted(fs.mds_info):
                info = fs.mds_info[gid]
                if info.affinity == fscid or info.frozen:
                    continue
                follower = info.state == states.STANDBY_REPLAY
                if follower:
                    cand = self._follower_candidate(fs, info.rank)
                else:
                    cand = self._replacement(fs, info.rank)
                if cand is None:
                    break
                if info.affinity == FS_CLUSTER_ID_NONE:
                    better = cand.affinity == fscid
                else:
                    better = cand.affinity in (fscid, FS_CLUSTER_ID_NONE)
                if not better:
                    continue
                kind = "standby-replay" if follower else "active"
                self.clog(
                    wall, "INF",
                    f"Dropping low affinity {kind} daemon mds.{info.name} in favor of "
                    f"higher affinity standby.",
                )
                if follower:
                    self.fail_mds_gid(gid, wall)  # S6 assigns the better one below
                else:
                    self._replace(info, cand, wall)
                break

    def _maybe_resize(self, fscid: int, wall: float) -> None:
        """X1–X3: one rank more or one rank fewer per tick."""
        committed = self.fsmap.filesystems.get(fscid)
        fs = self.view.filesystems[fscid]
        if committed is None or not committed.is_resizeable() or not fs.is_resizeable():
            return
        num_in = len(fs.in_)
        if num_in < fs.max_mds and fs.joinable:
            rank = min(set(range(MAX_MDS)) - fs.in_)
            repl = self._replacement(fs, rank)
            if repl is None:
                return
            fs = self.pfs.filesystems[fscid]
            self.pfs.promote(repl.gid, fs, rank, wall)
            self.clog(
                wall, "INF",
                f"daemon mds.{repl.name} assigned to filesystem {fs.fs_name} as rank {rank} "
                f"(now has {len(fs.in_)} ranks)",
            )
        elif num_in > fs.max_mds:
            rank = max(fs.in_)
            holder = fs.holder(rank)
            if holder is not None and holder.state == states.ACTIVE:
                m = self.pfs.modify_daemon(holder.gid, wall)
                m.state = states.STOPPING
                self.clog(wall, "INF", f"stopping daemon mds.{holder.name}")
            else:
                log.debug(f"skipping stop of {rank}")

    def _maybe_promote_standby(self, fscid: int, wall: float) -> None:
        """S4 (fill failed ranks) and S6 (assign standby-replay followers)."""
        fs = self.view.filesystems[fscid]
        if not fs.joinable:
            return
        for rank in sorted(fs.failed):
            repl = self._replacement(self.view.filesystems[fscid], rank)
            if repl is None:
                continue
            self.pfs.promote(repl.gid, self.pfs.filesystems[fscid], rank, wall)
            self.clog(
                wall, "INF",
                f"Standby daemon mds.{repl.name} assigned to filesystem {fs.fs_name} as rank {rank}",
            )
        fs = self.view.filesystems[fscid]
        if not fs.is_resizeable():
            return
        self._assign_followers(fscid, wall)

    def _assign_followers(self, fscid: int, wall: float) -> None:
        """S6: one follower for each followable rank, lowest rank first."""
        while True:
            fs = self.view.filesystems[fscid]
            for rank in sorted(fs.in_):
                cand = self._follower_candidate(fs, rank) if fs.is_followable(rank) else None
                if cand is not None:
                    fs = self.pfs.filesystems[fscid]
                    self.pfs.assign_standby_replay(cand.gid, fs, rank, wall)
                    break
            else:
                return
