"""Export pins (ceph.dir.pin), the default spread of top-level directories, and up:resolve's
bookkeeping, sans-IO (ref R3 step 3, R7). The shell (`mds.peerlink`) exports and asks.
"""

from __future__ import annotations

from mds import subtree

PIN_XATTR = subtree.PIN_XATTR
# What to do with a pin set on a directory (see `decide`).
STAY, RELAY, EXPORT = "stay", "relay", "export"


def valid_pin(value) -> bool:
    try:
        return int(value) >= -1
    except (TypeError, ValueError):
        return False


def pin_in_request(op: str, args: dict) -> object | None:
    """The ceph.dir.pin value a setattr sets, if any."""
    xattrs = args.get("xattrs")
    return xattrs.get(PIN_XATTR) if op == "setattr" and isinstance(xattrs, dict) else None


def after_request(op: str, args: dict, rc: int, rank: int,
                  max_mds: int | None) -> tuple[str, int, int] | None:
    """After a request succeeded: (path, target rank, the parent's rank) to pin, for a pin
    set, or for a new top-level directory that the default spread (a hash of its name) puts
    on another rank (rank 0 decides); else None."""
    if rc != 0:
        return None
    if op == "setattr" and PIN_XATTR in (args.get("xattrs") or {}):
        return args["path"], int(args["xattrs"][PIN_XATTR]), rank
    if op == "mkdir" and rank == 0 and max_mds is not None and max_mds > 1:
        parts = [p for p in str(args.get("path", "")).split("/") if p]
        if len(parts) == 1:
            target = subtree.default_rank(parts[0], max_mds)
            if target != 0:
                return args["path"], target, 0
    return None


def decide(*, is_dir: bool, exported: bool, auth_root: bool, target: int, rank: int,
           parent_rank: int, target_active: bool) -> tuple[str, int]:
    """Where the contents of a pinned directory go: (STAY, -1), (RELAY, -1) to the rank
    holding them (it moves them, and its copy of the inode shows the pin), or (EXPORT, to)."""
    if not is_dir:
        return STAY, -1
    if exported:
        return RELAY, -1
    if target < 0:  # unpinned: back to the parent's rank
        return (EXPORT, parent_rank) if auth_root and parent_rank != rank else (STAY, -1)
    if target == rank or not target_active:
        return STAY, -1
    return EXPORT, target


def pins_to_enforce(ev: dict, rank: int) -> list[tuple[int, int]]:
    """Pins travel with their directories: (ino, target) for each imported directory pinned
    to another rank (e.g. pinned while an ancestor was being exported)."""
    out = []
    for _, _, wire in [ev["chain"][-1]] + ev["entries"] if ev["chain"] else ev["entries"]:
        pin = (wire.get("xattrs") or {}).get(PIN_XATTR)
        if pin is None or not valid_pin(pin) or int(pin) < 0 or int(pin) == rank:
            continue
        out.append((wire["ino"], int(pin)))
    return out


# -- up:resolve
def resolve_next(others: dict[int, int | None], asked: set[int], replayed) -> list[int]:
    """The ranks to ask now: `others` maps each other rank in the filesystem to its holder's
    state (None: no holder); a rank is asked once it has replayed its journal."""
    return [r for r, st in sorted(others.items())
            if r not in asked and st is not None and st in replayed]


def resolve_done(others, asked: set[int]) -> bool:
    """Our part of up:resolve is done once every other rank has answered."""
    return all(r in asked for r in others)


def xrank_outcomes(prepared_by_them: list[str], ours: dict[str, int], rank: int,
                   committed) -> dict[str, bool]:
    """We are the master: the outcome of each operation between us and `rank` (committed iff
    our EUpdate is journaled, i.e. its id is in `committed`)."""
    theirs = [(x, x in committed) for x in prepared_by_them]
    mine = [(x, True) for x, w in sorted(ours.items()) if w == rank]
    return dict(theirs + mine)
