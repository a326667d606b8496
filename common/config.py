"""Configuration options, ``ceph.conf`` parsing and layered lookup for mdsemu.

Options keep Ceph's names and defaults.  A daemon's effective value comes from
five layers, lowest first: option default < profile < conf file < runtime
values pushed by the monitor's config db < command-line overrides.

The conf file is read the way Ceph reads ``ceph.conf``: ``[global]``,
``[<type>]`` and ``[<type>.<id>]`` sections (more specific wins); option names
may mix spaces, dashes and underscores; ``#``/``;`` comments; optional double
quotes; backslash line continuation; ``$cluster``, ``$type``, ``$id``,
``$name`` and ``$host`` are expanded.  Unknown options are ignored.
"""

from __future__ import annotations

import math
import re
import socket
from dataclasses import dataclass


class ConfError(Exception):
    """A configuration problem; ``str()`` is ``"<path>:<line>: <problem>"``."""

    def __init__(self, problem: str, path: str | None = None, line: int | None = None):
        self.problem, self.path, self.line = problem, path, line
        where = "" if path is None else path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {problem}" if where else problem)


@dataclass(frozen=True)
class Option:
    name: str
    type: type
    default: object
    help: str
    min: float | None = None
    choices: tuple[str, ...] = ()  # allowed values (lower case) for str options


_OPTION_LIST = [
    Option("mon_host", str, "127.0.0.1:6789", "Address(es) of the monitor."),
    Option("mon_data", str, "/var/lib/mdsemu/mon/$cluster-$id", "Monitor data directory."),
    Option("osd_data", str, "/var/lib/mdsemu/osd/$cluster-$id", "Object store data directory."),
    Option("public_addr", str, "", "Address this daemon binds to (empty: automatic)."),
    Option("admin_socket", str, "",
           "The daemon's admin socket (`mdsemu daemon`), e.g. run/$name.asok; empty: none."),
    Option("fsid", str, "", "Cluster id."),
    Option("mds_beacon_interval", float, 4.0, "Seconds between MDS beacons.", 0),
    Option("mds_beacon_grace", float, 15.0, "Seconds without a beacon before an MDS is laggy.", 0),
    Option("mds_beacon_mon_down_grace", float, 60.0,
           "Seconds after a monitor outage before laggy MDSs are replaced.", 0),
    Option("mon_tick_interval", float, 5.0, "Seconds between monitor ticks.", 0),
    Option("paxos_propose_interval", float, 1.0,
           "Seconds a monitor service gathers changes (beacons) into one proposal after the "
           "previous commit; commands and the tick's decisions are proposed at once.", 0),
    Option("paxos_min_wait", float, 0.05,
           "Seconds changes wait to be batched when nothing was committed for "
           "paxos_propose_interval.", 0),
    Option("mon_globalid_prealloc", int, 10000,
           "Global ids the monitor reserves in its store at a time (one write per this many "
           "sessions).", 1),
    Option("mon_health_log_update_period", float, 5.0,
           "Least seconds between cluster-log updates of a health check of the same severity.",
           0),
    Option("mds_reconnect_timeout", float, 45.0, "Seconds clients have to reconnect.", 0),
    Option("mds_replay_interval", float, 1.0, "Seconds between standby-replay journal polls.", 0),
    Option("mds_join_fs", str, "", "File system this MDS prefers to join."),
    Option("mds_enforce_unique_name", bool, True, "Fail an older MDS booting with the same name."),
    Option("mon_mds_blocklist_interval", float, 86400.0,
           "Seconds a failed MDS stays blocklisted.", 1),
    Option("mon_allow_pool_delete", bool, False, "Allow `osd pool rm`."),
    Option("mon_max_mdsmap_epochs", int, 500, "Older FSMap epochs the monitor keeps.", 1),
    Option("mds_log_events_per_segment", int, 1024, "Journal events per log segment.", 1),
    Option("mds_log_max_segments", int, 128, "Journal segments kept before trimming.", 8),
    Option("log_file", str, "", "Log file path (empty: standard error)."),
    Option("log_format", str, "", "Log output format.", choices=("", "console", "json")),
    Option("log_level", str, "info", "Minimum log level.",
           choices=("debug", "info", "warning", "error")),
    Option("mds_standby_replay", bool, False, "Legacy: follow an active rank's journal."),
    Option("mds_standby_for_name", str, "", "Legacy: prefer taking over from this daemon."),
    Option("mds_standby_for_rank", int, -1, "Legacy: prefer taking over this rank."),
    Option("mds_standby_for_fscid", int, -1, "Legacy: prefer ranks of this file system."),
    Option("mon_force_standby_active", bool, True,
           "Allow standby-replay daemons to take any rank."),
    Option("auth_cluster_required", str, "none", "Cluster authentication.",
           choices=("none", "cephx")),
    Option("keyring", str, "", "Path of the keyring file."),
    Option("auth_service_ticket_ttl", float, 3600.0,
           "Seconds a cephx service ticket (for an MDS or osd) is valid.", 1),
    Option("cephx_sign_messages", bool, True,
           "Sign every message after the cephx handshake with the session key."),
    Option("ms_max_message_size", int, 16777216, "Largest accepted message in bytes.", 1024),
    Option("mds_mon_shutdown_timeout", float, 5.0,
           "Seconds to wait for the monitor to ack a final beacon.", 0),
    Option("mds_heartbeat_grace", float, 15.0,
           "Seconds an MDS may be internally stuck before skipping beacons.", 0),
    Option("mds_tick_interval", float, 5.0, "Seconds between MDS upkeep ticks.", 0),
    Option("mds_session_blocklist_on_timeout", bool, True,
           "Blocklist clients evicted for timeout."),
    Option("mds_session_blocklist_on_evict", bool, True, "Blocklist clients evicted by command."),
    Option("mds_defer_session_stale", bool, True,
           "Do not mark idle sessions with nothing to revoke stale."),
    Option("mds_early_reply", bool, True, "Reply to clients before the journal commit."),
    Option("mds_session_timeout", int, 60,
           "session_timeout of a new file system (then `fs set`).", 1),
    Option("mds_session_autoclose", int, 300,
           "session_autoclose of a new file system (then `fs set`).", 1),
    Option("mdsemu_nfs_session_timeout", int, 300,
           "The CephFS session timeout an NFS head asks for (Ganesha's 300 s): a dead head's "
           "session, and its locks, last that long unless its next incarnation resets it.", 0),
    Option("mds_log_pause", bool, False, "Hold journal writes (a test aid, as in Ceph)."),
    Option("mdsemu_log_flush_interval", float, 0.02,
           "Seconds an event answered unsafe may wait, batched, for the journal flush (Ceph "
           "flushes at its tick or sooner; a tick's wait, 0.25 s fast, halved the creates per "
           "second of bench/client_ops.py against this); 0: flush at once.", 0),
    Option("mdsemu_log_max_unflushed", int, 4096,
           "Mutations applied but not yet journaled (answered unsafe) an MDS holds before a "
           "new one waits: Ceph's journaler and objecter throttle its outstanding writes, so "
           "a client cannot pile up unsafe requests while the osd is away (0: no bound).", 0),
    Option("mds_deny_all_reconnect", bool, False, "Refuse every client reconnect."),
    Option("mds_log_warn_factor", float, 2.0, "Journal trim warning threshold multiplier.", 0),
    Option("mds_op_complaint_time", float, 30.0, "Seconds before a request is slow.", 0),
    Option("osd_op_complaint_time", float, 30.0,
           "Seconds before an osd op (a metadata IO) is slow.", 0),
    Option("objecter_timeout", float, 10.0,
           "Seconds an osd op may go unanswered before its session counts as lost and its "
           "ops are resent, in issue order, on a new one.", 0.01),
    Option("defer_client_eviction_on_laggy_osds", bool, True,
           "Do not evict unresponsive clients while the osd is laggy."),
    Option("mds_health_summarize_threshold", int, 10,
           "Summarise health items beyond this count.", 0),
    Option("mon_client_hunt_interval", float, 3.0,
           "Seconds between monitor connection attempts.", 0),
    Option("mon_client_ping_timeout", float, 30.0,
           "Seconds without an answer from the monitor before a daemon drops the session "
           "and hunts for a monitor again.", 0),
    Option("mon_client_timeout", float, 30.0,
           "Seconds a command keeps trying to reach the monitor.", 0),
    # Ceph's messenger fault injection (common/inject.py); ms_inject_seed is ours: Ceph's
    # choices are unseeded, ours replay.
    Option("ms_inject_socket_failures", int, 0,
           "Shut a connection on about one in N socket reads or sends (0: never).", 0),
    Option("ms_inject_delay_type", str, "",
           "Peer types (e.g. 'mds osd') whose received messages may be delayed."),
    Option("ms_inject_delay_probability", float, 0.0,
           "Probability that a message from such a peer is delayed.", 0),
    Option("ms_inject_delay_max", float, 1.0, "Longest injected delay in seconds.", 0),
    Option("ms_blackhole_mon", bool, False, "Silently drop messages to and from monitors."),
    Option("ms_blackhole_osd", bool, False, "Silently drop messages to and from osds."),
    Option("ms_blackhole_mds", bool, False, "Silently drop messages to and from MDSs."),
    Option("ms_blackhole_client", bool, False, "Silently drop messages to and from clients."),
    Option("ms_blackhole_from", str, "",
           "Entity names or types (e.g. 'mds.a client') whose messages are dropped on "
           "receipt: a one-way partition (ours; Ceph's ms_blackhole_* drop both ways)."),
    Option("ms_inject_seed", int, 0, "Seed of every injected fault's random choice.", 0),
    Option("ms_send_timeout", float, 30.0,
           "Seconds one send to a peer that does not read may block before the peer is "
           "disconnected (its queued messages are bounded meanwhile).", 0),
    Option("ms_max_queued_messages", int, 1000,
           "Messages queued for one peer (maps coalesced) before it is disconnected.", 1),
    Option("mdsemu_profile", str, "", "Timing profile.", choices=("", "ceph", "fast")),
]
OPTIONS: dict[str, Option] = {o.name: o for o in _OPTION_LIST}

PROFILES: dict[str, dict[str, object]] = {
    "ceph": {},
    "fast": {
        "mds_beacon_interval": 0.25,
        "mds_beacon_grace": 1.0,
        "mon_tick_interval": 0.1,
        "paxos_propose_interval": 0.02,
        "paxos_min_wait": 0.001,
        "mds_reconnect_timeout": 2.0,
        "mds_session_timeout": 3,  # renew every second
        "mds_session_autoclose": 6,
        "mdsemu_nfs_session_timeout": 5,
        "mds_replay_interval": 0.1,
        "mds_tick_interval": 0.25,
        "mds_mon_shutdown_timeout": 1.0,
        "mon_client_hunt_interval": 0.2,
        "mon_client_ping_timeout": 3.0,
        # T3's window after a (single) mon starts: 2 x grace rather than Ceph's 60 s.
        "mds_beacon_mon_down_grace": 2.0,
        "mds_op_complaint_time": 2.0,
        "osd_op_complaint_time": 2.0,
        "objecter_timeout": 3.0,
        "ms_send_timeout": 3.0,
    },
}

_SEPARATORS = re.compile(r"[\s_-]+")
_BOOLS = {"true": True, "yes": True, "on": True, "1": True,
          "false": False, "no": False, "off": False, "0": False}
_COMMENT = re.compile(r"(?:^|\s)[#;].*$")
_METAVAR = re.compile(r"\$(?:\{(cluster|type|id|name|host)\}|(cluster|type|id|name|host)(?!\w))")


def canonical(name: str) -> str:
    """Canonical option name: stripped, lower case, separator runs -> ``_``."""
    return _SEPARATORS.sub("_", name.strip().lower())


def _option(name: str) -> Option:
    opt = OPTIONS.get(canonical(name))
    if opt is None:
        raise KeyError(f"unknown option {name!r}")
    return opt


def parse_value(name: str, raw: object) -> object:
    """Convert ``raw`` to the type of option ``name``, checking range and choices."""
    opt = _option(name)
    text = raw.strip() if isinstance(raw, str) else None
    if opt.type is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        if text is not None and text.lower() in _BOOLS:
            return _BOOLS[text.lower()]
        raise ValueError(
            f"{opt.name}: expected a boolean (true/false/yes/no/on/off/1/0), got {raw!r}")
    if opt.type is str:
        if text is None:
            raise ValueError(f"{opt.name}: expected a string, got {raw!r}")
        if opt.choices:
            if text.lower() not in opt.choices:
                allowed = ", ".join(repr(c) for c in opt.choices)
                raise ValueError(f"{opt.name}: expected one of {allowed}, got {raw!r}")
            return text.lower()
        return text
    kind = "an integer" if opt.type is int else "a number"
    try:
        if isinstance(raw, bool):
            raise TypeError
        if opt.type is int:
            value = raw if isinstance(raw, int) else int(text)  # type: ignore[arg-type]
        else:
            value = float(raw if isinstance(raw, int | float) else text)  # type: ignore[arg-type]
            if not math.isfinite(value):
                raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"{opt.name}: expected {kind}, got {raw!r}") from None
    if opt.min is not None and value < opt.min:
        raise ValueError(f"{opt.name}: {value!r} is below the minimum {opt.min:g}")
    return value


@dataclass
class ConfFile:
    path: str
    # section name -> canonical option -> (raw value, line number)
    sections: dict[str, dict[str, tuple[str, int]]]


def _logical_lines(text: str):
    """Yield (first line number, text), joining backslash continuations (not of comments)."""
    start, parts = 0, []
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        if not parts:
            start = number
        line = line.rstrip(" \t")
        is_comment = not parts and line.lstrip()[:1] in ("#", ";")
        if line.endswith("\\") and not is_comment:
            parts.append(line[:-1])
            continue
        parts.append(line)
        yield start, "".join(parts)
        parts = []
    if parts:
        yield start, "".join(parts)


def _strip_comment(text: str) -> str:
    return _COMMENT.sub("", text).strip()


def _raw_value(text: str, path: str, line: int) -> str:
    text = text.strip()
    if not text.startswith('"'):
        return _strip_comment(text)
    end = text.find('"', 1)
    if end < 0:
        raise ConfError("unterminated quoted value", path, line)
    if _strip_comment(text[end + 1:]):
        raise ConfError("unexpected text after quoted value", path, line)
    return text[1:end]


def parse_conf_text(text: str, path: str = "<string>") -> ConfFile:
    """Parse ``ceph.conf`` text; raise ConfError naming ``path`` and line on syntax errors."""
    conf = ConfFile(path, {})
    section: dict[str, tuple[str, int]] | None = None
    for line, content in _logical_lines(text):
        content = content.strip()
        if not content or content[0] in "#;":
            continue
        if content.startswith("["):
            end = content.find("]")
            if end < 0:
                raise ConfError(f"unclosed section header {content!r}", path, line)
            if _strip_comment(content[end + 1:]):
                raise ConfError("unexpected text after section header", path, line)
            name = content[1:end].strip()
            if not name:
                raise ConfError("empty section name", path, line)
            section = conf.sections.setdefault(name, {})
            continue
        key, eq, value = content.partition("=")
        if not eq:
            raise ConfError(f"expected 'key = value', got {content!r}", path, line)
        key = canonical(key)
        if not key:
            raise ConfError("empty option name", path, line)
        if section is None:
            raise ConfError(f"option outside of any section: {key}", path, line)
        section[key] = (_raw_value(value, path, line), line)
    return conf


def load_conf(path: str) -> ConfFile:
    """Read and parse the conf file at ``path``."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfError(f"cannot read: {getattr(e, 'strerror', None) or e}", path) from None
    return parse_conf_text(text, path)


def _applicable(name: str) -> list[str]:
    name = name.strip()
    return list(dict.fromkeys(["global", name.partition(".")[0], name]))


def resolve_for(db: dict[str, dict[str, str]], name: str) -> dict[str, str]:
    """Merge the monitor config db entries ``global < <type> < <type>.<id>`` for ``name``."""
    merged: dict[str, str] = {}
    for who in _applicable(name):
        for option, raw in db.get(who, {}).items():
            merged[canonical(option)] = raw
    return merged


class Config:
    """Effective configuration of one entity (``mds.a``, ``mon.a``, ``client.admin``)."""

    def __init__(self, name: str, conf: ConfFile | None = None,
                 overrides: dict[str, object] | None = None, profile: str | None = None,
                 cluster: str = "ceph"):
        self.name = name.strip()
        self.entity_type, _, self.entity_id = self.name.partition(".")
        if not self.entity_type:
            raise ValueError(f"bad entity name {name!r}")
        self.cluster = cluster
        self._vars = {"cluster": cluster, "type": self.entity_type,
                      "id": self.entity_id, "name": self.name}
        self.runtime_errors: list[str] = []
        self.generation = 0  # bumped on every runtime change (cheap change detection)
        self._runtime: dict[str, object] = {}
        self._overrides: dict[str, object] = {}
        self._file: dict[str, object] = {}
        for section in _applicable(self.name) if conf else []:
            for key, (raw, line) in conf.sections.get(section, {}).items():
                if key in OPTIONS:
                    try:
                        self._file[key] = self._parse(key, raw)
                    except ValueError as e:
                        raise ConfError(str(e), conf.path, line) from None
        for key, value in (overrides or {}).items():
            self.set_override(key, value)
        if profile is None:
            profile = str(self._overrides.get("mdsemu_profile") or
                          self._file.get("mdsemu_profile") or "")
        if profile and profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}")
        self.profile = profile or "ceph"
        self._profile = {k: parse_value(k, v) for k, v in PROFILES[self.profile].items()}

    def _expand(self, text: str) -> str:
        if "$" not in text:
            return text
        return _METAVAR.sub(lambda m: self._var(m.group(1) or m.group(2)), text)

    def _var(self, key: str) -> str:
        return socket.gethostname() if key == "host" else self._vars[key]

    def _parse(self, option: str, raw: object) -> object:
        return parse_value(option, self._expand(raw) if isinstance(raw, str) else raw)

    def _lookup(self, option: str) -> tuple[str, object]:
        opt = _option(option)
        for source, layer in (("override", self._overrides), ("mon", self._runtime),
                              ("file", self._file), ("profile", self._profile)):
            if opt.name in layer:
                return source, layer[opt.name]
        default = opt.default
        return "default", self._expand(default) if isinstance(default, str) else default

    def get(self, option: str) -> object:
        """Effective value of ``option`` (any spelling); KeyError if unknown."""
        return self._lookup(option)[1]

    __getitem__ = get

    def source(self, option: str) -> str:
        """Layer providing the value: default, profile, file, mon or override."""
        return self._lookup(option)[0]

    def dump(self) -> dict[str, object]:
        return {key: self.get(key) for key in OPTIONS}

    def set_runtime(self, values: dict[str, object]) -> list[str]:
        """Replace the runtime (mon config db) layer; return the options whose value changed.

        Unknown options are ignored; bad values are skipped and described in
        ``runtime_errors``.
        """
        before = self.dump()
        runtime: dict[str, object] = {}
        errors: list[str] = []
        for option, raw in values.items():
            key = canonical(option)
            if key in OPTIONS:
                try:
                    runtime[key] = self._parse(key, raw)
                except ValueError as e:
                    errors.append(str(e))
        self._runtime, self.runtime_errors = runtime, errors
        self.generation += 1
        after = self.dump()
        return [key for key in OPTIONS if before[key] != after[key]]

    def set_override(self, option: str, value: object) -> None:
        """Set a command-line override (highest precedence)."""
        self._overrides[_option(option).name] = self._parse(option, value)
        self.generation += 1
