"""Plain and JSON renderings of the FSMap, as Ceph prints them (ref §13, O2–O6).

The summaries (`mds stat`, `ceph -s`) are in `common.summary`. Plain renderers return text without a trailing newline; JSON renderers return plain dicts and
lists (the CLI serialises them). Key order in the JSON follows Ceph's dumpers, so scripts written
against `ceph fs dump -f json` see the same layout. Wall-clock stamps arrive as floats; nothing
here reads a clock or does I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime

from common import states
from common.fsmap import (
    ALLOW_MULTIMDS_SNAPS,
    ALLOW_SNAPS,
    ALLOW_STANDBY_REPLAY,
    BALANCE_AUTOMATE,
    DEFAULT_INCOMPAT,
    FLAG_NAMES,
    FS_CLUSTER_ID_NONE,
    INCOMPAT_FEATURES,
    REFUSE_CLIENT_SESSION,
    REFUSE_STANDBY_FOR_ANOTHER_FS,
    FSMap,
    MDSInfo,
    MDSMap,
)

DEFAULT_VERSION = "mdsemu 0.1.0"
_RELATIVE_LIMIT = 60 * 60 * 24 * 365 * 10  # Ceph prints stamps under ten years as seconds


# -- small values


def log_line(e: dict) -> str:
    """One cluster-log entry as `ceph -w` and `ceph log last` print it."""
    return f"{format_stamp(e['stamp'])} {e['who']} [{e['level']}] {e['message']}"


def format_stamp(wall: float) -> str:
    """A wall-clock time as Ceph's utime_t prints it: UTC ISO 8601 with microseconds."""
    sec, usec = divmod(round(wall * 1_000_000), 1_000_000)
    if sec < _RELATIVE_LIMIT:
        return f"{sec}.{usec:06d}"
    t = datetime.fromtimestamp(sec, UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{usec:06d}+0000"


def _split_addr(addr: str) -> tuple[str, int]:
    host_port, _, nonce = addr.partition("/")
    return host_port, int(nonce) if nonce.isdigit() else 0


def addrvec_plain(addr: str) -> str:
    """Plain addrvec: "127.0.0.1:6800/1234" -> "[v2:127.0.0.1:6800/1234]", "" -> "[]"."""
    return f"[v2:{addr}]" if addr else "[]"


def _addrvec_json(addr: str) -> dict:
    if not addr:
        return {"addrvec": []}
    host_port, nonce = _split_addr(addr)
    return {"addrvec": [{"type": "v2", "addr": host_port, "nonce": nonce}]}


_DAEMON_COMPAT = {"compat": {}, "ro_compat": {}, "incompat": INCOMPAT_FEATURES}
_DEFAULT_COMPAT = {"compat": {}, "ro_compat": {}, "incompat": DEFAULT_INCOMPAT}


def compat_dict(cs: dict | None = None) -> dict:
    """A CompatSet as Ceph dumps it (a daemon's, all Squid features, by default)."""
    cs = cs or _DAEMON_COMPAT
    return {k: {f"feature_{i}": text for i, text in sorted(cs[k].items())}
            for k in ("compat", "ro_compat", "incompat")}


def compat_plain(cs: dict | None = None) -> str:
    """A CompatSet as `fs get` prints it."""
    cs = cs or _DAEMON_COMPAT
    part = {k: ",".join(f"{i}={text}" for i, text in sorted(cs[k].items()))
            for k in ("compat", "ro_compat", "incompat")}
    return (f"compat={{{part['compat']}}},rocompat={{{part['ro_compat']}}},"
            f"incompat={{{part['incompat']}}}")


def _compat_lite() -> str:
    """CompatSet::printlite: hex masks, bit 0 always set."""
    mask = 1
    for i in INCOMPAT_FEATURES:
        mask |= 1 << i
    return f"{{c=[1],r=[1],i=[{mask:x}]}}"


def _set_plain(values) -> str:
    return ",".join(str(v) for v in sorted(values))


# -- one daemon (mds_info_t)


def info_json(info: MDSInfo) -> dict:
    d: dict = {
        "gid": info.gid,
        "name": info.name,
        "rank": info.rank,
        "incarnation": info.inc,
        "state": states.name(info.state),
        "state_seq": info.state_seq,
        "addr": info.addr,
        "addrs": _addrvec_json(info.addr),
        "join_fscid": info.join_fscid,
    }
    if info.laggy:
        d["laggy_since"] = format_stamp(info.laggy_since)
    d.update(
        export_targets=sorted(info.export_targets),
        features=info.features,
        flags=info.flags,
        compat=compat_dict(),
    )
    return d


def info_plain(info: MDSInfo) -> str:
    """The daemon line of `fs get` / `fs dump` (O3)."""
    s = f"[mds.{info.name}{{{info.rank}:{info.gid}}} state {states.name(info.state)}"
    s += f" seq {info.state_seq}"
    if info.laggy:
        s += f" laggy since {format_stamp(info.laggy_since)}"
    if info.export_targets:
        s += f" export targets {_set_plain(info.export_targets)}"
    if info.frozen:
        s += " frozen"
    if info.join_fscid != FS_CLUSTER_ID_NONE:
        s += f" join_fscid={info.join_fscid}"
    return s + f" addr {addrvec_plain(info.addr)} compat {_compat_lite()}]"


# -- one file system (MDSMap)


def flags_state(fs: MDSMap) -> dict:
    """MDSMap::dump_flags_state (also `fs lsflags -f json`)."""
    return {
        "joinable": fs.joinable,
        "allow_snaps": fs.test_flag(ALLOW_SNAPS),
        "allow_multimds_snaps": fs.test_flag(ALLOW_MULTIMDS_SNAPS),
        "allow_standby_replay": fs.test_flag(ALLOW_STANDBY_REPLAY),
        "refuse_client_session": fs.test_flag(REFUSE_CLIENT_SESSION),
        "refuse_standby_for_another_fs": fs.test_flag(REFUSE_STANDBY_FOR_ANOTHER_FS),
        "balance_automate": fs.test_flag(BALANCE_AUTOMATE),
    }


def mdsmap_json(fs: MDSMap) -> dict:
    return {
        "epoch": fs.epoch,
        "flags": fs.flags,
        "flags_state": flags_state(fs),
        "ever_allowed_features": fs.ever_allowed_features,
        "explicitly_allowed_features": fs.explicitly_allowed_features,
        "created": format_stamp(fs.created),
        "modified": format_stamp(fs.modified),
        "tableserver": fs.tableserver,
        "root": fs.root,
        "session_timeout": fs.session_timeout,
        "session_autoclose": fs.session_autoclose,
        "required_client_features": {},
        "max_file_size": fs.max_file_size,
        "max_xattr_size": fs.max_xattr_size,
        "last_failure": fs.last_failure,
        "last_failure_osd_epoch": fs.last_failure_osd_epoch,
        "compat": compat_dict(fs.compat),
        "max_mds": fs.max_mds,
        "in": sorted(fs.in_),
        "up": {f"mds_{r}": fs.up[r] for r in sorted(fs.up)},
        "failed": sorted(fs.failed),
        "damaged": sorted(fs.damaged),
        "stopped": sorted(fs.stopped),
        "info": {f"gid_{g}": info_json(fs.mds_info[g]) for g in sorted(fs.mds_info)},
        "data_pools": list(fs.data_pools),
        "metadata_pool": fs.metadata_pool,
        "enabled": fs.enabled,
        "fs_name": fs.fs_name,
        "balancer": fs.balancer,
        "bal_rank_mask": fs.bal_rank_mask,
        "standby_count_wanted": max(0, fs.standby_count_wanted),
        "qdb_leader": _qdb(fs)[0],
        "qdb_cluster": _qdb(fs)[1],
    }


def flag_names(fs: MDSMap) -> list[str]:
    """MDSMap::print_flags: the names of the set flags (and "joinable")."""
    return (["joinable"] if fs.joinable else []) + [n for f, n in FLAG_NAMES if fs.test_flag(f)]


def _flags_plain(fs: MDSMap) -> str:
    return " ".join([f"{fs.flags:x}", *flag_names(fs)])


def _qdb(fs: MDSMap) -> tuple[int, list[int]]:
    """Squid's quiesce db: the active ranks' gids, led by rank 0's (ref §17.2)."""
    members = sorted(g for g in fs.up.values() if fs.mds_info[g].state == states.ACTIVE)
    leader = fs.up.get(0, 0) if fs.up.get(0) in members else 0
    return leader, members


def _qdb_cluster(fs: MDSMap) -> str:
    leader, members = _qdb(fs)
    return f"leader: {leader} members: {_set_plain(members)}"


def mdsmap_plain(fs: MDSMap) -> str:
    """MDSMap::print (O3): TAB-separated keys, then the daemon lines."""
    up = ",".join(f"{r}={fs.up[r]}" for r in sorted(fs.up))
    pairs = [
        ("fs_name", fs.fs_name),
        ("epoch", fs.epoch),
        ("flags", _flags_plain(fs)),
        ("created", format_stamp(fs.created)),
        ("modified", format_stamp(fs.modified)),
        ("tableserver", fs.tableserver),
        ("root", fs.root),
        ("session_timeout", fs.session_timeout),
        ("session_autoclose", fs.session_autoclose),
        ("max_file_size", fs.max_file_size),
        ("max_xattr_size", fs.max_xattr_size),
        ("required_client_features", "{}"),
        ("last_failure", fs.last_failure),
        ("last_failure_osd_epoch", fs.last_failure_osd_epoch),
        ("compat", compat_plain(fs.compat)),
        ("max_mds", fs.max_mds),
        ("in", _set_plain(fs.in_)),
        ("up", f"{{{up}}}"),
        ("failed", _set_plain(fs.failed)),
        ("damaged", _set_plain(fs.damaged)),
        ("stopped", _set_plain(fs.stopped)),
        ("data_pools", "[" + ",".join(str(p) for p in fs.data_pools) + "]"),
        ("metadata_pool", fs.metadata_pool),
        ("inline_data", "disabled"),
        ("balancer", fs.balancer),
        ("bal_rank_mask", fs.bal_rank_mask),
        ("standby_count_wanted", max(0, fs.standby_count_wanted)),
        ("qdb_cluster", _qdb_cluster(fs)),
    ]
    lines = [f"{k}\t{v}" for k, v in pairs]
    lines += [info_plain(i) for i in fs.sorted_infos()]
    return "\n".join(lines)


def fs_get_json(fs: MDSMap) -> dict:
    return {"mdsmap": mdsmap_json(fs), "id": fs.fscid}


def fs_get_plain(fs: MDSMap) -> str:
    return f"Filesystem '{fs.fs_name}' ({fs.fscid})\n" + mdsmap_plain(fs)


# -- the whole FSMap (`fs dump`)


def fsmap_json(fsmap: FSMap) -> dict:
    standbys = []
    for gid in sorted(fsmap.standby_daemons):
        d = info_json(fsmap.standby_daemons[gid])
        d["epoch"] = fsmap.standby_epochs.get(gid, 0)
        standbys.append(d)
    return {
        "epoch": fsmap.epoch,
        "default_fscid": fsmap.legacy_client_fscid,
        "compat": compat_dict(_DEFAULT_COMPAT),
        "feature_flags": {
            "enable_multiple": fsmap.enable_multiple,
            "ever_enabled_multiple": fsmap.ever_enabled_multiple,
        },
        "standbys": standbys,
        "filesystems": [fs_get_json(fsmap.filesystems[f]) for f in sorted(fsmap.filesystems)],
    }


def fsmap_plain(fsmap: FSMap) -> str:
    """FSMap::print (O2); the "dumped fsmap epoch N" status line is the CLI's."""
    lines = [
        f"e{fsmap.epoch}",
        f"btime {format_stamp(fsmap.btime)}",
        "enable_multiple, ever_enabled_multiple: "
        f"{int(fsmap.enable_multiple)},{int(fsmap.ever_enabled_multiple)}",
        f"default compat: {compat_plain(_DEFAULT_COMPAT)}",
        f"legacy client fscid: {fsmap.legacy_client_fscid}",
        " ",
    ]
    if not fsmap.filesystems:
        lines.append("No filesystems configured")
    for fscid in sorted(fsmap.filesystems):
        lines += [fs_get_plain(fsmap.filesystems[fscid]), " ", " "]
    if fsmap.standby_daemons:
        lines += ["Standby daemons:", " "]
        lines += [info_plain(fsmap.standby_daemons[g]) for g in sorted(fsmap.standby_daemons)]
    return "\n".join(lines)


# -- `fs ls`


def pool_name(pool_names: dict[int, str], pool: int) -> str:
    return pool_names.get(pool, str(pool))


def fs_ls_plain(fsmap: FSMap, pool_names: dict[int, str]) -> str:
    if not fsmap.filesystems:
        return "No filesystems enabled"
    lines = []
    for fscid in sorted(fsmap.filesystems):
        fs = fsmap.filesystems[fscid]
        data = "".join(pool_name(pool_names, p) + " " for p in fs.data_pools)
        meta = pool_name(pool_names, fs.metadata_pool)
        lines.append(f"name: {fs.fs_name}, metadata pool: {meta}, data pools: [{data}]")
    return "\n".join(lines)


def fs_ls_json(fsmap: FSMap, pool_names: dict[int, str]) -> list:
    return [
        {
            "name": fs.fs_name,
            "metadata_pool": pool_name(pool_names, fs.metadata_pool),
            "metadata_pool_id": fs.metadata_pool,
            "data_pool_ids": list(fs.data_pools),
            "data_pools": [pool_name(pool_names, p) for p in fs.data_pools],
        }
        for _, fs in sorted(fsmap.filesystems.items())
    ]


# -- `mds stat` and the `ceph -s` lines (O6)


def fs_list(fsmap: FSMap) -> list[MDSMap]:
    return [fsmap.filesystems[f] for f in sorted(fsmap.filesystems)]
