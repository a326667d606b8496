"""Which map each subscription gets, sans-IO (Ceph's MDSMonitor::check_sub).

`fsmap` is the whole FSMap, sent at every epoch. `mdsmap` follows Ceph: an MDS in a file
system gets that file system's MDSMap; a standby gets a map holding only its own info, at its
standby epoch; an MDS not in the map gets an empty one at the FSMap's epoch. A client names a
file system (`mdsmap.<fscid>`) or gets the legacy client one (`mdsmap`); with none, nothing.
A subscription remembers the next epoch it wants (Ceph's sub->next), so an MDSMap goes out
only when it changed: a standby is not sent the boots of a thousand others.

`Frames` encodes each map once per epoch: every subscriber of it is sent the same bytes.
"""

from __future__ import annotations

from common import messages as m
from common import wire
from common.fsmap import FS_CLUSTER_ID_NONE, FSMap, MDSMap

SUB_TYPES = ("fsmap", "osdmap", "config", "log")


class BadSubscription(ValueError):
    pass


def check_type(what: str) -> None:
    if what in SUB_TYPES or what == "mdsmap":
        return
    if what.startswith("mdsmap."):
        if what[len("mdsmap."):].isdigit():
            return
        raise BadSubscription(f"invalid subscription {what!r}: want mdsmap.<fscid>")
    raise BadSubscription(f"cannot subscribe to {what!r}")


def mdsmap_key(fsmap: FSMap, what: str, entity: str, gid: int) -> tuple | None:
    """What an `mdsmap` subscription selects: ("fs", fscid, epoch), ("standby", gid, epoch),
    ("none", 0, epoch), or None to send nothing (a client with no such file system)."""
    if entity.startswith("mds."):
        fscid = fsmap.mds_roles.get(gid)
        if fscid is None:
            return ("none", 0, fsmap.epoch)
        if fscid == FS_CLUSTER_ID_NONE:
            return ("standby", gid, fsmap.standby_epochs.get(gid, 0))
    elif what == "mdsmap":
        fscid = fsmap.legacy_client_fscid
    else:
        fscid = int(what[len("mdsmap."):])
    fs = fsmap.filesystems.get(fscid)
    return ("fs", fscid, fs.epoch) if fs is not None else None


def mdsmap_for(fsmap: FSMap, key: tuple) -> MDSMap:
    kind, ident, epoch = key
    if kind == "fs":
        return fsmap.filesystems[ident]
    null = MDSMap(fscid=FS_CLUSTER_ID_NONE, fs_name="", epoch=epoch, enabled=False)
    if kind == "standby":
        null.mds_info[ident] = fsmap.standby_daemons[ident]
    return null


def frame(msg) -> bytes:
    return wire.encode(m.encode(msg))


class Frames:
    """Encoded maps of the newest FSMap, each made on first use and shared."""

    def __init__(self) -> None:
        self._fsmap: FSMap | None = None
        self._cache: dict[tuple, bytes] = {}
        self.encoded = 0  # how many encodings were made (for tests and benches)

    def _for(self, fsmap: FSMap) -> None:
        if fsmap is not self._fsmap:
            self._fsmap, self._cache = fsmap, {}

    def fsmap(self, fsmap: FSMap) -> bytes:
        self._for(fsmap)
        key = ("fsmap",)
        if key not in self._cache:
            self._cache[key] = frame(m.FSMapMsg(fsmap=fsmap.to_wire()))
            self.encoded += 1
        return self._cache[key]

    def mdsmap(self, fsmap: FSMap, key: tuple) -> bytes:
        self._for(fsmap)
        if key not in self._cache:
            self._cache[key] = frame(m.MDSMapMsg(mdsmap=mdsmap_for(fsmap, key).to_wire()))
            self.encoded += 1
        return self._cache[key]


class Subs:
    """One session's subscriptions: type -> the next epoch it wants (Ceph's sub->next)."""

    def __init__(self, entity: str, gid: int) -> None:
        self.entity = entity
        self.gid = gid
        self.next: dict[str, int] = {}

    def __contains__(self, what: str) -> bool:
        return what in self.next

    def add(self, what: str) -> None:
        """A subscribe asks for the current map, even one this session was sent already
        (Ceph's start epoch 0): a renewal is how a peer says it never got it."""
        check_type(what)
        self.next[what] = 0

    def due(self, fsmap: FSMap) -> list[tuple[str, tuple]]:
        """What this session has not been sent, as (subscription, map key: ("fsmap",) or an
        `mdsmap_key`), marking it sent. The shell encodes (`due_maps`); a simulation uses
        `map_for`."""
        out = []
        for what, nxt in self.next.items():
            if what == "fsmap":
                if fsmap.epoch >= nxt:
                    out.append((what, ("fsmap",)))
                    self.next[what] = fsmap.epoch + 1
            elif what.startswith("mdsmap"):
                key = mdsmap_key(fsmap, what, self.entity, self.gid)
                if key is not None and key[2] >= nxt:
                    out.append((what, key))
                    self.next[what] = key[2] + 1
        return out

    def due_maps(self, fsmap: FSMap, frames: Frames) -> list[tuple[str, bytes]]:
        """The FSMap and MDSMap frames this session has not been sent, as (subscription,
        frame), and mark them sent."""
        return [(what, frames.fsmap(fsmap) if key == ("fsmap",) else frames.mdsmap(fsmap, key))
                for what, key in self.due(fsmap)]


def map_for(fsmap: FSMap, key: tuple) -> FSMap | MDSMap:
    """The map a `Subs.due` key stands for (unencoded)."""
    return fsmap if key == ("fsmap",) else mdsmap_for(fsmap, key)
