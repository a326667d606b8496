"""The journal's event types, defined once (ref J3). A leaf module: the namespace, the subtree
and cross-rank cores, the journal and the applier (`mds.applier`) all name events from here."""

from __future__ import annotations

import stat

EUPDATE = "EUpdate"  # a metadata change (a client request, or a master's cross-rank op)
ESESSION = "ESession"  # a client's session opened or closed (C1)
ESUBTREEMAP = "ESubtreeMap"  # opens a segment: the subtrees the rank holds there
ESEGMENT = "ESegment"  # opens a segment (older journals)
EIMPORT = "EImport"  # a subtree handed to this rank (multi-active, mds.subtree)
EEXPORT = "EExport"  # a subtree handed away
EPEERUPDATE = "EPeerUpdate"  # a witness's side of a cross-rank operation (mds.xrank)
ECOMMITTED = "ECommitted"  # the master's: the witness has committed too
EFLOCK = "EFLock"  # a file lock set or unlocked by a client session (mds.filelocks)

SEGMENT_OPENERS = (ESUBTREEMAP, ESEGMENT)
SUBTREE_EVENTS = (ESUBTREEMAP, EIMPORT, EEXPORT)
XRANK_EVENTS = (EPEERUPDATE, ECOMMITTED)
XRANK_OPS = ("xrename", "xrmdir")  # the ops of a master's cross-rank EUpdate
# What a segment keeps to write back when it expires (J3).
WRITE_BACK = (EUPDATE, ESESSION, EIMPORT, EEXPORT, EPEERUPDATE, ECOMMITTED, EFLOCK)


def result_of(ev: dict) -> dict:
    """The result a journaled request was answered with: journaled with it, or for a create
    or mkdir (whose result is the new inode as the event made it) derived from the event, so
    that the journal stays small and replay decodes less (J5: the result answers a resend)."""
    result = ev.get("result")
    if result is not None:
        return result
    if ev.get("op") in ("create", "mkdir") and "ino" in ev:
        is_dir = stat.S_ISDIR(ev["mode"])
        return {"inode": {"ino": ev["ino"], "mode": ev["mode"], "uid": ev["uid"],
                          "gid": ev["gid"], "size": 0, "mtime": ev["stamp"],
                          "ctime": ev["stamp"], "nlink": 2 if is_dir else 1, "xattrs": {}}}
    return {}
