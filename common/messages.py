"""Message types: frozen dataclasses with explicit validation (DESIGN §2.3).

`decode(d)` turns a received map into a message: unknown fields are ignored, missing or
mistyped fields raise MessageError naming the field. `encode(msg)` gives the map to send.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field

PROTOCOL_VERSION = 1


class MessageError(Exception):
    """A frame that decoded but is not a valid message."""


REGISTRY: dict[str, type] = {}


def message(tag: str):
    def wrap(cls):
        cls = dataclass(frozen=True, slots=True)(cls)
        cls.TYPE = tag
        REGISTRY[tag] = cls
        return cls

    return wrap


def _checker(hint: object):
    """Whether a received value fits a field's type hint (a float field takes an int, an int
    field no bool), as a function worked out once per hint: decoding runs per message."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        subs = tuple(_checker(h) for h in typing.get_args(hint))
        return lambda v: any(c(v) for c in subs)
    if hint is type(None):
        return lambda v: v is None
    if hint is float:
        return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if hint is int:
        return lambda v: isinstance(v, int) and not isinstance(v, bool)
    if origin is list or hint is list:
        return lambda v: isinstance(v, list)
    if origin is dict or hint is dict:
        return lambda v: isinstance(v, dict)
    return lambda v: isinstance(v, hint)


_SPECS: dict[type, tuple] = {}  # class -> ((name, hint, check, required), ...)
_NAMES: dict[type, tuple[str, ...]] = {}


def _spec(cls) -> tuple:
    spec = _SPECS.get(cls)
    if spec is None:
        hints = typing.get_type_hints(cls)
        spec = _SPECS[cls] = tuple(
            (f.name, hints[f.name], _checker(hints[f.name]),
             f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(cls))
    return spec


def decode(d: dict):
    cls = REGISTRY.get(d.get("type"))
    if cls is None:
        raise MessageError(f"unknown message type {d.get('type')!r}")
    kwargs = {}
    for name, hint, check, required in _spec(cls):
        if name in d:
            value = d[name]
            if not check(value):
                raise MessageError(f"{cls.TYPE}.{name}: expected {hint}, got "
                                   f"{type(value).__name__}")
            if hint is float and isinstance(value, int):
                value = float(value)
            kwargs[name] = value
        elif required:
            raise MessageError(f"{cls.TYPE}: missing field '{name}'")
    return cls(**kwargs)


def encode(msg) -> dict:
    cls = type(msg)
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    d = {name: getattr(msg, name) for name in names}
    d["type"] = msg.TYPE
    return d


# -- handshake
@message("hello")
class Hello:
    entity: str  # "mds.a", "client.admin", "mon.a"
    proto: int = PROTOCOL_VERSION
    global_id: int = 0  # a reconnecting daemon keeps its gid
    auth: str = ""  # "cephx": the peer authenticates (common/cephx.py) before hello_ok


@message("hello_ok")
class HelloOk:
    global_id: int
    fsid: str
    mon: str = "mon.a"
    auth: bytes = b""  # cephx: the monitor's sealed reply, or a service's proof


# -- cephx (common/cephx.py): between hello and hello_ok, then on the monitor session
@message("auth_challenge")
class AuthChallenge:
    service: str  # "mon", "mds" or "osd": what the answer must prove
    challenge: bytes


@message("auth_request")
class AuthRequest:
    challenge: bytes = b""  # mon: the client's own challenge
    proof: bytes = b""  # mon: HMAC(secret, both challenges)
    authorizer: dict = field(default_factory=dict)  # mds/osd: the ticket and its fresh proof
    addr: str = ""  # mds/osd: the peer's address instance, checked against the socket


@message("auth_get_tickets")
class AuthGetTickets:
    services: list  # of "mds", "osd"


@message("auth_tickets")
class AuthTickets:
    tickets: list  # of cephx.issue_ticket dicts


@message("auth_rotating")
class AuthRotating:
    """The monitor to the daemons of a service: its rotating secrets, sealed with the
    session key (frames are signed, not encrypted)."""
    service: str
    sealed: bytes


@message("error")
class Error:
    code: int
    message: str


# -- MDS beacons (B1, B4)
@message("mds_beacon")
class Beacon:
    global_id: int
    name: str
    state: int
    seq: int
    version: int  # the last map epoch this daemon has processed
    addr: str
    fs: str = ""  # mds_join_fs
    health: list = field(default_factory=list)
    standby_for_rank: int = -1
    standby_for_name: str = ""
    standby_for_fscid: int = -1
    standby_replay: bool = False
    sys_info: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)  # counters for `fs status` (not in the map)


@message("mds_beacon_ack")
class BeaconAck:
    seq: int
    state: int
    version: int
    null_map: bool = False  # "you are not in the map": the daemon respawns (B8)


# -- subscriptions: the mon pushes every new map to subscribers
@message("subscribe")
class Subscribe:
    what: list  # of "fsmap", "mdsmap", "mdsmap.<fscid>", "osdmap", "config", "log"


@message("fsmap")
class FSMapMsg:
    fsmap: dict


@message("mdsmap")
class MDSMapMsg:
    mdsmap: dict  # one file system's MDSMap (Ceph's MMDSMap, see mon/subscriptions.py)


@message("osdmap")
class OSDMapMsg:
    osdmap: dict


@message("config")
class ConfigMsg:
    values: dict  # option -> raw value, already resolved for the receiving entity


@message("log")
class LogMsg:
    entries: list  # of {"seq", "stamp", "who", "level", "message"}


# -- admin commands
@message("command")
class Command:
    tid: int
    args: list
    format: str = "plain"
    who: str = "client.admin"


@message("command_reply")
class CommandReply:
    tid: int
    rc: int
    outs: str = ""  # status text (stderr)
    outb: str = ""  # output (stdout)


# -- the object store (osd): ops carry the sender's address so the osd can fence it (F4)
@message("osd_op")
class OSDOp:
    tid: int
    pool: int
    name: str  # the object; for "list", the name prefix
    # append|append_at|read|write_full|remove|stat|omap_get|omap_set|omap_rm|list|list_all|
    # operate|watch|unwatch|notify|notify_ack
    op: str
    addr: str  # the sender's address instance "ip:port/nonce", checked against the blocklist
    data: bytes = b""
    offset: int = 0
    length: int = -1  # read: -1 is "to the end"
    keys: list | None = None  # omap_get: None is "every key"; omap_rm: the keys to remove
    values: dict = field(default_factory=dict)  # omap_set: key -> bytes
    min_epoch: int = 0  # epoch barrier: the osd runs the op only once it has this OSDMap
    ns: str = ""  # the RADOS namespace ("" is the default one)
    ops: list = field(default_factory=list)  # operate: the sub-ops, run all or nothing
    cookie: int = 0  # watch, unwatch, notify_ack: the watch's cookie
    timeout: float = 0.0  # watch: seconds it survives a lost connection; notify: wait at most
    notify_id: int = 0  # notify_ack: which notify (data: the reply payload)


@message("osd_op_reply")
class OSDOpReply:
    tid: int
    rc: int  # 0 or a negative errno
    epoch: int  # the osd's OSDMap epoch when it answered
    error: str = ""  # what went wrong, when rc < 0
    data: bytes = b""
    values: dict = field(default_factory=dict)
    size: int = 0
    version: int = 0
    mtime: float = 0.0
    names: list = field(default_factory=list)
    acks: list = field(default_factory=list)  # notify: [entity, cookie, payload] per watcher
    timeouts: list = field(default_factory=list)  # notify: [entity, cookie] that did not ack


@message("watch_notify")
class WatchNotify:
    """The osd to a watcher: a notify on the watched object; answer with `notify_ack`."""
    cookie: int
    notify_id: int
    notifier: str  # the entity that sent the notify
    payload: bytes = b""


# -- NFS gateways (nfs/daemon.py) and their clients
@message("nfs_request")
class NFSRequest:
    """One NFSv4.1-style operation; `session` plays SEQUENCE (renews the client's lease)."""
    tid: int
    op: str
    args: dict = field(default_factory=dict)
    session: int = 0


@message("nfs_reply")
class NFSReply:
    tid: int
    status: int  # 0 (NFS4_OK) or an NFSv4 status number
    error: str = ""  # its name, e.g. NFS4ERR_GRACE
    result: dict = field(default_factory=dict)


@message("nfs_report")
class NFSReport:
    """An NFS head tells the monitor where it serves (mon/nfs_services.py), every few s."""
    cluster_id: str
    nodeid: str
    hostname: str
    ip: str
    port: int
    grace: dict = field(default_factory=dict)  # {cur, rec, flags: {nodeid: "NE"}} as read
    ingress: dict = field(default_factory=dict)  # {virtual_ip, port} in front of it, if any


@message("osd_boot")
class OSDBoot:
    osd_id: int
    addr: str  # "ip:port" where the osd serves ops


# -- filesystem clients and the MDS
@message("client_request")
class ClientRequest:
    tid: int  # with the client's entity, the request id (reqid) a retry repeats
    op: str  # lookup|getattr|readdir|mkdir|create|unlink|rmdir|rename|setattr
    args: dict  # {"path": ...} or {"src": ..., "dst": ...}, plus attributes
    retry: int = 0  # how many times this reqid was sent before (to an earlier holder)
    replay: bool = False  # answered unsafe by an earlier holder: resent in reconnect (R3 6)
    oldest_tid: int = 0  # the client's oldest tid without a safe reply (older records go)


@message("client_reply")
class ClientReply:
    tid: int
    rc: int  # 0 or a negative errno; -EAGAIN: not serving this rank now, follow the map
    result: dict = field(default_factory=dict)
    safe: bool = True  # the change is journaled and acknowledged by the osd
    error: str = ""  # rc -EREMOTE: result {"forward": rank, "subtree": path} names the holder


@message("client_session")
class ClientSession:
    """Session control, both ways (C1-C6). Client: request_open (metadata carries its "addr",
    and may carry a reclaim "uuid" and its own session "timeout"), request_renewcaps,
    request_close, request_reclaim (metadata {uuid, flags: "reset"}: Ceph's MClientReclaim),
    request_flush_mdlog (journal what was answered unsafe now: the client is about to wait).
    MDS: open, renewcaps, stale, close (metadata "reason"), reject (metadata "error_string"),
    reclaim_reply (metadata {result: 0 or -errno, sessions: how many were reset})."""

    op: str
    seq: int = 0
    metadata: dict = field(default_factory=dict)


@message("client_reconnect")
class ClientReconnect:
    """C4: sent to a rank's new holder in up:reconnect, after the client's replayed requests,
    with the file locks it holds (`locks`: mds.filelocks wire form), as Ceph's client re-sends
    its fcntl/flock locks."""

    metadata: dict = field(default_factory=dict)
    locks: list = field(default_factory=list)


@message("mds_peer")
class MDSPeer:
    """MDS to MDS (subtrees): export {export_id, from, snapshot}, pin {path, target, from},
    resolve {from}."""

    op: str
    args: dict = field(default_factory=dict)


@message("mds_peer_reply")
class MDSPeerReply:
    rc: int  # 0 or a negative errno
    result: dict = field(default_factory=dict)
