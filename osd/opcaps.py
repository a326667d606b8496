"""cephx at the osd, sans-IO: may this connection's peer run this op? (Ceph's OSDCap match in
PrimaryLogPG, and the blocklist check by the session's address, F4.)

The address an op is judged by is the connection's, named at the handshake and checked
against the socket; an op naming another is refused (EPERM). A gid (from the ticket, which
the peer cannot forge) keeps every address it was seen at: once one of them is blocklisted,
that instance is fenced under any other address too.
"""

from __future__ import annotations

import errno

from common.caps import CapsError, OSDCaps

READ_OPS = frozenset({"read", "stat", "omap_get", "list", "list_all", "watch", "unwatch",
                      "notify", "notify_ack"})
# these name no object: they act on this connection's own watches and notifies
CONNECTION_OPS = frozenset({"notify_ack", "unwatch"})
ALL_NAMESPACES = "\0*"  # list_all: only a grant for every namespace covers it
EBLOCKLISTED = errno.ESHUTDOWN


def parse(text: str) -> OSDCaps | None:
    try:
        return OSDCaps.parse(text)
    except CapsError:
        return None


class GidAddrs:
    """gid -> the address instances it authenticated with (bounded per gid)."""

    def __init__(self, keep: int = 16) -> None:
        self.keep = keep
        self.addrs: dict[int, list[str]] = {}

    def saw(self, gid: int, addr: str) -> None:
        if gid and addr:
            seen = self.addrs.setdefault(gid, [])
            if addr not in seen:
                seen.append(addr)
                del seen[:-self.keep]

    def of(self, gid: int) -> list[str]:
        return self.addrs.get(gid, [])


def _fenced(osdmap, addr: str) -> bool:
    if osdmap.is_blocklisted(addr):
        return True
    host = addr.split("/")[0].rpartition(":")[0]
    return bool(host) and osdmap.is_blocklisted(f"{host}:0/0")


def check(ident, bound_addr: str, caps: OSDCaps | None, op, osdmap,
          gids: GidAddrs) -> tuple[int, str] | None:
    """None if the op may run; else (errno, reason)."""
    if not bound_addr or op.addr != bound_addr:
        return errno.EPERM, (f"op names address {op.addr} but the connection of "
                             f"{ident.entity} is {bound_addr} (spoofed address)")
    for addr in gids.of(ident.gid):
        if addr != bound_addr and _fenced(osdmap, addr):
            return EBLOCKLISTED, (f"{ident.entity} (gid {ident.gid}) is blocklisted at {addr}; "
                                  f"refused under {op.addr or bound_addr} too")
    if op.op in CONNECTION_OPS:
        return None
    pool = osdmap.pools.get(op.pool)
    name = pool.name if pool is not None else str(op.pool)
    ns = ALL_NAMESPACES if op.op == "list_all" else op.ns
    need = {"r"} if op.op in READ_OPS else {"r", "w"}
    if op.op == "operate" and all(isinstance(s, dict) and s.get("op") in READ_OPS
                                  for s in op.ops):
        need = {"r"}
    if caps is None or not caps.allows(name, ns, need):
        what = "read" if need == {"r"} else "write"
        where = f"pool={name}" + (f" namespace={op.ns}" if op.op != "list_all" else "")
        return errno.EPERM, f"{ident.entity} may not {what} in {where} (osd caps)"
    return None
