"""The `fs ...` commands (Ceph's FSCommands.cc and the `fs` part of MDSMonitor's commands)."""

from __future__ import annotations

import errno

from common import render
from common.fsmap import (
    ALLOW_STANDBY_REPLAY,
    MAX_MDS,
    NOT_JOINABLE,
    REFUSE_CLIENT_SESSION,
    REFUSE_STANDBY_FOR_ANOTHER_FS,
)
from mon.cmdbase import YES, Context, Result, _bool, _err, _int


def fs_new(c: Context) -> Result:
    _, _, name, meta, data = c.need(5, "fs new <fs_name> <metadata> <data>")
    mon = c.mon
    if meta == data:
        raise _err(errno.EINVAL, "metadata and data pools must be different")
    existing = mon.view.fs_by_name(name)
    osd = mon.view_osd
    if existing is not None:
        mp, dp = osd.pool_by_name(meta), osd.pool_by_name(data)
        if mp and dp and existing.metadata_pool == mp.id and dp.id in existing.data_pools:
            return 0, f"filesystem '{name}' already exists", ""
        raise _err(errno.EINVAL, f"filesystem already exists with name '{name}'")
    if mon.view.filesystems and not mon.view.enable_multiple:
        raise _err(errno.EINVAL, "Creation of multiple filesystems is disabled.  To enable this "
                   "experimental feature, use 'ceph fs flag set enable_multiple true'")
    mp, dp = osd.pool_by_name(meta), osd.pool_by_name(data)
    for fs in mon.view.filesystems.values():
        in_use = (mp and mp.id == fs.metadata_pool) or (dp and dp.id in fs.data_pools)
        if in_use and "--allow-dangerous-metadata-overlay" not in c.flags:
            raise _err(errno.EEXIST, f"Filesystem '{name}' is already using one of the "
                       "specified RADOS pools. This should ONLY be done in emergencies and "
                       "after careful reading of the documentation. Pass "
                       "--allow-dangerous-metadata-overlay to permit this.")
    mp = mp or mon.posd.create_pool(meta)
    dp = dp or mon.posd.create_pool(data)
    p = mon.pfs
    fs = p.create_filesystem(name, mp.id, [dp.id], c.wall)
    fs.session_timeout = int(mon.config.get("mds_session_timeout"))  # C7's starting values
    fs.session_autoclose = int(mon.config.get("mds_session_autoclose"))
    if "--recover" in c.flags:
        fs.in_.add(0)
        fs.failed.add(0)
        fs.set_flag(NOT_JOINABLE)
    else:  # A9: available standbys go straight into the new ranks
        for rank in range(fs.max_mds):
            repl = p.get_available_standby(fs, rank, mon.opt("mon_force_standby_active"))
            if repl is None:
                break
            p.promote(repl.gid, fs, rank, c.wall)
    return 0, f"new fs with metadata pool {mp.id} and data pool {dp.id}", ""


def fs_ls(c: Context) -> Result:
    names = c.mon.view_osd.pool_names()
    if c.json:
        return 0, "", c.out(render.fs_ls_json(c.mon.fsmap, names))
    return 0, "", render.fs_ls_plain(c.mon.fsmap, names)


def fs_get(c: Context) -> Result:
    _, _, name = c.need(3, "fs get <fs_name>")
    fs = c.fs(name)
    if c.json:
        return 0, "", c.out(render.fs_get_json(fs))
    return 0, "", render.fs_get_plain(fs)


def fs_dump(c: Context) -> Result:
    fsmap = c.mon.fsmap
    if len(c.args) == 3:
        epoch = _int(c.args[2], "epoch")
        fsmap = c.history(epoch) if c.history and epoch != c.mon.fsmap.epoch else fsmap
        if fsmap is None or fsmap.epoch != epoch:
            raise _err(errno.ENOENT, f"mds map {epoch} not found")
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
        return 0, "", c.out(render.fs_status_json(c.mon.fsmap, names, pools, stats))
    try:
        return 0, "", render.fs_status_plain(c.mon.fsmap, names, pools, stats)
    except ValueError as e:  # "Invalid filesystem: X"
        raise _err(errno.EINVAL, str(e)) from None


def fs_set(c: Context) -> Result:
    _, _, name, var, val = c.need(5, "fs set <fs_name> <var> <val>")
    mon = c.mon
    fs = mon.pfs.filesystems[c.fs(name).fscid]
    touch = mon.pfs._touch
    if var == "max_mds":
        n = _int(val, "max_mds")
        if n < 1:
            raise _err(errno.EINVAL, "You must specify at least one MDS")
        if n > MAX_MDS:
            raise _err(errno.EINVAL, f"may not have more than {MAX_MDS} MDS ranks")
        fs.max_mds = n
        fs.set_flag(NOT_JOINABLE, False)  # X7
        touch(fs, c.wall)
        return 0, "", ""
    if var in ("joinable", "cluster_down"):
        joinable = _bool(val) if var == "joinable" else not _bool(val)
        fs.set_flag(NOT_JOINABLE, not joinable)
        touch(fs, c.wall)
        if joinable:
            return 0, f"{name} marked joinable; MDS may join as newly active.", ""
        return 0, f"{name} marked not joinable; MDS cannot join as newly active.", ""
    if var == "down":  # X6
        if _bool(val):
            if fs.max_mds > 0:
                fs.old_max_mds = fs.max_mds
                fs.max_mds = 0
            touch(fs, c.wall)
            return 0, f"{name} marked down. ", ""
        fs.max_mds = fs.old_max_mds or 1  # as Ceph does, even when it was not down
        touch(fs, c.wall)
        return 0, f"{name} marked up, max_mds = {fs.max_mds}", ""
    if var == "allow_standby_replay":  # S7
        on = _bool(val)
        fs.set_flag(ALLOW_STANDBY_REPLAY, on)
        touch(fs, c.wall)
        if not on:
            for follower in fs.followers():
                if not follower.standby_replay:  # legacy followers stay (seed 001)
                    mon.fail_mds_gid(follower.gid, c.wall)
        return 0, "", ""
    if var in ("refuse_standby_for_another_fs", "refuse_client_session"):
        flag = REFUSE_STANDBY_FOR_ANOTHER_FS if var.startswith("refuse_standby") else \
            REFUSE_CLIENT_SESSION
        fs.set_flag(flag, _bool(val))
        touch(fs, c.wall)
        return 0, "", ""
    if var == "standby_count_wanted":
        n = _int(val, var)
        if n < 0:
            raise _err(errno.EINVAL, f"{var} must be non-negative")
        fs.standby_count_wanted = n
        touch(fs, c.wall)
        return 0, "", ""
    if var in ("session_timeout", "session_autoclose"):  # C7
        n = _int(val, var)
        if n < 30:
            raise _err(errno.ERANGE, f"{var} must be at least 30s")
        setattr(fs, var, n)
        touch(fs, c.wall)
        return 0, "", ""
    if var in ("max_file_size", "max_xattr_size"):
        setattr(fs, var, _int(val, var))
        touch(fs, c.wall)
        return 0, "", ""
    raise _err(errno.EINVAL, f"unknown variable {var}")


def fs_fail(c: Context) -> Result:
    """F7."""
    _, _, name = c.need(3, "fs fail <fs_name>")
    mon = c.mon
    fs = mon.pfs.filesystems[c.fs(name).fscid]
    fs.set_flag(NOT_JOINABLE)
    mon.pfs._touch(fs, c.wall)
    for gid in sorted(fs.mds_info):
        mon.fail_mds_gid(gid, c.wall)
    return 0, (f"{name} marked not joinable; MDS cannot join the cluster. "
               "All MDS ranks marked failed."), ""


def fs_rm(c: Context) -> Result:
    _, _, name = c.need(3, "fs rm <fs_name> [--yes-i-really-mean-it]")
    mon = c.mon
    fs = mon.view.fs_by_name(name)
    if fs is None:
        return 0, f"filesystem '{name}' does not exist", ""
    if YES not in c.flags:
        raise _err(errno.EPERM, "this is a DESTRUCTIVE operation and will make data in your "
                   "filesystem permanently inaccessible.  Add --yes-i-really-mean-it if you "
                   "are sure you wish to continue.")
    if fs.joinable or fs.up:
        raise _err(errno.EINVAL, "all MDS daemons must be inactive/failed before removing "
                   "filesystem. See `ceph fs fail`.")
    for gid in sorted(fs.mds_info):
        mon.fail_mds_gid(gid, c.wall)
    mon.pfs.erase_filesystem(fs.fscid)
    return 0, "", ""


def fs_flag(c: Context) -> Result:
    _, _, verb, flag, val = c.need(5, "fs flag set enable_multiple <val>")
    if verb != "set" or flag != "enable_multiple":
        raise _err(errno.EINVAL, f"unknown flag {flag}")
    on = _bool(val)
    p = c.mon.pfs
    p.enable_multiple = on
    if on:
        p.ever_enabled_multiple = True
    return 0, "", ""


def fs_set_default(c: Context) -> Result:
    _, _, name = c.need(3, "fs set-default <fs_name>")
    c.mon.pfs.legacy_client_fscid = c.fs(name).fscid
    return 0, "", ""
