"""File locks held through client sessions, sans-IO: the MDS's lock table (Ceph's
ceph_lock_state_t for fcntl and flock locks, kept on the inode; here with the session).

A lock is held by a client session and an owner inside it (a process, or an NFS head's
client id), on an inode, over a byte range, shared ("read") or exclusive ("write"). The table
lives in the rank's session table (`RankStore.sessions[client]["locks"]`) and changes only
through EFLock journal events, so that it is journaled, replayed by the next holder of the
rank, followed by a standby-replay daemon and written back to the sessionmap object with the
session. A session that ends (closed, evicted, reset by a reclaim) takes its locks with it:
its entry, locks included, leaves the table.

- `conflict`: the first lock of another owner that a requested one would conflict with.
- `set_event` / `unlock_event`: the EFLock event of a granted request; `apply` applies one.
- `reinstall`: the locks a client re-sends in its reconnect that a new holder lacks (Ceph's
  client re-sends its fcntl/flock locks at reconnect).
"""

from __future__ import annotations

from dataclasses import dataclass

from common import lockranges as lr
from mds.events import EFLOCK


@dataclass(frozen=True)
class FileLock:
    ino: int
    owner: str  # inside the session: a pid, an NFS client id
    type: str  # "read" | "write"
    start: int
    end: int | None  # None: to the end of the file

    def to_wire(self) -> dict:
        return {"ino": self.ino, "owner": self.owner, "type": self.type, "start": self.start,
                "length": lr.length_of(self.start, self.end)}

    @classmethod
    def from_wire(cls, d: dict) -> FileLock:
        t = d["type"]
        if t not in lr.TYPES:
            raise ValueError(f"bad lock type {t!r}")
        start = d["start"]
        return cls(int(d["ino"]), str(d["owner"]), t, start, lr.end_of(start, d["length"]))

    def overlaps(self, other: FileLock) -> bool:
        return self.ino == other.ino and lr.overlaps(self.start, self.end, other.start,
                                                     other.end)


def held(sessions: dict[str, dict], client: str | None = None) -> list[tuple[str, FileLock]]:
    """(client, lock) of every lock in the table, or of one client's."""
    return [(c, FileLock.from_wire(w)) for c, d in sorted(sessions.items())
            if client is None or c == client for w in d.get("locks", [])]


def holders(sessions: dict[str, dict]) -> set[str]:
    return {c for c, d in sessions.items() if d.get("locks")}


def conflict(sessions: dict[str, dict], client: str, want: FileLock) -> tuple[str, FileLock] | None:
    """The first held lock of another (session, owner) that `want` conflicts with."""
    for c, lk in held(sessions):
        if (c, lk.owner) == (client, want.owner):
            continue
        if lk.overlaps(want) and lr.conflicting_types(lk.type, want.type):
            return c, lk
    return None


def set_event(client: str, lock: FileLock) -> dict:
    return {"t": EFLOCK, "client": client, "op": "set", "lock": lock.to_wire()}


def unlock_event(client: str, lock: FileLock) -> dict:
    return {"t": EFLOCK, "client": client, "op": "unlock", "lock": lock.to_wire()}


def apply(sessions: dict[str, dict], ev: dict) -> None:
    """An EFLock event onto the table. A set replaces what the owner held over the range (an
    upgrade, a downgrade, a merge); an unlock cuts the range out. A lock of a session that
    has gone meanwhile is dropped."""
    entry = sessions.get(ev["client"])
    if entry is None:
        return
    lock = FileLock.from_wire(ev["lock"])
    kept = []
    for w in entry.get("locks", []):
        old = FileLock.from_wire(w)
        if old.owner != lock.owner or not old.overlaps(lock):
            kept.append(w)
            continue
        for start, end in lr.cut(old.start, old.end, lock.start, lock.end):
            kept.append(FileLock(old.ino, old.owner, old.type, start, end).to_wire())
    if ev["op"] == "set":
        kept.append(lock.to_wire())
    kept.sort(key=lambda w: (w["ino"], w["owner"], w["start"]))
    if kept:
        entry["locks"] = kept
    else:
        entry.pop("locks", None)


def reinstall(sessions: dict[str, dict], client: str, locks: list[FileLock]) -> tuple[list[dict], list[FileLock]]:
    """A reconnecting client's locks: the set events for those the table lacks, and those
    that conflict with another session's (not installed: that client has lost them)."""
    events, lost = [], []
    have = set(lk for c, lk in held(sessions, client))
    table = {c: {"locks": list(d.get("locks", []))} for c, d in sessions.items()}
    table.setdefault(client, {"locks": []})
    for lk in locks:
        if lk in have:
            continue
        if conflict(table, client, lk) is not None:
            lost.append(lk)
            continue
        ev = set_event(client, lk)
        apply(table, ev)
        events.append(ev)
    return events, lost
