"""One file system's map and one daemon's entry: MDSMap and mds_info_t (ref §1.4–§1.6).

Plain data with the queries the monitor and the daemons ask of one file system. The FSMap
(common/fsmap.py) holds them all; a change goes through its mutators (`modify_filesystem`,
`modify_daemon`, `promote`, ...), which stamp the epoch being proposed (O1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common import states

FS_CLUSTER_ID_NONE = -1
MDS_RANK_NONE = -1
MAX_MDS = 256

# Map flags (ref §1.5).
NOT_JOINABLE = 1 << 0
ALLOW_SNAPS = 1 << 1
ALLOW_MULTIMDS_SNAPS = 1 << 4
ALLOW_STANDBY_REPLAY = 1 << 5
REFUSE_CLIENT_SESSION = 1 << 6
REFUSE_STANDBY_FOR_ANOTHER_FS = 1 << 7
BALANCE_AUTOMATE = 1 << 8
DEFAULT_FLAGS = ALLOW_SNAPS | ALLOW_MULTIMDS_SNAPS  # 0x12

FLAG_NAMES = [  # order used by `fs get` and flags_state
    (ALLOW_SNAPS, "allow_snaps"),
    (ALLOW_MULTIMDS_SNAPS, "allow_multimds_snaps"),
    (ALLOW_STANDBY_REPLAY, "allow_standby_replay"),
    (REFUSE_CLIENT_SESSION, "refuse_client_session"),
    (REFUSE_STANDBY_FOR_ANOTHER_FS, "refuse_standby_for_another_fs"),
    (BALANCE_AUTOMATE, "balance_automate"),
]

INFO_FROZEN = 1 << 0

# The MDS on-disk features of Squid (v19), as MDSMap.h numbers them; every mdsemu daemon speaks
# all of them (its compat mask prints as i=[1fff]), so a file system's compat has them all.
INCOMPAT_FEATURES = {
    1: "base v0.20",
    2: "client writeable ranges",
    3: "default file layouts on dirs",
    4: "dir inode in separate object",
    5: "mds uses versioned encoding",
    6: "dirfrag is stored in omap",
    7: "mds uses inline data",
    8: "no anchor table",
    9: "file layout v2",
    10: "snaprealm v2",
    11: "minor log segments",
    12: "quiesce subvolumes",
}
# The FSMap's default compat (MDSMap::get_compat_set_default): inline data is no longer in it.
DEFAULT_INCOMPAT = {i: text for i, text in INCOMPAT_FEATURES.items() if i != 7}


def full_compat() -> dict[str, dict[int, str]]:
    """A CompatSet: feature id -> name for each of compat, ro_compat and incompat."""
    return {"compat": {}, "ro_compat": {}, "incompat": dict(INCOMPAT_FEATURES)}


@dataclass
class MDSInfo:
    """One daemon as the map sees it (mds_info_t, ref §1.6)."""

    gid: int
    name: str
    rank: int = MDS_RANK_NONE
    inc: int = 0
    state: int = states.STANDBY
    state_seq: int = 0
    addr: str = ""  # "ip:port/nonce": the address instance that gets blocklisted
    laggy_since: float = 0.0  # wall clock; 0 means not laggy
    export_targets: list[int] = field(default_factory=list)
    join_fscid: int = FS_CLUSTER_ID_NONE
    flags: int = 0
    features: int = 0
    # Legacy standby preferences (seed 001; mds_standby_for_* and mds_standby_replay).
    standby_for_rank: int = MDS_RANK_NONE
    standby_for_name: str = ""
    standby_for_fscid: int = FS_CLUSTER_ID_NONE
    standby_replay: bool = False

    def copy(self) -> MDSInfo:
        """A copy sharing nothing mutable (a hand-made deepcopy: the monitor copies the whole
        map for every proposal, and copy.deepcopy dominated its time at scale, issue 14)."""
        c = _shallow(self)
        c.export_targets = list(self.export_targets)
        return c

    @property
    def laggy(self) -> bool:
        return self.laggy_since != 0

    @property
    def frozen(self) -> bool:
        return bool(self.flags & INFO_FROZEN)

    def freeze(self, on: bool = True) -> None:
        """A frozen daemon is never replaced or moved by the monitor (A7)."""
        self.flags = (self.flags | INFO_FROZEN) if on else (self.flags & ~INFO_FROZEN)

    @property
    def legacy_targeted(self) -> bool:
        return self.standby_for_rank >= 0 or bool(self.standby_for_name)

    @property
    def affinity(self) -> int:
        """The fs this daemon prefers: mds_join_fs, else the legacy mds_standby_for_fscid."""
        if self.join_fscid != FS_CLUSTER_ID_NONE:
            return self.join_fscid
        return self.standby_for_fscid

    def to_wire(self) -> dict:
        return dict(self.__dict__, export_targets=list(self.export_targets))

    @classmethod
    def from_wire(cls, d: dict) -> MDSInfo:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class MDSMap:
    """One file system (MDSMap plus its fscid, ref §1.4)."""

    fscid: int
    fs_name: str
    epoch: int = 0
    flags: int = DEFAULT_FLAGS
    created: float = 0.0
    modified: float = 0.0
    tableserver: int = 0
    root: int = 0
    session_timeout: int = 60
    session_autoclose: int = 300
    max_file_size: int = 1 << 40
    max_xattr_size: int = 65536
    last_failure: int = 0
    last_failure_osd_epoch: int = 0
    max_mds: int = 1
    old_max_mds: int = 0
    standby_count_wanted: int = -1
    balancer: str = ""
    bal_rank_mask: str = "-1"
    metadata_pool: int = 0
    data_pools: list[int] = field(default_factory=list)
    enabled: bool = True
    ever_allowed_features: int = 0
    explicitly_allowed_features: int = 0
    compat: dict[str, dict[int, str]] = field(default_factory=full_compat)
    in_: set[int] = field(default_factory=set)
    up: dict[int, int] = field(default_factory=dict)  # rank -> gid
    failed: set[int] = field(default_factory=set)
    stopped: set[int] = field(default_factory=set)
    damaged: set[int] = field(default_factory=set)
    mds_info: dict[int, MDSInfo] = field(default_factory=dict)  # gid -> info

    def copy(self) -> MDSMap:
        """A copy sharing nothing mutable (see MDSInfo.copy)."""
        c = _shallow(self)
        c.data_pools = list(self.data_pools)
        c.compat = {k: dict(v) for k, v in self.compat.items()}
        c.in_, c.failed = set(self.in_), set(self.failed)
        c.stopped, c.damaged = set(self.stopped), set(self.damaged)
        c.up = dict(self.up)
        c.mds_info = {g: i.copy() for g, i in self.mds_info.items()}
        return c

    # -- flags
    def test_flag(self, flag: int) -> bool:
        return bool(self.flags & flag)

    def set_flag(self, flag: int, on: bool = True) -> None:
        self.flags = (self.flags | flag) if on else (self.flags & ~flag)

    @property
    def joinable(self) -> bool:
        return not self.test_flag(NOT_JOINABLE)

    @property
    def allow_standby_replay(self) -> bool:
        return self.test_flag(ALLOW_STANDBY_REPLAY)

    # -- queries (ref §1.4)
    def holder(self, rank: int) -> MDSInfo | None:
        gid = self.up.get(rank)
        return self.mds_info.get(gid) if gid is not None else None

    def follower(self, rank: int) -> MDSInfo | None:
        for info in self.mds_info.values():
            if info.state == states.STANDBY_REPLAY and info.rank == rank:
                return info
        return None

    def followers(self) -> list[MDSInfo]:
        return [i for i in self.mds_info.values() if i.state == states.STANDBY_REPLAY]

    def is_degraded(self) -> bool:
        if self.failed or self.damaged:
            return True
        return any(i.state in states.RECOVERING for i in self.mds_info.values())

    def is_resizeable(self) -> bool:
        busy = (states.CREATING, states.STARTING, states.STOPPING)
        return not self.is_degraded() and not any(
            i.state in busy for i in self.mds_info.values()
        )

    def is_followable(self, rank: int) -> bool:
        info = self.holder(rank)
        return (
            info is not None
            and info.state not in states.RECOVERING
            and info.state not in (states.CREATING, states.STARTING)
            and self.follower(rank) is None
        )

    def ranks_in_state(self, state: int) -> list[int]:
        return sorted(r for r, g in self.up.items() if self.mds_info[g].state == state)

    def is_resolving(self) -> bool:
        """All ranks have reached resolve or later (R3 step 3)."""
        return (
            bool(self.ranks_in_state(states.RESOLVE))
            and not self.ranks_in_state(states.REPLAY)
            and not self.failed
            and not self.damaged
        )

    def sorted_infos(self) -> list[MDSInfo]:
        """Daemon order of `fs get`: by rank, each active before its follower (O3)."""
        return sorted(self.mds_info.values(), key=lambda i: (i.rank, (i.inc - 1) % (1 << 64)))

    def to_wire(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("in_", "up", "mds_info")}
        d.update(
            data_pools=list(self.data_pools),
            in_=sorted(self.in_),
            up=sorted(self.up.items()),
            failed=sorted(self.failed),
            stopped=sorted(self.stopped),
            damaged=sorted(self.damaged),
            mds_info=[i.to_wire() for i in self.mds_info.values()],
            compat={k: sorted(v.items()) for k, v in self.compat.items()},  # no int map keys
        )
        return d

    @classmethod
    def from_wire(cls, d: dict) -> MDSMap:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known.update(
            in_=set(d.get("in_", [])),
            up={int(r): int(g) for r, g in d.get("up", [])},
            failed=set(d.get("failed", [])),
            stopped=set(d.get("stopped", [])),
            damaged=set(d.get("damaged", [])),
            mds_info={i["gid"]: MDSInfo.from_wire(i) for i in d.get("mds_info", [])},
            data_pools=list(d.get("data_pools", [])),
            compat={k: {int(i): str(n) for i, n in v} for k, v in d["compat"].items()}
            if "compat" in d else full_compat(),
        )
        return cls(**known)


def _shallow(obj):
    c = object.__new__(type(obj))
    c.__dict__.update(obj.__dict__)
    return c
