"""Who takes which rank, sans-IO: the repairs of a monitor tick (S4–S6, X1–X3, T7).

Plain functions, called by `MDSMonitor`'s tick with the option `mon_force_standby_active`
(`force`). The choices (`replacement`, `follower_candidate`, `low_affinity_swap`) read a map
and change nothing; `resize` and `promote_standbys` apply theirs to the open `Proposal`,
reading the map again after each change. A swap (T7) fails a daemon, which only the monitor
can do (fencing, beacon stamps), so the monitor applies it.
"""

from __future__ import annotations

import structlog

from common import states
from common.fsmap import FS_CLUSTER_ID_NONE, MAX_MDS, FSMap, MDSInfo, MDSMap
from mon.proposal import Proposal

log = structlog.get_logger("mon")


def replacement(view: FSMap, fs: MDSMap, rank: int, force: bool) -> MDSInfo | None:
    """S1: who would take `rank` now."""
    return view.find_replacement_for(fs, rank, force)


def follower_candidate(view: FSMap, fs: MDSMap, rank: int, force: bool) -> MDSInfo | None:
    """Who would start following `rank` now (S6). Seed 001's legacy `mds_standby_replay`
    daemons follow the rank they are aimed at, or any rank of their fs, even without
    allow_standby_replay; with the flag, any other available standby may follow too."""
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
    return view.get_available_standby(fs, rank, force, usable=lambda i: not i.standby_replay)


def low_affinity_swap(view: FSMap, fs: MDSMap, force: bool) -> tuple[MDSInfo, MDSInfo] | None:
    """T7: the first daemon of `fs` (by gid) that a standby with better affinity should
    replace, and that standby; at most one per fs and tick."""
    if not fs.joinable or not fs.is_resizeable():
        return None
    for gid in sorted(fs.mds_info):
        info = fs.mds_info[gid]
        if info.affinity == fs.fscid or info.frozen:
            continue
        if info.state == states.STANDBY_REPLAY:
            cand = follower_candidate(view, fs, info.rank, force)
        else:
            cand = replacement(view, fs, info.rank, force)
        if cand is None:
            return None
        if info.affinity == FS_CLUSTER_ID_NONE:
            better = cand.affinity == fs.fscid
        else:
            better = cand.affinity in (fs.fscid, FS_CLUSTER_ID_NONE)
        if better:
            return info, cand
    return None


def resize(p: Proposal, fscid: int, force: bool, wall: float,
           seen_active: set[int] | frozenset[int] | None = None) -> None:
    """X1–X3: one rank more or one rank fewer per tick, only while both the committed and the
    pending map of the fs are resizeable. A rank is stopped only once its holder has shown
    (`seen_active`, from its beacons; None: do not check) that it knows it is active."""
    committed = p.committed_fsmap.filesystems.get(fscid)
    fs = p.fs_view.filesystems[fscid]
    if committed is None or not committed.is_resizeable() or not fs.is_resizeable():
        return
    if len(fs.in_) < fs.max_mds and fs.joinable:
        rank = min(set(range(MAX_MDS)) - fs.in_)
        repl = replacement(p.fs_view, fs, rank, force)
        if repl is None:
            return
        fs = p.fsmap.filesystems[fscid]
        p.fsmap.promote(repl.gid, fs, rank, wall)
        p.clog(wall, "INF", f"daemon mds.{repl.name} assigned to filesystem {fs.fs_name} as "
                            f"rank {rank} (now has {len(fs.in_)} ranks)")
    elif len(fs.in_) > fs.max_mds:
        holder = fs.holder(max(fs.in_))
        if holder is not None and holder.state == states.ACTIVE and \
                (seen_active is None or holder.gid in seen_active):
            p.fsmap.modify_daemon(holder.gid, wall).state = states.STOPPING
            p.clog(wall, "INF", f"stopping daemon mds.{holder.name}")
        else:
            log.debug(f"skipping stop of {max(fs.in_)}")


def promote_standbys(p: Proposal, fscid: int, force: bool, wall: float) -> None:
    """S4 (fill failed ranks), then S6 (one follower for each followable rank, lowest rank
    first), on a joinable fs."""
    fs = p.fs_view.filesystems[fscid]
    if not fs.joinable:
        return
    for rank in sorted(fs.failed):
        repl = replacement(p.fs_view, p.fs_view.filesystems[fscid], rank, force)
        if repl is None:
            continue
        p.fsmap.promote(repl.gid, p.fsmap.filesystems[fscid], rank, wall)
        p.clog(wall, "INF", f"Standby daemon mds.{repl.name} assigned to filesystem "
                            f"{fs.fs_name} as rank {rank}")
    if not p.fs_view.filesystems[fscid].is_resizeable():
        return
    while (found := _next_follower(p.fs_view, p.fs_view.filesystems[fscid], force)):
        rank, cand = found
        p.fsmap.assign_standby_replay(cand.gid, p.fsmap.filesystems[fscid], rank, wall)


def _next_follower(view: FSMap, fs: MDSMap, force: bool) -> tuple[int, MDSInfo] | None:
    """S6: the lowest followable rank with a candidate follower, and that candidate."""
    for rank in sorted(fs.in_):
        if fs.is_followable(rank):
            cand = follower_candidate(view, fs, rank, force)
            if cand is not None:
                return rank, cand
    return None
