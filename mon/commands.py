"""Admin commands with Ceph's grammar, messages and errno (ref §14, X6, X7, C7, F5, F7, S7).

`run(mon, args, fmt, who, now, wall)` runs a command in one proposal (`MDSMonitor.propose`) and
returns its `Effects`, whose reply is (rc, outs, outb) like Ceph's mon commands: rc is 0 or a
negative errno, outs the status line for stderr, outb the output for stdout. The `fs` and `mds`
handlers live in `fs_commands` and `mds_commands`.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from common import config as cfg
from common import health, render, summary
from common.fsmap import FSMap
from mon import fs_commands as fsc
from mon import mds_commands as mdsc
from mon.cmdbase import CommandError, Context, Result, _err, _float
from mon.mds_monitor import MDSMonitor
from mon.nfs_services import nfs_cluster
from mon.proposal import Effects


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
        return 0, "", c.out(summary.status_json(c.mon.fsmap, checks, extra))
    return 0, "", summary.status_plain(c.mon.fsmap, checks, extra)


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
        mon.config_set(who, _check_option(name, value), value)
        return 0, "", ""
    if verb == "rm":
        _, _, who, name = c.need(4, "config rm <who> <name>")
        mon.config_rm(who, cfg.canonical(name))
        return 0, "", ""
    if verb == "get":
        if len(c.args) not in (3, 4):
            raise _err(errno.EINVAL, "invalid command; usage: config get <who> [<key>]")
        who = c.args[2]
        resolved = mon.configs.values_for(who)
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
                       "application_metadata": {p.application: {}} if p.application else {}}
                      for p in sorted(osd.pools.values(), key=lambda p: p.id)],
            "osds": [{"osd": i, "up": 1, "in": 1, "public_addr": a}
                     for i, a in sorted(osd.osd_addrs.items())],
            "blocklist": {a: render.format_stamp(t) for a, t in sorted(osd.blocklist.items())},
        })
    lines = [f"epoch {osd.epoch}", f"fsid {osd.fsid}"]
    lines += [_pool_line(p) for p in sorted(osd.pools.values(), key=lambda p: p.id)]
    lines.append(f"max_osd {max(osd.osd_addrs, default=-1) + 1}")
    lines += [f"osd.{i} up   in  weight 1 {a}" for i, a in sorted(osd.osd_addrs.items())]
    lines += [f"blocklist {a} expires {render.format_stamp(t)}"
              for a, t in sorted(osd.blocklist.items())]
    return 0, f"dumped osdmap epoch {osd.epoch}", "\n".join(lines)


def _pool_line(p) -> str:
    app = f" application {p.application}" if p.application else ""
    return f"pool {p.id} '{p.name}' replicated size 1 min_size 1{app}"


def osd_pool(c: Context) -> Result:
    """`osd pool create|ls|rm` (Ceph's OSDMonitor: "osd pool create", "osd pool ls",
    "osd pool delete" with _check_remove_pool)."""
    verb = c.args[2] if len(c.args) > 2 else ""
    osd = c.mon.view_osd
    if verb == "ls":
        if len(c.args) > 4 or c.args[3:] not in ([], ["detail"]):
            raise _err(errno.EINVAL, "invalid command; usage: osd pool ls [detail]")
        pools = sorted(osd.pools.values(), key=lambda p: p.id)
        if len(c.args) == 4:
            if c.json:
                return 0, "", c.out([{"pool_id": p.id, "pool_name": p.name, "type": 1,
                                      "size": 1, "min_size": 1, "application_metadata":
                                      {p.application: {}} if p.application else {}}
                                     for p in pools])
            return 0, "", "\n".join(_pool_line(p) for p in pools)
        names = [p.name for p in pools]
        return 0, "", c.out(names) if c.json else "\n".join(names)
    if verb == "create":
        if len(c.args) not in (4, 5, 6):
            raise _err(errno.EINVAL, "invalid command; usage: osd pool create <pool> "
                                     "[<pg_num>] [<pgp_num>]")
        name = c.args[3]
        for n in c.args[4:]:
            _pg_num(n)
        if osd.pool_by_name(name) is not None:
            return 0, f"pool '{name}' already exists", ""
        c.mon.posd.create_pool(name, application="")
        return 0, f"pool '{name}' created", ""
    if verb in ("rm", "delete"):
        if len(c.args) not in (4, 5):
            raise _err(errno.EINVAL, "invalid command; usage: osd pool rm <pool> [<pool2>] "
                                     "[--yes-i-really-really-mean-it]")
        name = c.args[3]
        pool = osd.pool_by_name(name)
        if pool is None:
            return 0, f"pool '{name}' does not exist", ""
        if c.args[4:] != [name] or "--yes-i-really-really-mean-it" not in c.flags:
            raise _err(errno.EPERM, f"WARNING: this will *PERMANENTLY DESTROY* all data stored "
                       f"in pool {name}.  If you are *ABSOLUTELY CERTAIN* that is what you want, "
                       f"pass the pool name *twice*, followed by --yes-i-really-really-mean-it.")
        if any(pool.id == fs.metadata_pool or pool.id in fs.data_pools
               for fs in c.mon.view.filesystems.values()):
            raise _err(errno.EBUSY, f"pool '{name}' is in use by CephFS")
        if not c.mon.opt("mon_allow_pool_delete"):
            raise _err(errno.EPERM, "pool deletion is disabled; you must first set the "
                       "mon_allow_pool_delete config option to true before you can destroy a "
                       "pool")
        del c.mon.posd.pools[pool.id]
        return 0, f"pool '{name}' removed", ""
    raise _err(errno.EINVAL, "invalid command; usage: osd pool create|ls|rm ...")


def _pg_num(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise _err(errno.EINVAL, f"'pg_num' must be greater than 0, got '{text}'")
    return int(text)


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
        mon.posd.blocklist.pop(addr)
        return 0, f"un-blocklisting {addr}", ""
    raise _err(errno.EINVAL, f"invalid command; unknown verb '{verb}'")


COMMANDS: dict[tuple[str, ...], Callable[[Context], Result]] = {
    ("fs", "new"): fsc.fs_new,
    ("fs", "ls"): fsc.fs_ls,
    ("fs", "get"): fsc.fs_get,
    ("fs", "dump"): fsc.fs_dump,
    ("fs", "status"): fsc.fs_status,
    ("fs", "set"): fsc.fs_set,
    ("fs", "fail"): fsc.fs_fail,
    ("fs", "rm"): fsc.fs_rm,
    ("fs", "flag"): fsc.fs_flag,
    ("fs", "set-default"): fsc.fs_set_default,
    ("fs", "lsflags"): fsc.fs_lsflags,
    ("fs", "compat"): fsc.fs_compat,
    ("fs", "rename"): fsc.fs_rename,
    ("mds", "fail"): mdsc.mds_fail,
    ("mds", "stat"): mdsc.mds_stat,
    ("mds", "freeze"): mdsc.mds_freeze,
    ("mds", "repaired"): mdsc.mds_repaired,
    ("mds", "rmfailed"): mdsc.mds_rmfailed,
    ("mds", "metadata"): mdsc.mds_metadata,
    ("mds", "ok-to-stop"): mdsc.mds_ok_to_stop,
    ("mds", "rm"): mdsc.mds_rm,
    ("health",): health_cmd,
    ("log", "last"): log_last,
    ("status",): status_cmd,
    ("config",): config_cmd,
    ("osd", "blocklist"): osd_blocklist,
    ("osd", "dump"): osd_dump,
    ("osd", "pool"): osd_pool,
    ("nfs", "cluster"): nfs_cluster,
}


def lookup(args: list[str]) -> Callable[[Context], Result] | None:
    words = [a for a in args if not a.startswith("--")]
    return COMMANDS.get(tuple(words[:2])) or COMMANDS.get(tuple(words[:1]))


def run(mon: MDSMonitor, args: list, fmt: str = "plain", who: str = "client.admin",
        now: float = 0.0, wall: float = 0.0,
        history: Callable[[int], FSMap | None] | None = None,
        extra: dict | None = None) -> Effects:
    """Run one command in its own proposal: committed if the handler returns, aborted (nothing
    kept) if it raises. The reply in the Effects is (rc, outs, outb)."""
    if not all(isinstance(a, str) for a in args):
        return Effects(reply=(-errno.EINVAL, "command arguments must be strings", ""))
    if fmt not in ("plain", "json", "json-pretty"):
        return Effects(reply=(-errno.EINVAL, f"unrecognized format '{fmt}'", ""))
    handler = lookup(args)
    if handler is None:
        return Effects(reply=(-errno.EINVAL,
                              f"unrecognized command: {' '.join(args) or '(empty)'}", ""))
    ctx = Context(mon, args, fmt, who, now, wall, history, extra or {})
    try:
        with mon.propose(now, wall) as effects:
            effects.reply = handler(ctx)
    except CommandError as e:
        return Effects(reply=(-e.code, str(e), ""))
    return effects

