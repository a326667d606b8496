"""Admin commands with Ceph's grammar, messages and errno (ref §14, X6, X7, C7, F5, F7, S7).

`run(mon, args, fmt, who, now, wall)` returns (rc, outs, outb) like Ceph's mon commands: rc is 0
or a negative errno, outs the status line for stderr, outb the output for stdout. Commands that
change the maps commit before they return, like a proposal that completed.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable

from common import config as cfg
from common import health, render
from common.fsmap import (
    ALLOW_STANDBY_REPLAY,
    INFO_FROZEN,
    MAX_MDS,
    NOT_JOINABLE,
    REFUSE_CLIENT_SESSION,
    REFUSE_STANDBY_FOR_ANOTHER_FS,
    FSMap,
)
from mon.mds_monitor import MDSMonitor

Result = tuple[int, str, str]
YES = "--yes-i-really-mean-it"


class CommandError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def _err(code: int, message: str) -> CommandError:
    return CommandError(code, message)


def _format(obj, fmt: str) -> str:
    if fmt == "json-pretty":
        return json.dumps(obj, indent=4)
    return json.dumps(obj, separators=(",", ":"))


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("true", "yes", "1"):
        return True
    if low in ("false", "no", "0"):
        return False
    raise _err(errno.EINVAL, "value must be false|no|0 or true|yes|1")


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise _err(errno.EINVAL, f"{what} must be a non-negative number, got '{text}'")
    return value


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _err(errno.EINVAL, f"{what} must be an integer, got '{text}'") from None


class Context:
    """One command being run: the monitor, the arguments and how to answer."""

    def __init__(self, mon: MDSMonitor, args: list[str], fmt: str, who: str, now: float,
                 wall: float, history: Callable[[int], FSMap | None] | None, extra: dict):
        self.mon = mon
        self.flags = {a for a in args if a.startswith("--")}
        self.args = [a for a in args if not a.startswith("--")]
        self.fmt = fmt
        self.who = who
        self.now = now
        self.wall = wall
        self.history = history
        self.extra = extra

    @property
    def json(self) -> bool:
        return self.fmt in ("json", "json-pretty")

    def out(self, obj) -> str:
        return _format(obj, self.fmt)

    def need(self, n: int, usage: str) -> list[str]:
        if len(self.args) != n:
            raise _err(errno.EINVAL, f"invalid command; usage: {usage}")
        return self.args

    def fs(self, name: str):
        fs = self.mon.view.fs_by_name(name)
        if fs is None:
            raise _err(errno.ENOENT, f"Filesystem not found: '{name}'")
        return fs


# -- fs commands
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
    names = c.args[2:] or None
    if names:
        c.fs(names[0])
    pools = c.mon.view_osd.pool_names()
    stats = c.extra.get("stats", {})
    if c.json:
        return 0, "", c.out(render.fs_status_json(c.mon.fsmap, names, pools, stats))
    return 0, "", render.fs_status_plain(c.mon.fsmap, names, pools, stats)


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


# -- mds commands
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
        return 0, "", c.out(render.mds_stat_json(c.mon.fsmap))
    return 0, "", render.mds_stat_plain(c.mon.fsmap)


def mds_freeze(c: Context) -> Result:
    _, _, who, val = c.need(4, "mds freeze <role_or_gid> <val>")
    gid = _gid_from_arg(c.mon, who)
    if gid is None:
        raise _err(errno.ENOENT, f"MDS named '{who}' does not exist, is not up or you lack "
                   "the permission to see.")
    info = c.mon.pfs.modify_daemon(gid, c.wall)
    info.flags = (info.flags | INFO_FROZEN) if _bool(val) else (info.flags & ~INFO_FROZEN)
    return 0, "", ""


def mds_repaired(c: Context) -> Result:
    _, _, role = c.need(3, "mds repaired <role>")
    try:
        fs, rank = c.mon.view.parse_role(role)
    except ValueError as e:
        raise _err(errno.EINVAL, str(e)) from None
    if rank not in fs.damaged:
        return 0, "nothing to do: rank is not damaged", ""
    pfs = c.mon.pfs.filesystems[fs.fscid]
    pfs.damaged.discard(rank)
    pfs.failed.add(rank)
    c.mon.pfs._touch(pfs, c.wall)
    return 0, f"repaired: restoring rank {fs.fscid}:{rank}", ""


def mds_rmfailed(c: Context) -> Result:
    _, _, role = c.need(3, "mds rmfailed <role> --yes-i-really-mean-it")
    if YES not in c.flags:
        raise _err(errno.EPERM, "WARNING: this can make your filesystem inaccessible! Add "
                   "--yes-i-really-mean-it if you are sure you wish to continue.")
    try:
        fs, rank = c.mon.view.parse_role(role)
    except ValueError as e:
        raise _err(errno.EINVAL, str(e)) from None
    if rank in fs.failed:  # only a failed rank can go: an up one keeps its place in `in`
        pfs = c.mon.pfs.filesystems[fs.fscid]
        pfs.failed.discard(rank)
        pfs.in_.discard(rank)
        c.mon.pfs._touch(pfs, c.wall)
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


# -- the cluster log
def log_last(c: Context) -> Result:
    """`log last [<num>]`: the newest cluster-log entries, oldest first."""
    if len(c.args) > 3 or (len(c.args) == 3 and not c.args[2].isdigit()):
        raise _err(errno.EINVAL, "invalid command; usage: log last [<num>]")
    num = int(c.args[2]) if len(c.args) == 3 else 20
    entries = c.extra["log"](num) if "log" in c.extra else []
    if c.json:
        return 0, "", c.out([{"name": e["who"], "stamp": render.format_stamp(e["stamp"]),
                              "seq": e["seq"], "channel": "cluster",
                              "priority": f"[{e['level']}]", "message": e["message"]}
                             for e in entries])
    return 0, "", "".join(render.log_line(e) + "\n" for e in entries)


# -- health and status
def health_cmd(c: Context) -> Result:
    detail = len(c.args) > 1 and c.args[1] == "detail"
    checks = c.mon.health_checks()
    if c.json:
        return 0, "", c.out(health.health_json(checks, detail=detail))
    return 0, "", health.render_health(checks, detail)


def status_cmd(c: Context) -> Result:
    checks = c.mon.health_checks()
    extra = dict(c.extra.get("status", {}))
    if c.json:
        return 0, "", c.out(render.status_json(c.mon.fsmap, checks, extra))
    return 0, "", render.status_plain(c.mon.fsmap, checks, extra)


# -- config database (precedence: defaults < conf file < this < command line)
def _check_option(name: str, value: str | None = None) -> str:
    canon = cfg.canonical(name)
    if canon not in cfg.OPTIONS:
        raise _err(errno.EINVAL, f"unrecognized config option '{name}'")
    if value is not None:
        try:
            cfg.parse_value(canon, value)
        except ValueError as e:
            raise _err(errno.EINVAL, f"error parsing value: {e}") from None
    return canon


def config_cmd(c: Context) -> Result:
    mon = c.mon
    verb = c.args[1] if len(c.args) > 1 else ""
    if verb == "set":
        _, _, who, name, value = c.need(5, "config set <who> <name> <value>")
        _check_who(who)
        canon = _check_option(name, value)
        mon.config_db.setdefault(who, {})[canon] = value
        mon.outbox.config = True
        mon.apply_config()
        return 0, "", ""
    if verb == "rm":
        _, _, who, name = c.need(4, "config rm <who> <name>")
        canon = cfg.canonical(name)
        if mon.config_db.get(who, {}).pop(canon, None) is not None:
            if not mon.config_db[who]:
                del mon.config_db[who]
            mon.outbox.config = True
            mon.apply_config()
        return 0, "", ""
    if verb == "get":
        if len(c.args) not in (3, 4):
            raise _err(errno.EINVAL, "invalid command; usage: config get <who> [<key>]")
        who = c.args[2]
        resolved = cfg.resolve_for(mon.config_db, who)
        if len(c.args) == 4:
            canon = _check_option(c.args[3])
            value = resolved.get(canon, str(_show(cfg.OPTIONS[canon].default)))
            return 0, "", c.out(value) if c.json else value
        if c.json:
            return 0, "", c.out(resolved)
        return 0, "", "\n".join(f"{k} = {v}" for k, v in sorted(resolved.items()))
    if verb == "dump":
        rows = [
            {"section": who, "name": k, "value": v, "level": "basic",
             "can_update_at_runtime": True, "mask": ""}
            for who in sorted(mon.config_db, key=_who_order)
            for k, v in sorted(mon.config_db[who].items())
        ]
        if c.json:
            return 0, "", c.out(rows)
        lines = [f"{'WHO':<12} {'MASK':<5} {'LEVEL':<9} {'OPTION':<32} {'VALUE':<20} RO"]
        lines += [f"{r['section']:<12} {'':<5} {'basic':<9} {r['name']:<32} {r['value']:<20}"
                  for r in rows]
        return 0, "", "\n".join(line.rstrip() for line in lines)
    raise _err(errno.EINVAL, "invalid command; usage: config set|get|rm|dump ...")


def _check_who(who: str) -> None:
    kind, dot, ident = who.partition(".")
    if who != "global" and (kind not in ("mon", "mds", "osd", "client", "mgr")
                            or (dot and not ident)):
        raise _err(errno.EINVAL, f"unrecognized config target '{who}'")


def _who_order(who: str) -> tuple:
    return (who != "global", "." in who, who)


def _show(value) -> str:
    """An option's default as `ceph config get` prints it (seconds as 15.000000)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


# -- osd blocklist (F1)
def osd_dump(c: Context) -> Result:
    """`osd dump`: the OSDMap (epoch, pools, the osd, the blocklist), Ceph's layout trimmed to
    what mdsemu keeps."""
    osd = c.mon.view_osd
    if c.json:
        return 0, "", c.out({
            "epoch": osd.epoch,
            "fsid": osd.fsid,
            "max_osd": max(osd.osd_addrs, default=-1) + 1,
            "pools": [{"pool": p.id, "pool_name": p.name, "type": 1, "size": 1,
                       "application_metadata": {p.application: {}}}
                      for p in sorted(osd.pools.values(), key=lambda p: p.id)],
            "osds": [{"osd": i, "up": 1, "in": 1, "public_addr": a}
                     for i, a in sorted(osd.osd_addrs.items())],
            "blocklist": {a: render.format_stamp(t) for a, t in sorted(osd.blocklist.items())},
        })
    lines = [f"epoch {osd.epoch}", f"fsid {osd.fsid}"]
    lines += [f"pool {p.id} '{p.name}' replicated size 1 min_size 1 application {p.application}"
              for p in sorted(osd.pools.values(), key=lambda p: p.id)]
    lines.append(f"max_osd {max(osd.osd_addrs, default=-1) + 1}")
    lines += [f"osd.{i} up   in  weight 1 {a}" for i, a in sorted(osd.osd_addrs.items())]
    lines += [f"blocklist {a} expires {render.format_stamp(t)}"
              for a, t in sorted(osd.blocklist.items())]
    return 0, f"dumped osdmap epoch {osd.epoch}", "\n".join(lines)


def osd_pool(c: Context) -> Result:
    if c.args[2:3] != ["ls"]:
        raise _err(errno.EINVAL, "invalid command; usage: osd pool ls")
    names = [p.name for p in sorted(c.mon.view_osd.pools.values(), key=lambda p: p.id)]
    return 0, "", c.out(names) if c.json else "\n".join(names)


def osd_blocklist(c: Context) -> Result:
    mon = c.mon
    verb = c.args[2] if len(c.args) > 2 else "ls"
    if verb == "ls":
        entries = sorted(mon.view_osd.blocklist.items())
        outs = f"listed {len(entries)} entries"
        if c.json:
            return 0, outs, c.out([{"addr": a, "until": render.format_stamp(t)}
                                   for a, t in entries])
        return 0, outs, "\n".join(f"{a} {render.format_stamp(t)}" for a, t in entries)
    if verb == "add":
        if len(c.args) not in (4, 5):
            raise _err(errno.EINVAL, "invalid command; usage: osd blocklist add <addr> [<expire>]")
        addr = c.args[3]
        secs = _float(c.args[4], "expire") if len(c.args) == 5 else 3600.0
        mon.blocklist(addr, c.wall, secs)
        return 0, f"blocklisting {addr} until {render.format_stamp(c.wall + secs)} " \
                  f"({int(secs)} sec)", ""
    if verb == "rm":
        _, _, _, addr = c.need(4, "osd blocklist rm <addr>")
        if addr not in mon.view_osd.blocklist:
            return 0, f"{addr} isn't blocklisted", ""
        del mon.posd.blocklist[addr]
        return 0, f"un-blocklisting {addr}", ""
    raise _err(errno.EINVAL, f"invalid command; unknown verb '{verb}'")


COMMANDS: dict[tuple[str, ...], Callable[[Context], Result]] = {
    ("fs", "new"): fs_new,
    ("fs", "ls"): fs_ls,
    ("fs", "get"): fs_get,
    ("fs", "dump"): fs_dump,
    ("fs", "status"): fs_status,
    ("fs", "set"): fs_set,
    ("fs", "fail"): fs_fail,
    ("fs", "rm"): fs_rm,
    ("fs", "flag"): fs_flag,
    ("fs", "set-default"): fs_set_default,
    ("mds", "fail"): mds_fail,
    ("mds", "stat"): mds_stat,
    ("mds", "freeze"): mds_freeze,
    ("mds", "repaired"): mds_repaired,
    ("mds", "rmfailed"): mds_rmfailed,
    ("mds", "metadata"): mds_metadata,
    ("health",): health_cmd,
    ("log", "last"): log_last,
    ("status",): status_cmd,
    ("config",): config_cmd,
    ("osd", "blocklist"): osd_blocklist,
    ("osd", "dump"): osd_dump,
    ("osd", "pool"): osd_pool,
}


def lookup(args: list[str]) -> Callable[[Context], Result] | None:
    words = [a for a in args if not a.startswith("--")]
    return COMMANDS.get(tuple(words[:2])) or COMMANDS.get(tuple(words[:1]))


def run(mon: MDSMonitor, args: list, fmt: str = "plain", who: str = "client.admin",
        now: float = 0.0, wall: float = 0.0,
        history: Callable[[int], FSMap | None] | None = None,
        extra: dict | None = None) -> Result:
    if not all(isinstance(a, str) for a in args):
        return -errno.EINVAL, "command arguments must be strings", ""
    if fmt not in ("plain", "json", "json-pretty"):
        return -errno.EINVAL, f"unrecognized format '{fmt}'", ""
    handler = lookup(args)
    if handler is None:
        return -errno.EINVAL, f"unrecognized command: {' '.join(args) or '(empty)'}", ""
    ctx = Context(mon, args, fmt, who, now, wall, history, extra or {})
    try:
        result = handler(ctx)
        mon._commit(now, wall)
        return result
    except CommandError as e:
        mon._abort()
        return -e.code, str(e), ""
    except BaseException:
        mon._abort()  # a failed proposal must not leak into the next one
        raise

