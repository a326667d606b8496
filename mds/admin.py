"""`mdsemu tell mds.<who> <command>`: what a running MDS reports about itself (like Ceph's
`ceph tell mds.X status|session ls|client ls`). Pure: it reads a snapshot of the daemon."""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass

from common import states
from common.config import canonical
from mds.sessionmap import evicting_line


def _session_json(s, now: float, reconnecting: bool) -> dict:
    """One entry of `session ls`, in the layout of Ceph's."""
    return {
        "id": s.num,
        "entity": {"name": {"type": "client", "num": s.num},
                   "addr": {"type": "v1", "addr": s.addr.split("/")[0],
                            "nonce": int(s.addr.split("/")[1]) if "/" in s.addr else 0}},
        "state": s.state,
        "num_leases": 0,
        "num_caps": 0,
        "request_load_avg": s.requests,
        "uptime": round(now - s.opened, 3),
        "requests_in_flight": 0,
        "reconnecting": reconnecting,
        "last_seen": round(now - s.last_seen, 3) if s.last_seen else None,
        "inst": f"{s.client} v1:{s.addr}",
        "client_metadata": s.metadata,
    }


def _subtrees_json(daemon) -> list[dict]:
    """`get subtrees`: the subtree roots this rank holds or handed to another rank."""
    data = daemon.data
    if data is None or data.ns is None:
        return []
    ns, rank = data.ns, data.ns.rank
    out = []
    for ino, auth in sorted([(i, rank) for i in ns.auth_roots] + list(ns.exported.items())):
        if ino not in ns.inodes:
            continue
        pin = ns.inodes[ino].xattrs.get("ceph.dir.pin")
        out.append({"is_auth": auth == rank, "auth_first": auth,
                    "export_pin": int(pin) if pin is not None else -1,
                    "dir": {"path": ns.path_of(ino) if ino != 1 else "",
                            "ino": ino, "frozen": ino in data.frozen}})
    return out


def _evict_target(args: list[str], smap):
    """`session evict <id>` / `client evict id=<id>`: the session, or an error text."""
    words = [a.removeprefix("id=") for a in args]
    if len(words) != 1 or not words[0].isdigit():
        return None, "usage: session evict <client id>"
    s = smap.by_num(int(words[0]))
    return s, None if s is not None else f"session {words[0]} not found"


def _rank_status(daemon) -> dict:
    """The part of `status` the rank adds in some states (Ceph's MDSRank::dump_status): in
    up:reconnect, the clients not yet reconnected, as Ceph streams a set of client ids."""
    if daemon.state == states.RECONNECT:
        gather = sorted(s.num for c in daemon.sessionmap.gather
                        if (s := daemon.sessionmap.get(c)) is not None)
        return {"reconnect_status": {"client_reconnect_gather": ",".join(map(str, gather))}}
    return {}


def config_client(args: list[str], smap) -> tuple[int, str]:
    """`session config <client_id> timeout [<seconds>]` (Ceph's MDSRank::config_client): set
    the session's own timeout in its client metadata (0: never time out), or with no value
    remove it. Returns (rc, error text)."""
    if len(args) not in (2, 3) or not args[0].lstrip("-").isdigit():
        return -errno.EINVAL, "usage: session config <client_id> <option> [<value>]"
    s = smap.by_num(int(args[0]))
    if s is None:
        return -errno.ENOENT, f"session {args[0]} not in sessionmap"
    if args[1] != "timeout":
        return -errno.EINVAL, f"Invalid config option: {args[1]}"
    if len(args) == 2:
        if "timeout" not in s.metadata:
            return -errno.ENODATA, ""
        del s.metadata["timeout"]
    elif not args[2].isdigit():  # strtoul with nothing left over, as Ceph parses it
        return -errno.EINVAL, f"Invalid config for timeout: {args[2]}"
    else:
        s.metadata["timeout"] = args[2]
    return 0, ""


@dataclass(frozen=True)
class Evict:
    """The shell evicts `session` (logging `message`, blocklisting if asked)."""

    session: object
    message: str
    blocklist: bool


@dataclass(frozen=True)
class ConfigChanged:
    """The shell acts on options changed at run time."""

    names: list[str]


Effect = Evict | ConfigChanged


def run(args: list[str], fmt: str, daemon, now: float) -> tuple[tuple[int, str, str],
                                                                 list[Effect]]:
    """Answer one command from what the daemon holds: ((rc, outs, outb), what the shell must
    do then); rc is 0 or a negative errno. Starts nothing itself."""
    effects: list[Effect] = []
    return _answer(args, fmt, daemon, now, effects), effects


def _answer(args: list[str], fmt: str, daemon, now: float,
            effects: list[Effect]) -> tuple[int, str, str]:
    words = " ".join(args)
    sm = daemon.sm
    if words == "status":
        fs = daemon.fs
        out = {
            "cluster_fsid": daemon.fsid,
            "whoami": sm.rank if sm else -1,
            "id": daemon.gid,
            "want_state": states.name(sm.want_state if sm else states.BOOT),
            "state": states.name(daemon.state),
            "fs_name": fs.fs_name if fs else "",
            **_rank_status(daemon),
            "mdsmap_epoch": sm.effective_epoch if sm else 0,
            "osdmap_epoch": daemon.osdmap.epoch,
            "osdmap_epoch_barrier": daemon.data.store.min_epoch if daemon.data else 0,
            "uptime": round(now - daemon.started, 3),
        }
    elif words in ("session ls", "client ls", "session list", "client list"):
        smap = daemon.sessionmap
        out = [_session_json(s, now, s.client in smap.gather)
               for s in sorted(smap.sessions.values(), key=lambda s: s.num)]
    elif words == "damage ls":  # the damage table (DirFragDamage entries, as Ceph dumps)
        data = daemon.data
        damaged = data.store.damaged if data is not None and data.ns is not None else {}
        out = [{"damage_type": "dir_frag", "id": ino, "ino": ino, "frag": "*",
                "path": data.ns.path_of(ino)} for ino in sorted(damaged)]
    elif words == "get subtrees":
        out = _subtrees_json(daemon)
    elif args[:2] in (["session", "evict"], ["client", "evict"], ["session", "kill"]):
        s, error = _evict_target(args[2:], daemon.sessionmap)
        if s is None:
            return -(errno.EINVAL if error.startswith("usage") else errno.ENOENT), error, ""
        blocklist = daemon.config.get("mds_session_blocklist_on_evict")
        effects.append(Evict(s, evicting_line(s, blocklist), blocklist))
        return 0, "", ""
    elif args[:2] in (["session", "config"], ["client", "config"]):
        rc, error = config_client(args[2:], daemon.sessionmap)
        return rc, error, ""
    elif len(args) == 3 and args[:2] == ["config", "get"]:
        try:
            value = daemon.config.get(args[2])
        except KeyError as e:
            return -errno.ENOENT, str(e.args[0]), ""
        out = {args[2]: _conf_str(value)}
    elif len(args) == 4 and args[:2] == ["config", "set"]:
        try:
            before = daemon.config.get(args[2])
            daemon.config.set_override(args[2], args[3])
        except KeyError as e:
            return -errno.ENOENT, str(e.args[0]), ""
        except ValueError as e:
            return -errno.EINVAL, str(e), ""
        if daemon.config.get(args[2]) != before:
            effects.append(ConfigChanged([canonical(args[2])]))
        out = {"success": ""}
    else:
        return -errno.EINVAL, f"unrecognized command '{words}'", ""
    text = json.dumps(out, indent=4) if fmt != "json" else json.dumps(out, separators=(",", ":"))
    return 0, "", text


def _conf_str(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
