"""File locks from the client's side: the requests (setfilelock, getfilelock) and the record
of what this client holds, which its reconnect to a rank's new holder carries (Ceph's client
re-sends its fcntl/flock locks at reconnect, C4), sans-IO.

The MDS keys locks by inode; the client asks by path and keeps the inode the MDS answered
with, so that its record names what the MDS names. `owner` tells apart the lock owners of one
session (processes; an NFS head's clients).
"""

from __future__ import annotations

from dataclasses import dataclass

from common import lockranges as lr


class LockDenied(Exception):
    """F_SETLK's EAGAIN: another owner holds a conflicting lock (`holder`, wire form with its
    "client")."""

    def __init__(self, path: str, holder: dict) -> None:
        super().__init__(f"{path}: locked by {holder.get('client', '?')} "
                         f"owner {holder.get('owner', '?')}")
        self.holder = holder


@dataclass(frozen=True)
class Held:
    ino: int
    owner: str
    type: str
    start: int
    end: int | None

    def to_wire(self) -> dict:
        return {"ino": self.ino, "owner": self.owner, "type": self.type, "start": self.start,
                "length": lr.length_of(self.start, self.end)}


class HeldLocks:
    """What this client holds, changed as the MDS grants and unlocks."""

    def __init__(self) -> None:
        self.locks: list[Held] = []

    def granted(self, ino: int, owner: str, type_: str, start: int, length: int) -> None:
        self._cut(ino, owner, start, lr.end_of(start, length))
        self.locks.append(Held(ino, owner, type_, start, lr.end_of(start, length)))

    def unlocked(self, ino: int, owner: str, start: int, length: int) -> None:
        self._cut(ino, owner, start, lr.end_of(start, length))

    def forget(self) -> None:
        """Evicted: the MDS dropped them all."""
        self.locks = []

    def to_wire(self) -> list[dict]:
        return [lk.to_wire() for lk in self.locks]

    def _cut(self, ino: int, owner: str, start: int, end: int | None) -> None:
        kept = []
        for lk in self.locks:
            if lk.ino != ino or lk.owner != owner:
                kept.append(lk)
                continue
            kept += [Held(ino, owner, lk.type, s, e) for s, e in lr.cut(lk.start, lk.end,
                                                                        start, end)]
        self.locks = kept


def setlk_args(path: str, owner: str, type_: str, start: int, length: int) -> dict:
    if type_ not in (*lr.TYPES, "unlock"):
        raise ValueError(f"bad lock type {type_!r}")
    lr.end_of(start, length)  # ValueError for a bad range
    return {"path": path, "owner": owner, "type": type_, "start": start, "length": length}
