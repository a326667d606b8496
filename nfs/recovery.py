"""The rados_cluster recovery databases of a head, sans-IO (NFS-Ganesha's
recovery_rados_cluster.c and recovery_rados_kv.c).

Each head keeps, beside the grace object and in the same pool and namespace, one recovery
database per epoch: the object `rec-<epoch as 16 hex digits>:<nodeid>`, whose omap has a key
per confirmed client (its client id in decimal) and a value `<client address>-(<length>:<client
owner>)`. A head that starts reads the clients that may reclaim from the database of epoch R
(the old one) and records its clients in the one of epoch C (the new one); a head that sees
another start a grace period (R != 0) writes its live clients to `rec-C` and enforces.
"""

from __future__ import annotations

import re

from nfs import grace

_VALUE = re.compile(r"^(?P<addr>.*)-\((?P<len>\d+):(?P<owner>.*)\)$", re.S)


def db_name(epoch: int, nodeid: str) -> str:
    """`rec-0000000000000002:a` (Ganesha's "rec-%16.16lx:%s")."""
    return f"rec-{epoch:016x}:{nodeid}"


def parse_db_name(name: str) -> tuple[int, str] | None:
    m = re.fullmatch(r"rec-([0-9a-f]{16}):(.+)", name, re.S)
    return (int(m.group(1), 16), m.group(2)) if m else None


def _display(owner: bytes) -> str:
    """The client owner as Ganesha shows it: as is when printable and without '/', else as
    hex bytes."""
    if owner and all(32 <= b < 127 and b != ord("/") for b in owner):
        return owner.decode()
    return "0x" + owner.hex()


def record(clientid: int, addr: str, owner: bytes | str) -> tuple[str, bytes]:
    """The omap key and value recording a confirmed client."""
    shown = _display(owner.encode() if isinstance(owner, str) else owner)
    return str(clientid), f"{addr}-({len(shown)}:{shown})".encode()


def parse_record(value: bytes) -> tuple[str, str] | None:
    """(address, owner as shown) of a recovery record; None if it is not one."""
    m = _VALUE.match(value.decode(errors="replace"))
    if m is None or int(m.group("len")) != len(m.group("owner")):
        return None
    return m.group("addr"), m.group("owner")


def reclaimable(omap: dict[str, bytes]) -> set[str]:
    """The client owners of an old recovery database: who may reclaim."""
    return {r[1] for r in map(parse_record, omap.values()) if r is not None}


def survivor_must_enforce(db: grace.GraceDB, in_grace: bool) -> bool:
    """rados_cluster_maybe_start_grace: a head not in grace sees R != 0 (another head
    started one): it records its clients in rec-C and enforces (E, no N)."""
    return not in_grace and db.rec != 0


def deletable(names: list[str], nodeid: str, db: grace.GraceDB) -> list[str]:
    """This head's recovery databases it may delete (ganesha-rados-cluster-design): with a
    grace period in force those before R, else all but the current one (C)."""
    out = []
    for name in names:
        parsed = parse_db_name(name)
        if parsed is None or parsed[1] != nodeid:
            continue
        epoch = parsed[0]
        if (db.rec and epoch < db.rec) or (not db.rec and epoch != db.cur):
            out.append(name)
    return out
