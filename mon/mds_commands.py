"""The `mds ...` commands (Ceph's MDSMonitor::preprocess_command and filesystem_command)."""

from __future__ import annotations

import errno

from common import states, summary
from mon.cmdbase import YES, Context, Result, _bool, _err, _format
from mon.mds_monitor import MDSMonitor


def _gid_from_arg(mon: MDSMonitor, who: str) -> int | None:
    """A1: a role first (if that rank is up), then a gid, then a daemon name."""
    view = mon.view
    try:
        fs, rank = view.parse_role(who)
        if rank in fs.up:
            return fs.up[rank]
    except ValueError:
        pass
    try:
        gid = int(who)
    except ValueError:
        return view.gid_by_name(who)
    return gid if view.gid_exists(gid) else None


def mds_fail(c: Context) -> Result:
    _, _, who = c.need(3, "mds fail <role_or_gid>")
    gid = _gid_from_arg(c.mon, who)
    if gid is None:
        return 0, (f"MDS named '{who}' does not exist, is not up or you lack the permission "
                   "to see."), ""
    info = c.mon.fail_mds_gid(gid, c.wall)
    c.mon.clog(c.wall, "INF", f"daemon mds.{info.name} marked failed by {c.who}")
    return 0, f"failed mds gid {gid}", ""


def mds_stat(c: Context) -> Result:
    if c.json:
        return 0, "", c.out(summary.mds_stat_json(c.mon.fsmap))
    return 0, "", summary.mds_stat_plain(c.mon.fsmap)


def _not_found(who: str) -> str:
    """gid_from_arg's message: only a name (not a number) that matches nothing gets one."""
    try:
        int(who)
        return ""
    except ValueError:
        return f"MDS named '{who}' does not exist, or is not up"


def mds_freeze(c: Context) -> Result:
    """A7: `mds freeze <role_or_gid> <val>`; EINVAL for an unknown daemon."""
    _, _, who, val = c.need(4, "mds freeze <role_or_gid> <val>")
    gid = _gid_from_arg(c.mon, who)
    if gid is None:
        raise _err(errno.EINVAL, _not_found(who))
    freeze = _bool(val)
    c.mon.pfs.modify_daemon(gid, c.wall).freeze(freeze)
    return 0, f"{'freezing' if freeze else 'unfreezing'} mds.{gid}", ""


def mds_repaired(c: Context) -> Result:
    _, _, role = c.need(3, "mds repaired <role>")
    try:
        fs, rank = c.mon.view.parse_role(role)
    except ValueError as e:
        raise _err(errno.EINVAL, str(e)) from None
    if rank not in fs.damaged:
        return 0, "nothing to do: rank is not damaged", ""
    pfs = c.mon.pfs.modify_filesystem(fs.fscid, c.wall)
    pfs.damaged.discard(rank)
    pfs.failed.add(rank)
    return 0, f"repaired: restoring rank {fs.fscid}:{rank}", ""


def mds_rmfailed(c: Context) -> Result:
    """A6: the rank leaves `failed` only; it stays in `in` (neither up nor failed)."""
    _, _, role = c.need(3, "mds rmfailed <role> --yes-i-really-mean-it")
    if YES not in c.flags:
        raise _err(errno.EPERM, "WARNING: this can make your filesystem inaccessible! Add "
                   "--yes-i-really-mean-it if you are sure you wish to continue.")
    try:
        fs, rank = c.mon.view.parse_role(role)
    except ValueError:
        raise _err(errno.EINVAL, f"invalid role '{role}'") from None
    c.mon.pfs.modify_filesystem(fs.fscid, c.wall).failed.discard(rank)
    return 0, f"removed failed mds.{fs.fscid}:{rank}", ""


def mds_metadata(c: Context) -> Result:
    mon = c.mon
    rows = []
    for info in sorted(mon.fsmap.all_infos(), key=lambda i: i.name):
        rows.append(dict(mon.metadata.get(info.gid, {}), name=info.name, gid=info.gid))
    if len(c.args) == 3:
        rows = [r for r in rows if r["name"] == c.args[2] or str(r["gid"]) == c.args[2]]
        if not rows:
            raise _err(errno.ENOENT, f"MDS named '{c.args[2]}' does not exist")
        return 0, "", _format(rows[0], "json-pretty" if not c.json else c.fmt)
    return 0, "", _format(rows, "json-pretty" if not c.json else c.fmt)


def mds_ok_to_stop(c: Context) -> Result:
    """A8 (MDSMonitor::preprocess_command): would stopping these daemons leave a rank without a
    replacement? Daemons that do not exist are ignored; followers do not count."""
    ids = c.args[2:]
    if not ids:
        raise _err(errno.EINVAL, "must specify mds id")
    fsmap = c.mon.fsmap
    if any(fs.is_degraded() for fs in fsmap.filesystems.values()):
        raise _err(errno.EBUSY, "one or more filesystems is currently degraded")
    stopping = {g for g in (_gid_from_arg(c.mon, i) for i in ids) if g is not None}
    active, standby = set(), set()
    for gid in stopping:
        fs = fsmap.fs_of(gid)
        if fs is None:
            standby.add(gid)  # a net loss of a standby
            continue
        info = fs.mds_info[gid]
        if info.state == states.STANDBY_REPLAY:
            continue
        follower = fs.follower(info.rank)
        if follower is None or follower.gid in stopping:
            active.add(gid)
    if len(fsmap.standby_daemons) - len(standby) < len(active):
        raise _err(errno.EBUSY, "insufficent standby MDS daemons to stop active gids "  # sic
                   f"{_set(active)} and/or standby gids {_set(standby)}")
    return 0, f"should be safe to stop [{','.join(ids)}]", ""


def _set(gids: set[int]) -> str:
    """A std::set as Ceph prints it: comma-separated, no brackets."""
    return ",".join(str(g) for g in sorted(gids))


def mds_rm(c: Context) -> Result:
    """A7: `mds rm <gid>` takes a daemon out of the map unless it holds a rank (state > 0)."""
    _, _, text = c.need(3, "mds rm <gid>")
    try:
        gid = int(text)
    except ValueError:
        raise _err(errno.EINVAL, f"error parsing 'gid' value '{text}'") from None
    info = c.mon.view.info(gid)
    if info is None:
        return 0, f"mds gid {gid} does not exist", ""
    if info.state > 0:
        raise _err(errno.EBUSY, f"cannot remove active mds.{info.name} rank {info.rank}")
    c.mon.remove_mds_gid(gid, c.wall)  # no fencing: it holds nothing
    return 0, f"removed mds gid {gid}", ""
