"""The FSMap: file systems, their ranks, and the MDS daemons (ref §1, S1–S6, F2, X4).

A plain data structure with invariant checks, like Ceph's FSMap (its MDSMap and mds_info_t are
in common/mdsmap.py). The monitor owns the timing and the decisions; this module only knows how
to apply one change consistently. Every
mutator stamps the touched MDSMap (or standby) with the map's current epoch, which the monitor
has already bumped to the epoch being proposed (O1). Nothing here reads a clock: wall-clock
stamps come in as arguments.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

from common import states
from common.mdsmap import (
    ALLOW_MULTIMDS_SNAPS,
    ALLOW_SNAPS,
    ALLOW_STANDBY_REPLAY,
    BALANCE_AUTOMATE,
    DEFAULT_FLAGS,
    DEFAULT_INCOMPAT,
    FLAG_NAMES,
    FS_CLUSTER_ID_NONE,
    INCOMPAT_FEATURES,
    INFO_FROZEN,
    MAX_MDS,
    MDS_RANK_NONE,
    NOT_JOINABLE,
    REFUSE_CLIENT_SESSION,
    REFUSE_STANDBY_FOR_ANOTHER_FS,
    MDSInfo,
    MDSMap,
    full_compat,
)

# The map's names are imported from here too.
__all__ = [
    "ALLOW_MULTIMDS_SNAPS",
    "ALLOW_SNAPS",
    "ALLOW_STANDBY_REPLAY",
    "BALANCE_AUTOMATE",
    "DEFAULT_FLAGS",
    "DEFAULT_INCOMPAT",
    "FLAG_NAMES",
    "FS_CLUSTER_ID_NONE",
    "INCOMPAT_FEATURES",
    "INFO_FROZEN",
    "MAX_MDS",
    "MDS_RANK_NONE",
    "NOT_JOINABLE",
    "REFUSE_CLIENT_SESSION",
    "REFUSE_STANDBY_FOR_ANOTHER_FS",
    "MDSInfo",
    "MDSMap",
    "full_compat",
    "FSMap",
    "FSMapError",
]


class FSMapError(Exception):
    """An invariant of the map does not hold."""


@dataclass
class FSMap:
    epoch: int = 0
    btime: float = 0.0
    next_filesystem_id: int = 1
    legacy_client_fscid: int = FS_CLUSTER_ID_NONE
    enable_multiple: bool = True
    ever_enabled_multiple: bool = True
    filesystems: dict[int, MDSMap] = field(default_factory=dict)
    mds_roles: dict[int, int] = field(default_factory=dict)  # gid -> fscid (NONE for standbys)
    standby_daemons: dict[int, MDSInfo] = field(default_factory=dict)
    standby_epochs: dict[int, int] = field(default_factory=dict)

    def copy(self) -> FSMap:
        """A copy sharing nothing mutable, made by hand: copy.deepcopy of a map of 1,000
        daemons took most of the monitor's time per proposal (issue 14)."""
        c = copy.copy(self)
        c.filesystems = {k: fs.copy() for k, fs in self.filesystems.items()}
        c.mds_roles = dict(self.mds_roles)
        c.standby_daemons = {g: i.copy() for g, i in self.standby_daemons.items()}
        c.standby_epochs = dict(self.standby_epochs)
        return c

    # -- lookups
    def fs_by_name(self, name: str) -> MDSMap | None:
        for fs in self.filesystems.values():
            if fs.fs_name == name:
                return fs
        return None

    def gid_exists(self, gid: int) -> bool:
        return gid in self.mds_roles

    def info(self, gid: int) -> MDSInfo | None:
        fscid = self.mds_roles.get(gid)
        if fscid is None:
            return None
        if fscid == FS_CLUSTER_ID_NONE:
            return self.standby_daemons[gid]
        return self.filesystems[fscid].mds_info[gid]

    def fs_of(self, gid: int) -> MDSMap | None:
        fscid = self.mds_roles.get(gid, FS_CLUSTER_ID_NONE)
        return self.filesystems.get(fscid)

    def gid_by_name(self, name: str) -> int | None:
        """A daemon name, standbys first, then each fs (A1 step 3)."""
        for gid, info in sorted(self.standby_daemons.items()):
            if info.name == name:
                return gid
        for fs in self.filesystems.values():
            for gid, info in sorted(fs.mds_info.items()):
                if info.name == name:
                    return gid
        return None

    def all_infos(self) -> list[MDSInfo]:
        out = list(self.standby_daemons.values())
        for fs in self.filesystems.values():
            out.extend(fs.mds_info.values())
        return out

    def effective_epoch(self, gid: int) -> int:
        """The epoch a daemon must have seen before its requests are honoured (M4)."""
        fs = self.fs_of(gid)
        if fs is not None:
            return fs.epoch
        return self.standby_epochs.get(gid, 0)

    def parse_role(self, text: str) -> tuple[MDSMap, int]:
        """`<fs_name>:<rank>`, `<fscid>:<rank>` or a bare rank on the legacy fs (ref §1.1).

        Raises ValueError with Ceph's message.
        """
        fs_part, sep, rank_part = text.rpartition(":")
        if not sep:
            rank_part = text
        try:
            rank = int(rank_part)
        except ValueError:
            raise ValueError(f"Invalid rank '{rank_part}'") from None
        if rank < 0:
            raise ValueError(f"Invalid rank '{rank_part}'")
        if not sep:
            fs = self.filesystems.get(self.legacy_client_fscid)
            if fs is None:
                raise ValueError("No filesystem selected")
            return fs, rank
        fs = self.fs_by_name(fs_part)
        if fs is None:
            try:
                fs = self.filesystems.get(int(fs_part))
            except ValueError:
                fs = None
        if fs is None:
            raise ValueError(f"Unknown filesystem name or ID '{fs_part}'")
        return fs, rank

    # -- mutators (all stamp epochs, O1)
    def _touch(self, fs: MDSMap, wall: float | None = None) -> None:
        fs.epoch = self.epoch
        if wall is not None:
            fs.modified = wall

    def create_filesystem(
        self, name: str, metadata_pool: int, data_pools: list[int], wall: float,
        recover: bool = False, **settings,
    ) -> MDSMap:
        """A new fs (`settings` are MDSMap fields). With `recover`, rank 0 exists but is failed
        and the fs is not joinable, so no standby takes it until `fs set joinable`."""
        fscid = self.next_filesystem_id
        self.next_filesystem_id += 1
        fs = MDSMap(
            fscid=fscid,
            fs_name=name,
            epoch=self.epoch,
            created=wall,
            modified=wall,
            metadata_pool=metadata_pool,
            data_pools=list(data_pools),
            **settings,
        )
        if recover:
            fs.in_.add(0)
            fs.failed.add(0)
            fs.set_flag(NOT_JOINABLE)
        self.filesystems[fscid] = fs
        if self.legacy_client_fscid == FS_CLUSTER_ID_NONE:
            self.legacy_client_fscid = fscid
        return fs

    def modify_filesystem(self, fscid: int, wall: float | None = None) -> MDSMap:
        """Return a file system for changing, stamping its epoch (and `modified`)."""
        fs = self.filesystems[fscid]
        self._touch(fs, wall)
        return fs

    def set_enable_multiple(self, on: bool) -> None:
        self.enable_multiple = on
        if on:
            self.ever_enabled_multiple = True

    def set_legacy_client_fscid(self, fscid: int) -> None:
        """The fs that clients (and roles without a name) use by default."""
        assert fscid == FS_CLUSTER_ID_NONE or fscid in self.filesystems
        self.legacy_client_fscid = fscid

    def erase_filesystem(self, fscid: int) -> None:
        del self.filesystems[fscid]
        if self.legacy_client_fscid == fscid:
            self.legacy_client_fscid = FS_CLUSTER_ID_NONE
        for gid, info in self.standby_daemons.items():  # S3: affinity to a removed fs is reset
            if info.join_fscid == fscid:
                info.join_fscid = FS_CLUSTER_ID_NONE
                self.standby_epochs[gid] = self.epoch
        for fs in self.filesystems.values():
            for info in fs.mds_info.values():
                if info.join_fscid == fscid:
                    info.join_fscid = FS_CLUSTER_ID_NONE
                    self._touch(fs)

    def insert(self, info: MDSInfo) -> None:
        """A booting daemon becomes a standby (M6)."""
        info.rank = MDS_RANK_NONE
        info.state = states.STANDBY
        self.standby_daemons[info.gid] = info
        self.mds_roles[info.gid] = FS_CLUSTER_ID_NONE
        self.standby_epochs[info.gid] = self.epoch

    def modify_daemon(self, gid: int, wall: float | None = None) -> MDSInfo:
        """Return a daemon's info for changing, stamping its epoch."""
        fs = self.fs_of(gid)
        if fs is None:
            self.standby_epochs[gid] = self.epoch
            return self.standby_daemons[gid]
        self._touch(fs, wall)
        return fs.mds_info[gid]

    def promote(self, gid: int, fs: MDSMap, rank: int, wall: float) -> None:
        """S5: a standby (or the rank's follower) takes `rank`."""
        if gid in self.standby_daemons:
            info = self.standby_daemons.pop(gid)
            self.standby_epochs.pop(gid, None)
            fs.mds_info[gid] = info
        else:
            info = fs.mds_info[gid]
        if rank in fs.stopped:
            info.state = states.STARTING
            fs.stopped.discard(rank)
        elif rank not in fs.in_:
            info.state = states.CREATING
        else:
            info.state = states.REPLAY
            fs.failed.discard(rank)
        info.rank = rank
        info.inc = self.epoch
        info.laggy_since = 0.0
        self.mds_roles[gid] = fs.fscid
        fs.in_.add(rank)
        fs.up[rank] = gid
        self._touch(fs, wall)

    def assign_standby_replay(
        self, gid: int, fs: MDSMap, rank: int, wall: float | None = None
    ) -> None:
        """S6: a standby starts following `rank`; its incarnation is unchanged."""
        info = self.standby_daemons.pop(gid)
        self.standby_epochs.pop(gid, None)
        info.rank = rank
        info.state = states.STANDBY_REPLAY
        fs.mds_info[gid] = info
        self.mds_roles[gid] = fs.fscid
        self._touch(fs, wall)

    def erase(self, gid: int, blocklist_epoch: int, wall: float | None = None) -> MDSInfo:
        """F2: remove a daemon; a rank it held becomes failed."""
        fscid = self.mds_roles.pop(gid)
        if fscid == FS_CLUSTER_ID_NONE:
            self.standby_epochs.pop(gid, None)
            return self.standby_daemons.pop(gid)
        fs = self.filesystems[fscid]
        info = fs.mds_info.pop(gid)
        if info.state != states.STANDBY_REPLAY:
            if info.state == states.CREATING:
                fs.in_.discard(info.rank)  # the rank goes back to CREATING next time
            else:
                fs.failed.add(info.rank)
            if fs.up.get(info.rank) == gid:
                del fs.up[info.rank]
            # last_failure stays 0: modern Ceph no longer sets it
        # Keep the highest fencing epoch (ref §17.9): a follower's removal must not clear it.
        fs.last_failure_osd_epoch = max(fs.last_failure_osd_epoch, blocklist_epoch)
        self._touch(fs, wall)
        return info

    def damaged(self, gid: int, blocklist_epoch: int, wall: float | None = None) -> int:
        """F5: erase the holder and move its rank from failed to damaged."""
        fs = self.fs_of(gid)
        assert fs is not None
        info = self.erase(gid, blocklist_epoch, wall)
        fs.failed.discard(info.rank)
        fs.in_.add(info.rank)  # a rank damaged while creating stays in `in`
        fs.damaged.add(info.rank)
        return info.rank

    def stop(self, gid: int, wall: float | None = None) -> list[int]:
        """X4: a rank finished stopping. Returns the followers of that rank to fail."""
        fs = self.fs_of(gid)
        assert fs is not None
        info = fs.mds_info.pop(gid)
        del self.mds_roles[gid]
        fs.up.pop(info.rank, None)
        fs.in_.discard(info.rank)
        fs.stopped.add(info.rank)
        self._touch(fs, wall)
        return [f.gid for f in fs.followers() if f.rank == info.rank]

    # -- replacement selection (S1, S2, seed 001's legacy preferences)
    def get_available_standby(
        self,
        fs: MDSMap,
        rank: int | None = None,
        force_standby_active: bool = True,
        usable: Callable[[MDSInfo], bool] | None = None,
    ) -> MDSInfo | None:
        """S2, widened with the legacy mds_standby_for_* preferences of seed 001.

        Priority: a legacy standby aimed at this rank (by rank, or by the name of its holder)
        > a standby pinned to this fs (mds_join_fs or mds_standby_for_fscid) > a vanilla
        standby (the highest gid wins) > a last resort: one pinned to another fs with
        mds_join_fs (unless the fs refuses them), or a legacy one aimed at another rank. A
        legacy mds_standby_for_fscid is a hard limit ("only within a particular filesystem"),
        and with mon_force_standby_active false a standby-replay daemon aimed at some rank
        takes no other. `usable` filters the candidates further.
        """
        targeted = pinned = vanilla = elsewhere = None
        refuse_other = fs.test_flag(REFUSE_STANDBY_FOR_ANOTHER_FS)
        for gid in sorted(self.standby_daemons):
            info = self.standby_daemons[gid]
            if info.laggy or info.frozen or (usable is not None and not usable(info)):
                continue
            if info.join_fscid == FS_CLUSTER_ID_NONE and info.standby_for_fscid not in (
                FS_CLUSTER_ID_NONE, fs.fscid
            ):
                continue  # legacy: a standby for another fs only
            if rank is not None and self.legacy_aims_at(info, fs, rank):
                targeted = targeted or info
            elif info.legacy_targeted:
                if force_standby_active or not info.standby_replay:
                    elsewhere = elsewhere or info
            elif info.affinity == fs.fscid:
                pinned = pinned or info
            elif info.affinity == FS_CLUSTER_ID_NONE:
                vanilla = info
            elif not refuse_other:
                elsewhere = elsewhere or info
        return targeted or pinned or vanilla or elsewhere

    def legacy_aims_at(self, info: MDSInfo, fs: MDSMap, rank: int) -> bool:
        """Seed 001: is this daemon a standby for `rank` of `fs` (mds_standby_for_rank, which
        means the legacy client fs unless mds_standby_for_fscid says otherwise), or for the
        daemon now holding it (mds_standby_for_name)?"""
        if info.standby_for_rank >= 0:
            target = info.standby_for_fscid
            if target == FS_CLUSTER_ID_NONE:
                target = self.legacy_client_fscid
            return target == fs.fscid and info.standby_for_rank == rank
        if info.standby_for_name:
            holder = fs.holder(rank)
            return (info.standby_for_fscid in (FS_CLUSTER_ID_NONE, fs.fscid)
                    and holder is not None and holder.name == info.standby_for_name)
        return False

    def find_replacement_for(
        self, fs: MDSMap, rank: int, force_standby_active: bool = True
    ) -> MDSInfo | None:
        """S1: the rank's follower first (a frozen one blocks failover), then a standby."""
        follower = fs.follower(rank)
        if follower is not None:
            return None if follower.frozen else follower
        return self.get_available_standby(fs, rank, force_standby_active)

    # -- invariants (ref §1.2)
    def sanity(self) -> None:
        seen: set[int] = set()
        roles = self.mds_roles
        for gid, info in self.standby_daemons.items():
            # the message is built only on failure: this runs for every daemon at every commit
            if not (info.gid == gid and info.state == states.STANDBY
                    and info.rank == MDS_RANK_NONE and roles.get(gid) == FS_CLUSTER_ID_NONE):
                _check(info.gid == gid, f"standby {gid} has gid {info.gid}")
                _check(info.state == states.STANDBY,
                       f"standby {gid} in {states.name(info.state)}")
                _check(info.rank == MDS_RANK_NONE, f"standby {gid} has rank {info.rank}")
                _check(False, f"standby {gid} role")
            seen.add(gid)
        for fscid, fs in self.filesystems.items():
            _check(fs.fscid == fscid, f"fs {fscid} has fscid {fs.fscid}")
            # `mds rmfailed` (A6) may leave a rank in `in` that is neither up, failed nor damaged
            _check(set(fs.up) | fs.failed | fs.damaged <= fs.in_, f"fs {fscid}: up+failed > in")
            _check(not (fs.in_ & fs.stopped), f"fs {fscid}: in and stopped overlap")
            for rank, gid in fs.up.items():
                _check(gid in fs.mds_info, f"fs {fscid}: up rank {rank} gid {gid} unknown")
                _check(fs.mds_info[gid].rank == rank, f"fs {fscid}: gid {gid} rank mismatch")
            followed: set[int] = set()
            for gid, info in fs.mds_info.items():
                _check(gid not in seen, f"gid {gid} appears twice")
                seen.add(gid)
                _check(self.mds_roles.get(gid) == fscid, f"gid {gid} role")
                if info.state == states.STANDBY_REPLAY:
                    _check(info.rank not in followed, f"fs {fscid}: two followers of {info.rank}")
                    followed.add(info.rank)
                else:
                    _check(fs.up.get(info.rank) == gid, f"gid {gid} holds {info.rank}, not up")
                    _check(info.rank not in fs.failed | fs.damaged, f"gid {gid} rank failed")
        _check(seen == set(self.mds_roles), "mds_roles out of step with the daemons")

    # -- wire form (msgpack-able: no int map keys, no sets)
    def to_wire(self) -> dict:
        return {
            "epoch": self.epoch,
            "btime": self.btime,
            "next_filesystem_id": self.next_filesystem_id,
            "legacy_client_fscid": self.legacy_client_fscid,
            "enable_multiple": self.enable_multiple,
            "ever_enabled_multiple": self.ever_enabled_multiple,
            "filesystems": [fs.to_wire() for fs in self.filesystems.values()],
            "standbys": [
                [i.to_wire(), self.standby_epochs.get(g, 0)]
                for g, i in sorted(self.standby_daemons.items())
            ],
        }

    @classmethod
    def from_wire(cls, d: dict) -> FSMap:
        m = cls(
            epoch=d["epoch"],
            btime=d.get("btime", 0.0),
            next_filesystem_id=d["next_filesystem_id"],
            legacy_client_fscid=d["legacy_client_fscid"],
            enable_multiple=d.get("enable_multiple", True),
            ever_enabled_multiple=d.get("ever_enabled_multiple", True),
        )
        for fsd in d["filesystems"]:
            fs = MDSMap.from_wire(fsd)
            m.filesystems[fs.fscid] = fs
            for gid in fs.mds_info:
                m.mds_roles[gid] = fs.fscid
        for infod, epoch in d["standbys"]:
            info = MDSInfo.from_wire(infod)
            m.standby_daemons[info.gid] = info
            m.standby_epochs[info.gid] = epoch
            m.mds_roles[info.gid] = FS_CLUSTER_ID_NONE
        return m


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise FSMapError(what)
