"""MDS caps (cephx), sans-IO: may this client do this request, or open a session for this
root? Ceph's MDSAuthCaps: a write needs `rw` where it lands, any access outside the granted
paths is refused with EACCES, and a client whose caps do not cover the root it mounts is
rejected ("non-allowable root")."""

from __future__ import annotations

import errno

from common.caps import CapsError, MDSCaps
from mds.serving import READ_OPS

NON_ALLOWABLE_ROOT = "non-allowable root"


def parse(text: str) -> MDSCaps | None:
    """The caps in a ticket; None (nothing allowed) if they do not parse."""
    try:
        return MDSCaps.parse(text)
    except CapsError:
        return None


def paths_of(args: dict) -> list[str]:
    return [args[k] for k in ("path", "src", "dst") if isinstance(args.get(k), str)]


def check_request(caps: MDSCaps | None, op: str, args: dict) -> tuple[int, str] | None:
    """None if allowed, else (errno, reason)."""
    need = {"r"} if op in READ_OPS else {"r", "w"}
    for path in paths_of(args) or ["/"]:
        if caps is None or not caps.allows(path, need):
            what = "read" if need == {"r"} else "write"
            return errno.EACCES, f"permission denied: {what} access to {path} not in caps"
    return None


def check_root(caps: MDSCaps | None, root: str) -> bool:
    return caps is not None and caps.may_mount(root or "/")


def allow_all(caps: MDSCaps | None) -> bool:
    """`tell mds.*` commands need `allow *` (Ceph: MDSDaemon checks allow_all)."""
    return caps is not None and caps.allows("/", {"r", "w", "x"})
