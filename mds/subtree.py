"""Subtrees across active ranks, sans-IO (multi-active MDS; ref R3 resolve, R7, X4).

The contents of a directory (its dentries and the inodes they name) belong to one rank. Rank 0
holds the root. A rank holds the contents of each directory in `ns.auth_roots` and of every
directory beneath it, down to the directories it exported (`ns.exported`: ino -> rank). An
inode is served by the rank holding the dentry that names it, so a request goes to the rank
holding its parent directory's contents (`readdir`: the directory's own contents). Another rank
keeps *stubs* for the directories above its subtree roots, only to resolve paths; a rank that
is asked about a path it does not hold answers with the rank to ask instead (a forward), as
the walk below finds it.

A subtree moves with an export: the exporter freezes it, writes all its dirty metadata back
(so nothing it journaled earlier is written over the importer's later changes), sends the
contents, the importer journals them in an EImport (the commit point: from then on the
subtree is the importer's), and the exporter journals an EExport and forgets the contents.
Export ids make a resent export idempotent; a rank recovering from a crash between the two
journal writes learns in up:resolve which of its subtrees a peer imported (`resolve`).
"""

from __future__ import annotations

import errno
import zlib

from mds.events import EEXPORT, EIMPORT, ESUBTREEMAP
from mds.namespace import ROOT_INO, FSError, Inode, Namespace, split

PIN_XATTR = "ceph.dir.pin"


def _mark(ns: Namespace, ino: int) -> int | None:
    if ino in ns.auth_roots:
        return ns.rank
    return ns.exported.get(ino)


def owner(ns: Namespace, parts: list[str]) -> tuple[int, str]:
    """Which rank holds the contents of directory `parts`, as far as this rank can tell, and
    the subtree root that decided it. Beyond what it holds, it names the rank to ask next."""
    ino = ROOT_INO
    rank = _mark(ns, ROOT_INO)
    rank = 0 if rank is None else rank
    decided = "/"
    for i, name in enumerate(parts):
        child = ns.dentries.get(ino, {}).get(name)
        if child is None:
            return rank, decided  # ours: the request will say ENOENT; else: ask the holder
        ino = child
        mark = _mark(ns, ino)
        if mark is not None:
            rank, decided = mark, "/" + "/".join(parts[: i + 1])
    return rank, decided


def _key_dirs(op: str, args: dict) -> list[list[str]]:
    if op == "readdir":
        return [split(args["path"])]
    if op == "rename":
        return [split(args["src"])[:-1], split(args["dst"])[:-1]]
    parts = split(args["path"])
    return [parts[:-1]] if parts else [[]]


def route(ns: Namespace, op: str, args: dict) -> tuple[int, str] | None:
    """None: this rank serves the request. Else (rank, subtree root): forward it there.
    A rename is served by the rank holding the destination's directory (the master of a
    cross-rank rename, mds.xrank), as Ceph's client sends it to the destination's auth."""
    for key in ("src", "dst") if op == "rename" else ("path",):
        if not isinstance(args.get(key), str):
            raise FSError(errno.EINVAL, f"'{key}' must be a string")
    if op not in ("readdir", "rename") and not split(args["path"]):
        return None if ns.rank == 0 else (0, "/")  # the root inode itself: rank 0
    keys = _key_dirs(op, args)
    rank, decided = owner(ns, keys[-1])  # a rename: the destination's directory
    return None if rank == ns.rank else (rank, decided)


def _lookup(ns: Namespace, path: str | None) -> Inode | None:
    if not isinstance(path, str):
        return None
    try:
        return ns.resolve(path)
    except FSError:
        return None


def holds(ns: Namespace, ino: int) -> bool:
    """Does this rank hold the contents of directory `ino`?"""
    while True:
        mark = _mark(ns, ino)
        if mark is not None:
            return mark == ns.rank
        if ino == ROOT_INO or ino not in ns.parent:
            return ns.rank == 0 and ino == ROOT_INO
        ino = ns.parent[ino]


def under(ns: Namespace, ino: int, roots: set[int]) -> bool:
    """Is `ino` one of `roots` or beneath one?"""
    while True:
        if ino in roots:
            return True
        if ino == ROOT_INO or ino not in ns.parent:
            return False
        ino = ns.parent[ino]


def key_inos(ns: Namespace, op: str, args: dict) -> list[int]:
    """The directories a request reads or changes, and the directory it removes or moves
    (a frozen or locked one must not go away under an export or a cross-rank operation)."""
    out = []
    for parts in _key_dirs(op, args):
        node = _lookup(ns, "/" + "/".join(parts))
        if node is not None:
            out.append(node.ino)
    for key in ("path", "src", "dst") if op in ("rmdir", "rename") else ():
        node = _lookup(ns, args.get(key))
        if node is not None and node.is_dir:
            out.append(node.ino)
    return out


def default_rank(name: str, max_mds: int) -> int:
    """Unpinned top-level directories are spread over the ranks by a hash of their name."""
    return zlib.crc32(name.encode()) % max_mds if max_mds > 1 else 0


# -- snapshots and events
def chain(ns: Namespace, ino: int) -> list[list]:
    """[parent ino, name, inode] from the root's child down to `ino` (the stubs to graft)."""
    out = []
    while ino != ROOT_INO:
        out.append([ns.parent[ino], ns.dname[ino], ns.inodes[ino].to_wire()])
        ino = ns.parent[ino]
    return list(reversed(out))


def snapshot(ns: Namespace, root: int) -> dict:
    """What an export sends: the chain to `root` and its contents, parents first."""
    entries, todo, nested = [], [root], []
    while todo:
        d = todo.pop(0)
        if d != root and d in ns.exported:
            nested.append([d, ns.exported[d]])
            continue
        for name, ino in sorted(ns.dentries.get(d, {}).items()):
            node = ns.inodes[ino]
            entries.append([d, name, node.to_wire()])
            if node.is_dir:
                todo.append(ino)
    return {"root": root, "chain": chain(ns, root), "entries": entries, "exported": nested}


def subtree_map(ns: Namespace) -> dict:
    """The ESubtreeMap payload: what this rank holds at a segment's start (J1, load)."""
    return {"auth": [[r, chain(ns, r) if r != ROOT_INO else []] for r in sorted(ns.auth_roots)
                     if r in ns.inodes],
            "exported": sorted([k, v] for k, v in ns.exported.items()),
            "imported": sorted([k, v] for k, v in ns.imported.items()),
            "xpeer": ns.xpeer, "xmaster": ns.xmaster}  # mds.xrank, carried across segments


def graft_chain(ns: Namespace, links: list[list]) -> None:
    for parent, name, wire in links:
        node = Inode.from_wire(wire)
        if node.ino in ns.inodes or parent not in ns.dentries:
            continue
        ns.attach(parent, name, node)


def _prune(ns: Namespace, root: int, keep: frozenset[int] = frozenset()) -> None:
    """Forget a directory's contents (kept: the directory's own inode, and the subtrees
    rooted at `keep`, which this rank holds itself, with the stubs on the way to them)."""
    way: set[int] = set()
    for k in keep:
        ino = ns.parent.get(k)
        while ino is not None and ino != root and ino not in way and ino != ROOT_INO:
            way.add(ino)
            ino = ns.parent.get(ino)
    for name, child in list(ns.dentries.get(root, {}).items()):
        forget(ns, child, keep, frozenset(way))
        if child not in keep and child not in way:
            del ns.dentries[root][name]


def forget(ns: Namespace, ino: int, keep: frozenset[int] = frozenset(),
            way: frozenset[int] = frozenset()) -> None:
    if ino in keep:
        return
    for name, child in list(ns.dentries.get(ino, {}).items()):
        forget(ns, child, keep, way)
        if ino in way and child not in keep and child not in way:
            del ns.dentries[ino][name]
    if ino in way:
        # A stub above a subtree we keep: it stays, with only the way down. Its contents
        # went with the export (`snapshot` stops only at directories exported elsewhere), so
        # a subtree root of ours here is ours no more: exporting the bare stub again would
        # make the importer drop the contents it was just given.
        if ino not in ns.exported:
            ns.auth_roots.discard(ino)
            ns.imported.pop(ino, None)
        return
    ns.dentries.pop(ino, None)
    ns.inodes.pop(ino, None)
    ns.parent.pop(ino, None)
    ns.dname.pop(ino, None)
    ns.exported.pop(ino, None)
    ns.auth_roots.discard(ino)
    ns.imported.pop(ino, None)


def apply(ns: Namespace, ev: dict) -> None:
    """ESubtreeMap, EImport, EExport onto a namespace (called by mds.applier)."""
    t = ev["t"]
    if t == ESUBTREEMAP:
        if "auth" not in ev:
            return  # a journal from before subtrees: rank 0 holds everything
        for _, links in ev["auth"]:
            graft_chain(ns, links)
        ns.auth_roots = {r for r, _ in ev["auth"]}
        ns.exported = {int(k): v for k, v in ev["exported"]}
        ns.imported = {int(k): list(v) for k, v in ev["imported"]}
        ns.xpeer = dict(ev.get("xpeer", {}))
        ns.xmaster = dict(ev.get("xmaster", {}))
    elif t == EIMPORT:
        root = ev["root"]
        graft_chain(ns, ev["chain"])
        if root not in ns.inodes:
            return
        parent_rank = owner(ns, split(ns.path_of(root))[:-1])[0]
        # Subtrees beneath it that we hold already (imported earlier) stay, and merge.
        ours = frozenset(r for r in ns.auth_roots if r != root and under(ns, r, {root}))
        _prune(ns, root, ours)
        for parent, name, wire in ev["entries"]:
            if parent in ns.dentries:
                ns.attach(parent, name, Inode.from_wire(wire))
        ns.exported.pop(root, None)
        _drop_stale_marks(ns, root, ours | {ino for ino, _ in ev["exported"]})
        for ino, rank in ev["exported"]:
            if rank == ns.rank:
                ns.auth_roots.discard(ino)
                ns.imported.pop(ino, None)
            else:
                ns.exported[ino] = rank
        if parent_rank != ns.rank:
            ns.auth_roots.add(root)
        ns.imported[root] = [ev["from"], ev["export_id"]]
    elif t == EEXPORT:
        root = ev["root"]
        if root not in ns.inodes:
            return
        _prune(ns, root, frozenset(_held_beyond(ns, root)))
        ns.auth_roots.discard(root)
        ns.imported.pop(root, None)
        ns.exported[root] = ev["to"]


def _drop_stale_marks(ns: Namespace, root: int, bounds: set[int] | frozenset[int]) -> None:
    """An import's snapshot says who holds what beneath `root`, down to `bounds` (its nested
    exports and our subtrees kept there): an export mark of ours in between is stale. It is
    left on a stub above a subtree we hold, from when we exported that directory ourselves,
    before the exporter merged it into a parent it held: kept, it would send requests to
    the exporter, which may be a rank that has stopped (X4)."""
    for d in [d for d in ns.exported if d != root]:
        ino = ns.parent.get(d)
        while ino is not None and ino not in bounds:
            if ino == root:
                del ns.exported[d]
                break
            if ino == ROOT_INO:
                break
            ino = ns.parent.get(ino)


def _held_beyond(ns: Namespace, root: int) -> list[int]:
    """Our subtree roots beneath `root` below a directory exported elsewhere: an export of
    `root` does not carry them (`snapshot` stops there), so they stay ours."""
    out = []
    for r in ns.auth_roots:
        ino = ns.parent.get(r)
        while r != root and ino is not None and ino != root and ino != ROOT_INO:
            if ino in ns.exported:
                out.append(r)
                break
            ino = ns.parent.get(ino)
    return out


def import_event(snap: dict, from_rank: int, export_id: str) -> dict:
    return {"t": EIMPORT, "root": snap["root"], "chain": snap["chain"],
            "entries": snap["entries"], "exported": snap["exported"], "from": from_rank,
            "export_id": export_id}


def unfinished_export(ns: Namespace, root: int) -> bool:
    """R3 resolve: a peer says it imported `root` from us. Is that an export we never
    finished (we still hold the contents)? Not if we only keep a stub of it: e.g. an import
    the peer merged into a parent it imported too, above a subtree of ours (its record of
    that import outlives the merge)."""
    return root in ns.inodes and root not in ns.exported and holds(ns, root)


def imported_ids(ns: Namespace) -> set[str]:
    return {v[1] for v in ns.imported.values()}
