"""The rados_cluster grace database, sans-IO (NFS-Ganesha's src/support/rados_grace.c).

One RADOS object (default pool "nfs-ganesha", oid "grace") holds the cluster's epochs in its
data, two little-endian 64-bit values C (current) and R (recovery; 0: no grace period), and
one omap key per member whose 1-byte value holds the flags N (0x1, needs a grace period) and
E (0x2, enforcing it). Every change is a read-modify-write: `decode` what was read, let a
command below compute a `Change` (None: nothing to write), then write it asserting the version
read, retrying on ERANGE, and notify the watchers (the shell, nfs/grace_tool.py, does that).

Errors are GraceError with Ganesha's errno: ENOKEY for a node that is not a member,
ENOTRECOVERABLE for a damaged object (data shorter than 16 bytes, more than 1024 members),
ENOENT for `member` of a non-member, EL2NSYNC from `enforcing_check`.
"""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass, field

NEED_GRACE = 0x1  # N
ENFORCING = 0x2  # E
MAX_ITEMS = 1024  # omap keys read at once; more and the database is refused
DEFAULT_POOL = "nfs-ganesha"
DEFAULT_OID = "grace"
NOTIFY_TIMEOUT = 3.0  # rados_grace_notify: rados_notify2(..., 3000 ms)
SEPARATOR = "=" * 54


class GraceError(Exception):
    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message or errno.errorcode.get(code, str(code)))
        self.code = code


@dataclass(frozen=True)
class GraceDB:
    cur: int
    rec: int
    flags: dict[str, int] = field(default_factory=dict)  # member -> N|E bits

    @property
    def in_grace(self) -> bool:
        return self.rec != 0


@dataclass(frozen=True)
class Change:
    """What one command writes: new epochs (if `epochs` is set) and omap keys set or removed."""
    cur: int
    rec: int
    epochs: bool = False
    set: dict[str, int] = field(default_factory=dict)
    rm: tuple[str, ...] = ()

    def ops(self) -> list:
        """The write's sub-ops (osd.store.Store.operate), after the version assertion."""
        ops: list = []
        if self.epochs:
            ops.append(["write_full", encode_epochs(self.cur, self.rec)])
        if self.set:
            ops.append(["omap_set", {k: bytes([v]) for k, v in self.set.items()}])
        if self.rm:
            ops.append(["omap_rm", list(self.rm)])
        return ops


def encode_epochs(cur: int, rec: int) -> bytes:
    return struct.pack("<QQ", cur, rec)


def create_ops() -> list:
    """rados_grace_create: an exclusive create (EEXIST if there) with C=1, R=0."""
    return [["create", True], ["write_full", encode_epochs(1, 0)]]


def decode(data: bytes | None, omap: dict[str, bytes]) -> GraceDB:
    """The object as read (its first 16 bytes, all its omap). data None: not read (`add`
    reads only the omap)."""
    if len(omap) > MAX_ITEMS:
        raise GraceError(errno.ENOTRECOVERABLE, f"more than {MAX_ITEMS} members")
    cur = rec = 0
    if data is not None:
        if len(data) < 16:
            raise GraceError(errno.ENOTRECOVERABLE, f"epoch blob of {len(data)} bytes")
        cur, rec = struct.unpack("<QQ", data[:16])
    return GraceDB(cur, rec, {k: (v[0] if v else 0) for k, v in sorted(omap.items())})


def _matched(db: GraceDB, nodes: list[str]) -> None:
    """Every listed node must be a member; as Ganesha matches each key to the first equal
    nodeid, a nodeid listed twice is not matched the second time (ENOKEY)."""
    hit = [False] * len(nodes)
    for key in db.flags:
        for i, node in enumerate(nodes):
            if node == key:
                hit[i] = True
                break
    missing = [n for n, h in zip(nodes, hit, strict=True) if not h]
    if missing:
        raise GraceError(errno.ENOKEY, f"not a member: {', '.join(missing)}")


def add(db: GraceDB, nodes: list[str]) -> Change | None:
    """New members, flagged E (they may not hand out state until their own grace period is
    lifted). If any of them is a member already nothing changes (and it is not an error)."""
    if any(n in db.flags for n in nodes):
        return None
    return Change(db.cur, db.rec, set=dict.fromkeys(nodes, ENFORCING))


def join(db: GraceDB, nodes: list[str], start: bool) -> Change | None:
    """`start` (start=True) or `join`: set N and E on the nodes. With no grace period in force
    (R=0), `join` changes nothing and `start` begins one: R=C, C=C+1."""
    _matched(db, nodes)
    if db.rec == 0 and not start:
        return None
    flags = {n: db.flags[n] | NEED_GRACE | ENFORCING for n in nodes}
    if db.rec == 0:
        return Change(db.cur + 1, db.cur, epochs=True, set=flags)
    return Change(db.cur, db.rec, set=flags)


def lift(db: GraceDB, nodes: list[str], remove: bool = False) -> Change | None:
    """`lift` clears N on the nodes that have it; `remove` deletes the nodes. If that leaves
    no N set (Ganesha compares counts: those cleared or removed == those with N), R=0 and the
    grace period is over. While one is in force, nothing happens until every member enforces
    (checked before membership: a blocked lift of a non-member is no error either)."""
    need = sum(1 for f in db.flags.values() if f & NEED_GRACE)
    everyone_enforcing = all(f & ENFORCING for f in db.flags.values())
    if db.rec and not everyone_enforcing:
        return None
    _matched(db, nodes)
    if remove:
        keys = [n for n in db.flags if n in nodes]
        change_set: dict[str, int] = {}
    else:
        keys = [n for n in db.flags if n in nodes and db.flags[n] & NEED_GRACE]
        change_set = {n: db.flags[n] & ~NEED_GRACE for n in keys}
    if not keys:
        return None
    done = need == len(keys)
    return Change(db.cur, 0 if done else db.rec, epochs=done, set=change_set,
                  rm=tuple(keys) if remove else ())


def enforce(db: GraceDB, nodes: list[str], enable: bool) -> Change:
    """`enforce`/`noenforce`: set or clear E, keeping N; written (and notified) even when
    nothing changes, as Ganesha does."""
    _matched(db, nodes)
    bits = {n: db.flags[n] | ENFORCING if enable else db.flags[n] & ~ENFORCING
            for n in nodes}
    return Change(db.cur, db.rec, set=bits)


def member(found: dict[str, bytes], nodes: list[str]) -> None:
    """`member`: `found` is what an omap read of exactly these keys returned; ENOENT unless
    every listed node came back (a node listed twice counts twice)."""
    if len(found) != len(nodes):
        raise GraceError(errno.ENOENT, "not all of them are members")


def enforcing_check(db: GraceDB, nodeid: str) -> int:
    """rados_grace_enforcing_check: 0 when every member enforces and `nodeid` is one of them;
    -EL2NSYNC if some member does not enforce, -ENOKEY if `nodeid` is not a member."""
    ret = -errno.ENOKEY
    for key, f in db.flags.items():
        if not f & ENFORCING:
            return -errno.EL2NSYNC
        if key == nodeid:
            ret = 0
    return ret


def dump(db: GraceDB) -> str:
    """`cur=C rec=R`, a rule of 54 `=`, then a line per member: id, TAB, N or space, E or
    space."""
    lines = [f"cur={db.cur} rec={db.rec}", SEPARATOR]
    lines += [f"{k}\t{'N' if f & NEED_GRACE else ' '}{'E' if f & ENFORCING else ' '}"
              for k, f in db.flags.items()]
    return "\n".join(lines) + "\n"


def summary(db: GraceDB) -> str:
    """One line for the live view (client/demo.py): is a grace period in force, who needs it
    (N) and who enforces it (E)."""
    need = [k for k, f in db.flags.items() if f & NEED_GRACE]
    enforcing = [k for k, f in db.flags.items() if f & ENFORCING]
    if not db.rec:
        return f"no grace period (epoch {db.cur})"
    return (f"grace period in force (epoch {db.cur}, recovering {db.rec}): needed by "
            f"{' '.join(need) or 'nobody'}; enforced by {' '.join(enforcing) or 'nobody'}")
