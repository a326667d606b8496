"""The `fs ...` commands (Ceph's FSCommands.cc and the `fs` part of MDSMonitor's commands)."""

from __future__ import annotations

import errno

from common import render
from common.fs_status import fs_status_json, fs_status_plain
from common.fsmap import (
    ALLOW_STANDBY_REPLAY,
    BALANCE_AUTOMATE,
    MAX_MDS,
    NOT_JOINABLE,
    REFUSE_CLIENT_SESSION,
    REFUSE_STANDBY_FOR_ANOTHER_FS,
)
from mon.cmdbase import YES, Context, Result, _bool, _err, _int

MIN_STRIPE_UNIT = 65536  # CEPH_MIN_STRIPE_UNIT: the smallest max_file_size


OVERLAY = "--allow-dangerous-metadata-overlay"


def _pool_user(c: Context, pool) -> tuple[str, str] | None:
    """(fs name, "data"|"metadata") if a file system already uses `pool` (its application
    metadata in Ceph's OSDMap)."""
    for fs in c.mon.view.filesystems.values():
        if pool.id in fs.data_pools:
            return fs.fs_name, "data"
        if pool.id == fs.metadata_pool:
            return fs.fs_name, "metadata"
    return None


def fs_new(c: Context) -> Result:
    """FsNewHandler (A9)."""
    _, _, name, meta, data = c.need(5, "fs new <fs_name> <metadata> <data>")
    mon = c.mon
    if meta == data:
        raise _err(errno.EINVAL, "metadata and data pools must be different")
    existing = mon.view.fs_by_name(name)
    osd = mon.view_osd
    mp, dp = osd.pool_by_name(meta), osd.pool_by_name(data)
    if existing is not None:
        if mp and dp and existing.metadata_pool == mp.id and dp.id == existing.data_pools[0]:
            return 0, f"filesystem '{name}' already exists", ""
        raise _err(errno.EINVAL, f"filesystem already exists with name '{name}'")
    if mon.view.filesystems and not mon.view.enable_multiple:
        raise _err(errno.EINVAL, "Creation of multiple filesystems is disabled.  To enable this "
                   "experimental feature, use 'ceph fs flag set enable_multiple true'")
    overlay = OVERLAY in c.flags
    for fs in mon.view.filesystems.values():
        in_use = (mp and mp.id == fs.metadata_pool) or (dp and dp.id in fs.data_pools)
        if in_use and not overlay:
            raise _err(errno.EINVAL, f"Filesystem '{name}' is already using one of the "
                       "specified RADOS pools. This should ONLY be done in emergencies and "
                       f"after careful reading of the documentation. Pass {OVERLAY} to permit "
                       "this.")
    for pool in (dp, mp):  # _check_pool: the data pool first, then the metadata pool
        user = _pool_user(c, pool) if pool and not overlay else None
        if user is not None:
            raise _err(errno.EINVAL, f"RADOS pool '{pool.name}' is already used by filesystem "
                       f"'{user[0]}' as a '{user[1]}' pool for application 'cephfs'")
    mp = mp or mon.posd.create_pool(meta)
    dp = dp or mon.posd.create_pool(data)
    p = mon.pfs
    recover = "--recover" in c.flags
    fs = p.create_filesystem(name, mp.id, [dp.id], c.wall, recover=recover,
                             session_timeout=int(mon.opt("mds_session_timeout")),  # C7
                             session_autoclose=int(mon.opt("mds_session_autoclose")))
    if not recover:  # A9: available standbys go straight into the new ranks
        for rank in range(fs.max_mds):
            repl = p.get_available_standby(fs, rank, mon.opt("mon_force_standby_active"))
            if repl is None:
                break
            mon.clog(c.wall, "INF", f"daemon mds.{repl.name} assigned to filesystem {name} as "
                     f"rank {rank}")
            p.promote(repl.gid, fs, rank, c.wall)
    return 0, f"new fs with metadata pool {mp.id} and data pool {dp.id}", ""


def fs_ls(c: Context) -> Result:
    names = c.mon.view_osd.pool_names()
    if c.json:
        return 0, "", c.out(render.fs_ls_json(c.mon.fsmap, names))
    return 0, "", render.fs_ls_plain(c.mon.fsmap, names)


def fs_get(c: Context) -> Result:
    _, _, name = c.need(3, "fs get <fs_name>")
    fs = c.mon.fsmap.fs_by_name(name)
    if fs is None:  # preprocess_command's wording, not is_op_allowed's
        raise _err(errno.ENOENT, f"filesystem '{name}' not found")
    if c.json:
        return 0, "", c.out(render.fs_get_json(fs))
    return 0, "", render.fs_get_plain(fs)


def fs_dump(c: Context) -> Result:
    """`fs dump [<epoch>]`: an epoch the store no longer keeps (mon_max_mdsmap_epochs) or has
    not reached is ENOENT with no message, as in Ceph."""
    fsmap = c.mon.fsmap
    if len(c.args) == 3:
        epoch = _int(c.args[2], "epoch")
        fsmap = c.history(epoch) if c.history and epoch != c.mon.fsmap.epoch else fsmap
        if fsmap is None or fsmap.epoch != epoch:
            raise _err(errno.ENOENT, "")
    elif len(c.args) != 2:
        raise _err(errno.EINVAL, "invalid command; usage: fs dump [<epoch>]")
    outs = f"dumped fsmap epoch {fsmap.epoch}"
    if c.json:
        return 0, outs, c.out(render.fsmap_json(fsmap))
    return 0, outs, render.fsmap_plain(fsmap)


def fs_status(c: Context) -> Result:
    """The mgr status module's `fs status [<fs>]` (O5)."""
    if len(c.args) > 3:
        raise _err(errno.EINVAL, "invalid command; usage: fs status [<fs>]")
    names = c.args[2:] or None
    pools = c.mon.view_osd.pool_names()
    stats = c.extra.get("stats", {})
    if c.json:
        return 0, "", c.out(fs_status_json(c.mon.fsmap, names, pools, stats))
    try:
        return 0, "", fs_status_plain(c.mon.fsmap, names, pools, stats)
    except ValueError as e:  # "Invalid filesystem: X"
        raise _err(errno.EINVAL, str(e)) from None


def _strict_int(text: str) -> int:
    """strict_strtoll, whose message `fs set max_mds` passes on."""
    try:
        return int(text)
    except ValueError:
        raise _err(errno.EINVAL, f"Expected option value to be integer, got '{text}'") from None


def _req_int(var: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _err(errno.EINVAL, f"{var} requires an integer value") from None


def _refuse_flag(fs, flag: int, on: bool, texts: tuple[str, str, str, str]) -> str:
    """refuse_client_session / refuse_standby_for_another_fs: set, already set, cleared,
    already clear."""
    if fs.test_flag(flag) == on:
        return texts[1] if on else texts[3]
    fs.set_flag(flag, on)
    return texts[0] if on else texts[2]


REFUSE_TEXTS = {
    "refuse_client_session": (
        REFUSE_CLIENT_SESSION,
        ("client(s) blocked from establishing new session(s)",
         "client(s) already blocked from establishing new session(s)",
         "client(s) allowed to establish new session(s)",
         "client(s) already allowed to establish new session(s)")),
    "refuse_standby_for_another_fs": (
        REFUSE_STANDBY_FOR_ANOTHER_FS,
        ("set to refuse standby for another fs",
         "to refuse standby for another fs is already set",
         "allowed to use standby for another fs",
         "to use standby for another fs is already allowed")),
}


def fs_set(c: Context) -> Result:
    """SetHandler/set_val: Ceph's messages, including the confirmations it prints."""
    _, _, name, var, val = c.need(5, "fs set <fs_name> <var> <val>")
    mon = c.mon
    fs = mon.pfs.modify_filesystem(c.fs(name).fscid, c.wall)
    outs = ""
    if var == "max_mds":
        n = _strict_int(val)
        if n <= 0:
            raise _err(errno.EINVAL, "You must specify at least one MDS")
        if n > MAX_MDS:
            raise _err(errno.EINVAL, f"may not have more than {MAX_MDS} MDS ranks")
        fs.max_mds = n
        fs.set_flag(NOT_JOINABLE, False)  # X7
    elif var in ("joinable", "cluster_down"):
        joinable = _bool(val) if var == "joinable" else not _bool(val)
        fs.set_flag(NOT_JOINABLE, not joinable)
        outs = f"{name} marked joinable; MDS may join as newly active." if joinable else \
            f"{name} marked not joinable; MDS cannot join as newly active."
        if var == "cluster_down":
            outs += (" WARNING: cluster_down flag is deprecated and will be removed in a future "
                     'version. Please use "joinable".')
    elif var == "down":  # X6
        if _bool(val):
            if fs.max_mds > 0:
                fs.old_max_mds = fs.max_mds
                fs.max_mds = 0
            outs = f"{name} marked down. "
        else:
            fs.max_mds = fs.old_max_mds or 1  # as Ceph does, even when it was not down
            outs = f"{name} marked up, max_mds = {fs.max_mds}"
    elif var == "allow_standby_replay":  # S7
        on = _bool(val)
        fs.set_flag(ALLOW_STANDBY_REPLAY, on)
        if not on:
            for follower in fs.followers():
                if not follower.standby_replay:  # legacy followers stay (seed 001)
                    mon.fail_mds_gid(follower.gid, c.wall)
    elif var == "balance_automate":
        fs.set_flag(BALANCE_AUTOMATE, _bool(val))
    elif var in REFUSE_TEXTS:
        flag, texts = REFUSE_TEXTS[var]
        outs = _refuse_flag(fs, flag, _bool(val), texts)
    elif var == "standby_count_wanted":
        n = _req_int(var, val)
        if n < 0:
            raise _err(errno.ERANGE, f"{var} must be non-negative")
        fs.standby_count_wanted = n
    elif var in ("session_timeout", "session_autoclose"):  # C7
        n = _req_int(var, val)
        if n < 30:
            raise _err(errno.ERANGE, f"{var} must be at least 30s")
        setattr(fs, var, n)
    elif var == "max_file_size":
        n = _req_int(var, val)
        if n < MIN_STRIPE_UNIT:
            raise _err(errno.ERANGE, f"{var} must at least {MIN_STRIPE_UNIT}")  # sic
        fs.max_file_size = n
    elif var == "max_xattr_size":
        fs.max_xattr_size = _req_int(var, val)
    elif var == "balancer":
        fs.balancer = val
        outs = f"setting the metadata load balancer to {val}" if val else \
            "unsetting the metadata load balancer"
    else:
        raise _err(errno.EINVAL, f"unknown variable {var}")
    return 0, outs, ""


# errmsg_for_unhealthy_mds (FSCommands.h)
UNHEALTHY_MDS = ("MDS has one of two health warnings which could extend recovery: MDS_TRIM or "
                 "MDS_CACHE_OVERSIZED. MDS failover is not recommended since it might cause "
                 "unexpected file system unavailability. If you wish to proceed, pass "
                 "--yes-i-really-mean-it")


def _unhealthy(c: Context) -> bool:
    """MDSMonitor::has_health_warnings({MDS_TRIM, MDS_CACHE_OVERSIZED}): any daemon at all."""
    return any(m.get("type") in ("MDS_TRIM", "MDS_CACHE_OVERSIZED")
               for metrics in c.mon.daemon_health.values() for m in metrics)


def fs_fail(c: Context) -> Result:
    """F7 (FailHandler): refused while an MDS is behind on trimming or over its cache size,
    unless confirmed."""
    _, _, name = c.need(3, "fs fail <fs_name> [--yes-i-really-mean-it]")
    mon = c.mon
    fscid = c.fs(name).fscid
    if YES not in c.flags and _unhealthy(c):
        raise _err(errno.EPERM, UNHEALTHY_MDS)
    fs = mon.pfs.modify_filesystem(fscid, c.wall)
    fs.set_flag(NOT_JOINABLE)
    for gid in sorted(fs.mds_info):
        mon.fail_mds_gid(gid, c.wall)
    return 0, (f"{name} marked not joinable; MDS cannot join the cluster. "
               "All MDS ranks marked failed."), ""


def fs_rm(c: Context) -> Result:
    """RemoveFilesystemHandler: no up daemon (checked before the confirmation flag); a
    joinable fs whose ranks are all down may go too."""
    _, _, name = c.need(3, "fs rm <fs_name> [--yes-i-really-mean-it]")
    mon = c.mon
    fs = mon.view.fs_by_name(name)
    if fs is None:
        return 0, f"filesystem '{name}' does not exist", ""
    if fs.up:
        raise _err(errno.EINVAL, "all MDS daemons must be inactive/failed before removing "
                   "filesystem. See `ceph fs fail`.")
    if YES not in c.flags:
        raise _err(errno.EPERM, "this is a DESTRUCTIVE operation and will make data in your "
                   "filesystem permanently inaccessible.  Add --yes-i-really-mean-it if you "
                   "are sure you wish to continue.")
    for gid in sorted(fs.mds_info):  # followers may be left
        mon.fail_mds_gid(gid, c.wall)
    mon.pfs.erase_filesystem(fs.fscid)
    return 0, "", ""


def fs_flag(c: Context) -> Result:
    _, _, verb, flag, val = c.need(5, "fs flag set enable_multiple <val>")
    if verb != "set" or flag != "enable_multiple":
        raise _err(errno.EINVAL, f"unknown flag {flag}")
    c.mon.pfs.set_enable_multiple(_bool(val))
    return 0, "", ""


def fs_set_default(c: Context) -> Result:
    _, _, name = c.need(3, "fs set-default <fs_name>")
    c.mon.pfs.set_legacy_client_fscid(c.fs(name).fscid)
    return 0, "", ""


def fs_lsflags(c: Context) -> Result:
    """`fs lsflags <fs>`: MDSMap::print_flags (each name after a space) or dump_flags_state."""
    _, _, name = c.need(3, "fs lsflags <fs_name>")
    fs = c.mon.fsmap.fs_by_name(name)
    if fs is None:
        raise _err(errno.ENOENT, f"filesystem '{name}' not found")
    if c.json:
        return 0, "", c.out(render.flags_state(fs))
    return 0, "", "".join(f" {flag}" for flag in render.flag_names(fs))


COMPAT_SUBOPS = ("add_compat", "add_incompat", "rm_compat", "rm_incompat")


def fs_compat(c: Context) -> Result:
    """CompatSetHandler: `fs compat <fs> add_compat|add_incompat|rm_compat|rm_incompat
    <feature> [<feature_str>]`, only while no daemon holds a rank."""
    if len(c.args) not in (5, 6):
        raise _err(errno.EINVAL, "invalid command; usage: fs compat <fs_name> "
                   "rm_compat|rm_incompat|add_compat|add_incompat <feature> [<feature_str>]")
    name, subop, feature = c.args[2:5]
    fscid = c.fs(name).fscid
    if subop not in COMPAT_SUBOPS:
        raise _err(errno.EINVAL, f"subop `{subop}' not recognized. Must be one of: "
                   + ",".join(COMPAT_SUBOPS))
    try:
        fid = int(feature)
    except ValueError:
        fid = 0
    if fid <= 0:
        raise _err(errno.EINVAL, "Invalid feature")
    fs = c.mon.view.filesystems[fscid]
    if fs.up:
        raise _err(errno.EBUSY, "file system must be failed or down; use `ceph fs fail` to "
                   "bring down")
    kind = subop.split("_", 1)[1]
    features = c.mon.pfs.modify_filesystem(fscid, c.wall).compat[kind]
    if subop.startswith("rm_"):
        outs = f"removed {kind} feature {fid}" if fid in features else \
            f"already removed {kind} feature {fid}"
        features.pop(fid, None)
    else:
        text = c.args[5] if len(c.args) == 6 else ""
        if not text:
            raise _err(errno.EINVAL, "adding a feature requires a feature string")
        if fid in features and features[fid] != text:
            raise _err(errno.EEXIST, f"feature with differing name `{features[fid]}' exists")
        outs = "feature already exists" if fid in features else \
            f'added {kind} feature F({fid}, "{text}")'
        features[fid] = text
    return 0, outs, ""


def fs_rename(c: Context) -> Result:
    """RenameFilesystemHandler (Squid): needs the confirmation, a name not in use, no up
    daemon and refuse_client_session; renaming again to the same name is a no-op."""
    _, _, old, new = c.need(4, "fs rename <fs_name> <new_fs_name> [--yes-i-really-mean-it]")
    view = c.mon.view
    fs, taken = view.fs_by_name(old), view.fs_by_name(new)
    if fs is None:
        if taken is not None:
            return 0, ("File system may already have been renamed. Desired file system "
                       f"'{new}' exists."), ""
        raise _err(errno.ENOENT, f"File system '{old}' does not exist")
    if taken is not None:
        raise _err(errno.EINVAL, f"Desired file system name '{new}' already in use")
    if YES not in c.flags:
        raise _err(errno.EPERM, "this is a potentially disruptive operation, clients' cephx "
                   "credentials need reauthorized to access the file system and its pools with "
                   "the new name. Add --yes-i-really-mean-it if you are sure you wish to "
                   "continue.")
    if fs.up:
        raise _err(errno.EPERM, f"CephFS '{old}' is not offline. Before renaming a CephFS, it "
                   "must be marked as down. See `ceph fs fail`.")
    if not fs.test_flag(REFUSE_CLIENT_SESSION):
        raise _err(errno.EPERM, f"CephFS '{old}' doesn't refuse clients. Before renaming a "
                   "CephFS, flag 'refuse_client_session' must be set. See `ceph fs set`.")
    c.mon.pfs.modify_filesystem(fs.fscid, c.wall).fs_name = new
    return 0, ("File system is renamed. cephx credentials authorized to old file system name "
               "need to be reauthorized to new file system name."), ""
