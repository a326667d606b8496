"""The FSMap's one-line and `ceph -s` summaries, as Ceph prints them (ref §13, O3, O4):
FSMap::print_summary (`mds stat`, the monitor's "fsmap ..." DBG log line and the `fsmap` of
`ceph status -f json`), FSMap::print_daemon_summary and print_fs_summary (the `mds:` and
`volumes:` lines of `ceph -s`), and `ceph status` itself. The maps' full dumps are in
`common.render`; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from common import states
from common.fsmap import FSMap, MDSInfo
from common.health import HealthCheck, health_json, overall_status
from common.render import fs_list, fsmap_json


def _state_text(info: MDSInfo) -> str:
    text = states.name(info.state)
    return text + "(laggy or crashed)" if info.laggy else text


def mds_stat_plain(fsmap: FSMap) -> str:
    """FSMap::print_summary, e.g. "cephfs:1 {0=a=up:active} 1 up:standby"."""
    fss = fs_list(fsmap)
    if len(fss) <= 3:
        parts = [
            f"{fs.fs_name}:{len(fs.up)}/{len(fs.in_)}"
            if fs.is_degraded()
            else f"{fs.fs_name}:{len(fs.in_)}"
            for fs in fss
        ]
        out = " ".join(parts)
    else:
        out = f"{len(fss)} fs"
        degraded = [f"{fs.fs_name}:{len(fs.up)}/{len(fs.in_)}" for fs in fss if fs.is_degraded()]
        if 0 < len(degraded) <= 3:
            out += " (degraded: " + " ".join(degraded) + ")"
        elif degraded:
            out += f" (degraded: {len(degraded)} fs)"

    # Rank holders go in the rank map (keys "<rank>", or "<fs>:<rank>" with several fs) when
    # there are 1 to 4 of them; every other daemon is counted by state.
    by_state: dict[int, int] = {states.STANDBY: len(fsmap.standby_daemons)}
    by_rank: dict[tuple, str] = {}
    for fs in fss:
        for info in fs.mds_info.values():
            by_state[info.state] = by_state.get(info.state, 0) + 1
            if info.state != states.STANDBY_REPLAY:
                key = (f"{fs.fs_name}:{info.rank}",) if len(fss) > 1 else (info.rank,)
                by_rank[key + (info.state,)] = f"{info.name}={_state_text(info)}"
    if 0 < len(by_rank) < 5:
        for key in by_rank:
            by_state[key[-1]] -= 1
        out += " {" + ",".join(f"{k[0]}={by_rank[k]}" for k in sorted(by_rank)) + "}"
    for state in sorted(by_state):
        if by_state[state] > 0:
            out += f" {by_state[state]} {states.name(state)}"
    failed = sum(len(fs.failed) for fs in fss)
    damaged = sum(len(fs.damaged) for fs in fss)
    if failed:
        out += f", {failed} failed"
    if damaged:
        out += f", {damaged} damaged"
    return out.strip()


def _summary_json(fsmap: FSMap) -> dict:
    """FSMap::print_summary with a formatter (the "fsmap" of `ceph status -f json`).

    Ceph repeats id/up/in/max once per file system; as with a JSON parser, the last wins.
    """
    d: dict = {"epoch": fsmap.epoch}
    for fs in fs_list(fsmap):
        d.update(id=fs.fscid, up=len(fs.up), **{"in": len(fs.in_)}, max=fs.max_mds)
    d["by_rank"] = [
        {
            "filesystem_id": fs.fscid,
            "rank": info.rank,
            "name": info.name,
            "status": _state_text(info),
            "gid": gid,
        }
        for fs in fs_list(fsmap)
        for gid, info in sorted(fs.mds_info.items())
    ]
    d["up:standby"] = len(fsmap.standby_daemons)
    failed = sum(len(fs.failed) for fs in fsmap.filesystems.values())
    damaged = sum(len(fs.damaged) for fs in fsmap.filesystems.values())
    if failed:
        d["failed"] = failed
    if damaged:
        d["damaged"] = damaged
    return d


def mds_stat_json(fsmap: FSMap) -> dict:
    return {
        "fsmap": fsmap_json(fsmap),
        "mdsmap_first_committed": 1,
        "mdsmap_last_committed": fsmap.epoch,
    }


def daemon_summary(fsmap: FSMap) -> str:
    """FSMap::print_daemon_summary: the `mds:` line of `ceph -s`."""
    fss = fs_list(fsmap)
    num_up = sum(len(fs.up) for fs in fss)
    num_in = sum(len(fs.in_) for fs in fss)
    num_failed = sum(len(fs.failed) for fs in fss)
    replay = sum(len(fs.followers()) for fs in fss)
    out = f"{num_up}/{num_in} daemons up"
    if num_failed:
        out += f" ({num_failed} failed)"
    if fsmap.standby_daemons:
        out += f", {len(fsmap.standby_daemons)} standby"
    if replay:
        out += f", {replay} hot standby"
    return out


def volumes_summary(fsmap: FSMap) -> str:
    """FSMap::print_fs_summary: the `volumes:` value of `ceph -s` ("" with no fs)."""
    fss = fs_list(fsmap)
    if not fss:
        return ""
    failed = sum(1 for fs in fss if fs.failed)
    recovering = sum(1 for fs in fss if not fs.failed and fs.is_degraded())
    stopped = sum(1 for fs in fss if not fs.is_degraded() and fs.max_mds == 0)
    healthy = len(fss) - failed - recovering - stopped
    damaged = sum(1 for fs in fss if fs.damaged)
    out = f"{healthy}/{len(fss)} healthy"
    for n, what in ((recovering, "recovering"), (failed, "failed"), (stopped, "stopped")):
        if n:
            out += f", {n} {what}"
    if damaged:
        out += f"; {damaged} damaged"
    return out


# -- `ceph status`


def status_plain(fsmap: FSMap, checks: dict[str, HealthCheck], extra: dict) -> str:
    """`ceph -s`. `extra`: fsid, mon_names, mon_age (optional), osd (str or None)."""
    health = health_json(checks, detail=False)
    lines = [
        "  cluster:",
        f"    id:     {extra.get('fsid', '')}",
        f"    health: {overall_status(checks)}",
    ]
    lines += ["            " + c["summary"]["message"] for c in health["checks"].values()]
    mons = list(extra.get("mon_names") or [])
    mon = f"{len(mons)} daemons, quorum {','.join(mons)}"
    if extra.get("mon_age"):
        mon += f" (age {extra['mon_age']})"
    lines += [" ", "  services:", f"    mon: {mon}"]
    if fsmap.filesystems or fsmap.standby_daemons:
        lines.append(f"    mds: {daemon_summary(fsmap)}")
    if extra.get("osd"):
        lines.append(f"    osd: {extra['osd']}")
    volumes = volumes_summary(fsmap)
    if volumes:
        lines += [" ", "  data:", f"    volumes: {volumes}"]
    return "\n".join(lines)


def status_json(fsmap: FSMap, checks: dict[str, HealthCheck], extra: dict) -> dict:
    mons = list(extra.get("mon_names") or [])
    return {
        "fsid": extra.get("fsid", ""),
        "health": health_json(checks, detail=False),
        "quorum_names": mons,
        "monmap": {"epoch": extra.get("mon_epoch", 1), "num_mons": len(mons)},
        "fsmap": _summary_json(fsmap),
    }
