"""Operations across ranks, sans-IO: a rename between subtrees of different ranks and rmdir of
a directory whose contents another rank holds, done as Ceph does them with a master and a
witness (Server::handle_client_rename / _rename_prepare_witness / handle_peer_rename_prep,
_rmdir_prepare_witness; EPeerUpdate PREPARE/COMMIT/ROLLBACK; MDCache resolve).

The *master* is the rank serving the request: the holder of the destination's directory for a
rename, of the parent directory for an rmdir. The *witness* is the one other rank involved:
the holder of the source's directory, or of the renamed (removed) directory's contents.

1. The master checks what it holds, locks the directories involved (their requests wait) and
   asks the witness to prepare. The witness checks its side, journals an EPeerUpdate PREPARE
   holding the change it will make, locks its directories and answers (with the inode that
   moves, for a rename).
2. The master journals its EUpdate (the commit point: from then on the operation happened) and
   remembers it as uncommitted at the witness (`ns.xmaster`).
3. It tells the witness to commit: the witness applies the change and journals a COMMIT (it
   applies nothing before: a prepared change only locks). The master then journals ECommitted.

The decision is the master's alone: an operation happened iff the master journaled its
EUpdate. A master whose prepare got no answer never commits that id and tells the witness to
roll back. Recovery (up:resolve) settles the rest from the journals: a witness with a prepared
update asks the master (`decide`): committed iff the id is in the master's `xmaster`; a master
re-sends COMMIT for its `xmaster` ids. So an entry exists exactly once: never lost, never
duplicated. Both tables are carried from segment to segment in the ESubtreeMap.

A directory renamed to another rank keeps its contents where they are (a new subtree root of
their holder), as Ceph's dirfrags stay with their auth; a rank holding subtrees beneath a
renamed directory moves its stub of it (a witness too); a rename over an empty directory
another rank holds asks that rank to see it empty. Left out: an operation that would need
two witnesses (three ranks involved) is refused with EXDEV.
"""

from __future__ import annotations

import errno

from mds import subtree
from mds.events import ECOMMITTED, EPEERUPDATE
from mds.namespace import ROOT_INO, FSError, Inode, Namespace, split

PREPARE, COMMIT, ROLLBACK = "prepare", "commit", "rollback"


class Forward(Exception):
    """The witness asked does not hold the source: ask `rank`."""

    def __init__(self, rank: int) -> None:
        super().__init__(f"forward to mds rank {rank}")
        self.rank = rank


def _exdev(ns: Namespace, ino: int, path: str) -> FSError:
    return FSError(errno.EXDEV, f"{path} is a subtree root held by mds rank {ns.exported[ino]}")


# -- the master
def plan(ns: Namespace, op: str, args: dict, now: float) -> dict | None:
    """For a request this rank serves (`subtree.route` said so): None if it is local, else
    {"witness": rank, "req": what to ask it, "locks": our directories to lock}. Raises
    FSError for what the master can already refuse."""
    if op == "rmdir":
        node = ns.resolve(args["path"])
        if not node.is_dir or node.ino not in ns.exported:
            return None
        parent = ns.parent[node.ino]
        return {"witness": ns.exported[node.ino], "locks": [parent],
                "req": {"kind": "rmdir", "ino": node.ino, "path": args["path"]}}
    if op != "rename":
        return None
    dparent, dname = ns.parent_of(args["dst"])
    sparts = split(args["src"])
    if not sparts:
        raise FSError(errno.EBUSY, "/")
    s_rank = subtree.owner(ns, sparts[:-1])[0]
    replaced = ns.dentries[dparent.ino].get(dname)
    # A directory replaced whose contents another rank holds: that rank must see it empty.
    drop_at = ns.exported.get(replaced) if replaced is not None else None
    dst = {"dparent": dparent.ino, "dname": dname, "chain": subtree.chain(ns, dparent.ino),
           "stamp": now, "ancestors": _ancestors(ns, dparent.ino), "replaced": replaced}
    if replaced is not None:
        old = ns.inodes[replaced]
        dst.update(dst_dir=old.is_dir, dst_empty=not ns.dentries.get(replaced))
    if s_rank != ns.rank:  # the source's dentry is another rank's: it is the witness
        if drop_at not in (None, s_rank):
            raise FSError(errno.EXDEV, f"{args['dst']} and {args['src']} are held by two "
                                       f"other ranks")
        return {"witness": s_rank, "locks": [dparent.ino],
                "req": dict(dst, kind="rename", src=args["src"],
                            drop=replaced if drop_at is not None else None)}
    src = ns.resolve(args["src"])
    # The directory's contents, or subtrees beneath it, held by another rank: its copy of
    # the directory (a subtree root, or a stub above one) moves too.
    below = {r for d, r in ns.exported.items() if src.is_dir and subtree.under(ns, d, {src.ino})}
    others = (below | {drop_at}) - {ns.rank, None}
    if not others or src.ino == replaced:
        return None  # all ours: a local rename
    if len(others) > 1:
        raise FSError(errno.EXDEV, f"{args['src']} or {args['dst']} involve several other "
                                   f"ranks")
    ns.prepare("rename", args, 0.0)  # the usual checks (into itself, replaced...)
    witness = others.pop()
    sparent = ns.parent[src.ino]
    return {"witness": witness, "locks": sorted({dparent.ino, sparent}),
            "req": dict(dst, kind="relink", ino=src.ino, src=args["src"],
                        move=witness in below, keep=ns.exported.get(src.ino) == witness,
                        drop=replaced if drop_at is not None else None)}


def _ancestors(ns: Namespace, ino: int) -> list[int]:
    out = [ino]
    while ino != ROOT_INO and ino in ns.parent:
        ino = ns.parent[ino]
        out.append(ino)
    return out


def master_event(ns: Namespace, op: str, args: dict, p: dict, reply: dict, xid: str,
                 now: float) -> dict:
    """The master's EUpdate once the witness prepared (`reply` its answer)."""
    req, witness = p["req"], p["witness"]
    now = req.get("stamp", now)
    if req["kind"] == "rmdir":
        ino = req["ino"]
        return {"op": "xrmdir", "id": xid, "witness": witness, "parent": ns.parent[ino],
                "name": ns.dname[ino], "ino": ino, "stamp": now}
    ev = {"op": "xrename", "id": xid, "witness": witness, "dparent": req["dparent"],
          "dname": req["dname"], "replaced": req["replaced"], "stamp": now}
    if req["kind"] == "relink":  # our dentry moves; the contents stay with the witness
        ino = req["ino"]
        ev.update(sparent=ns.parent[ino], sname=ns.dname[ino], ino=ino,
                  inode=ns.inodes[ino].to_wire(), contents=ns.exported.get(ino, ns.rank))
    else:
        ev.update(ino=reply["inode"]["ino"], inode=reply["inode"],
                  contents=reply.get("contents"))
    return ev


# -- the witness
def prepare(ns: Namespace, master: int, xid: str, req: dict, locked: set[int],
            frozen: set[int]) -> tuple[dict, dict]:
    """Check the witness's side of `req`; return (the PREPARE event, the answer). Raises
    FSError (nothing journaled), or Forward if another rank holds the source."""
    if xid in ns.xpeer:  # a resent prepare: the same answer
        return {}, ns.xpeer[xid]["reply"]
    kind = req.get("kind")
    if kind == "rmdir":
        ino = int(req["ino"])
        if ino not in ns.inodes or not subtree.holds(ns, ino):
            raise FSError(errno.EAGAIN, f"{req.get('path')} is not held here (moving?)")
        if ns.dentries.get(ino):
            raise FSError(errno.ENOTEMPTY, str(req.get("path")))
        change = {"kind": "rmdir", "ino": ino}
        locks, reply = [ino], {}
    elif kind in ("rename", "relink"):
        change, locks, reply = _prepare_rename(ns, master, req)
        if req.get("drop") is not None:  # the directory the rename replaces: empty here?
            drop = int(req["drop"])
            if drop not in ns.auth_roots:
                raise FSError(errno.EAGAIN, "the replaced directory is not held here (moving?)")
            if ns.dentries.get(drop):
                raise FSError(errno.ENOTEMPTY, "destination is not empty")
            change["drop"] = drop
            locks = locks + [drop]
    else:
        raise FSError(errno.EINVAL, f"unknown cross-rank operation {kind!r}")
    if any(subtree.under(ns, i, frozen) for i in locks) or set(locks) & locked:
        raise FSError(errno.EAGAIN, "busy (an export or another cross-rank operation)")
    ev = {"t": EPEERUPDATE, "phase": PREPARE, "id": xid, "master": master, "change": change,
          "locks": locks, "reply": reply}
    return ev, reply


def _prepare_rename(ns: Namespace, master: int, req: dict) -> tuple[dict, list[int], dict]:
    dst = {k: req[k] for k in ("dparent", "dname", "chain", "stamp")}
    if req["kind"] == "relink" and not req.get("move", True):  # only what it replaces
        return dict(dst, kind="rename", ino=None, keep=False), [], {}
    if req["kind"] == "relink":  # the master holds the dentry; we hold what is beneath
        ino, keep = int(req["ino"]), bool(req["keep"])
        below = _held_below(ns, ino)
        if ino not in ns.inodes or (keep and ino not in ns.auth_roots) or \
                (not keep and not below):
            raise FSError(errno.EAGAIN, f"{req.get('src')} is not held here (moving?)")
        return dict(dst, kind="rename", ino=ino, keep=keep), [ino] if keep else below, {}
    sparts = split(req["src"])
    holder = subtree.owner(ns, sparts[:-1])[0]
    if holder != ns.rank:
        raise Forward(holder)
    src = ns.resolve(req["src"])
    if src.ino == ROOT_INO:
        raise FSError(errno.EBUSY, "/")
    if src.ino in req["ancestors"]:
        raise FSError(errno.EINVAL, "cannot move a directory into itself")
    if req.get("replaced") is not None and req["replaced"] != src.ino:
        if req["dst_dir"] and not src.is_dir:
            raise FSError(errno.EISDIR, "destination is a directory")
        if src.is_dir and not req["dst_dir"]:
            raise FSError(errno.ENOTDIR, "destination is not a directory")
        if req["dst_dir"] and not req["dst_empty"]:
            raise FSError(errno.ENOTEMPTY, "destination is not empty")
    contents = None
    if src.is_dir:
        contents = ns.exported.get(src.ino, ns.rank)
        if contents not in (ns.rank, master):
            raise _exdev(ns, src.ino, req["src"])
        if any(r != master and subtree.under(ns, d, {src.ino}) for d, r in ns.exported.items()):
            raise FSError(errno.EXDEV, f"{req['src']} has subtrees held by a third rank")
    sparent = ns.parent[src.ino]
    change = dict(dst, kind="rename", ino=src.ino, sparent=sparent, sname=ns.dname[src.ino],
                  keep=contents == ns.rank)
    locks = [sparent] + ([src.ino] if contents == ns.rank else [])
    return change, locks, {"inode": ns.stat(src), "contents": contents}


# -- resolve (up:resolve): the master decides
def decide(ns: Namespace, xids: list[str]) -> list[str]:
    """At the master: which of these ids committed (its EUpdate is journaled)."""
    return [x for x in xids if x in ns.xmaster]


def prepared_for(ns: Namespace, master: int) -> list[str]:
    """At a witness: the ids prepared for `master` and not yet committed or rolled back."""
    return sorted(x for x, p in ns.xpeer.items() if p["master"] == master)


def locks(ns: Namespace) -> set[int]:
    return {i for p in ns.xpeer.values() for i in p["locks"]}


def finish_event(ns: Namespace, xid: str, commit: bool) -> dict | None:
    """The witness's COMMIT (self-contained: it carries the change) or ROLLBACK; None if
    `xid` is not prepared here (finished already: a resent decision)."""
    p = ns.xpeer.get(xid)
    if p is None:
        return None
    if commit:
        return {"t": EPEERUPDATE, "phase": COMMIT, "id": xid, "change": p["change"]}
    return {"t": EPEERUPDATE, "phase": ROLLBACK, "id": xid}


def dirty(ev: dict) -> set[int]:
    """Directories whose objects a witness's COMMIT changes."""
    if ev.get("t") != EPEERUPDATE or ev.get("phase") != COMMIT:
        return set()
    c = ev["change"]
    out = {c[k] for k in ("sparent", "drop") if c.get(k) is not None}
    return out | ({c["ino"]} if c["kind"] == "rmdir" else set())


# -- applying the events (called by mds.applier: live, replay and write-back)
def apply(ns: Namespace, ev: dict) -> None:
    t = ev.get("t")
    if t == EPEERUPDATE:
        if ev["phase"] == PREPARE:
            ns.xpeer[ev["id"]] = {k: ev[k] for k in ("master", "change", "locks", "reply")}
            return
        if ev["phase"] == COMMIT:
            _apply_change(ns, ev["change"])
        ns.xpeer.pop(ev["id"], None)
    elif t == ECOMMITTED:
        ns.xmaster.pop(ev["id"], None)
    elif ev.get("op") == "xrmdir":
        ns.unlink_dentry(ev["parent"], ev["name"], ev["ino"], ev["stamp"])
        if ns.parent.get(ev["ino"]) == ev["parent"]:
            _drop(ns, ev["ino"])
        ns.exported.pop(ev["ino"], None)
        ns.xmaster[ev["id"]] = ev["witness"]
    elif ev.get("op") == "xrename":
        _apply_rename_in(ns, ev)
        ns.xmaster[ev["id"]] = ev["witness"]


def _apply_rename_in(ns: Namespace, ev: dict) -> None:
    """The master's side: the dentry is linked at the destination (and unlinked from the
    source when that was ours too)."""
    ino = ev["ino"]
    if ev["dparent"] not in ns.dentries:
        return
    if ev.get("sparent") is not None:
        ns.unlink_dentry(ev["sparent"], ev["sname"], ino, ev["stamp"])
    node = Inode.from_wire(ev["inode"])
    ns.inodes[ino] = node
    if node.is_dir:
        ns.dentries.setdefault(ino, {})
    if ev["replaced"] is not None and ev["replaced"] != ino:
        ns.exported.pop(ev["replaced"], None)
    if not ns.link_dentry(ev["dparent"], ev["dname"], ino, ev["stamp"], ev["replaced"]):
        linked = ns.dentries.get(ns.parent.get(ino), {}).get(ns.dname.get(ino)) == ino
        if not linked:  # superseded by later events (replay): it is gone
            _drop(ns, ino)
            return
    node.ctime = max(node.ctime, ev["stamp"])
    if node.is_dir:
        contents = ev.get("contents")
        ns.auth_roots.discard(ino)
        if contents == ns.rank:  # ours already (imported earlier): it merges into our subtree
            ns.exported.pop(ino, None)
            ns.imported.pop(ino, None)
        elif contents is not None:
            ns.exported[ino] = contents


def _drop(ns: Namespace, ino: int) -> None:
    """Forget an inode, what is beneath it, and the dentry naming it (a stub's too)."""
    parent, name = ns.parent.get(ino), ns.dname.get(ino)
    if ns.dentries.get(parent, {}).get(name) == ino:
        del ns.dentries[parent][name]
    subtree.forget(ns, ino)


def _held_below(ns: Namespace, ino: int) -> list[int]:
    """Our subtree roots beneath directory `ino` (not `ino` itself)."""
    return sorted(r for r in ns.auth_roots if r != ino and subtree.under(ns, r, {ino}))


def _apply_change(ns: Namespace, c: dict) -> None:
    """The witness's side, at COMMIT."""
    ino = c["ino"]
    if c.get("drop") is not None and c["drop"] in ns.inodes:
        _drop(ns, c["drop"])  # the (empty) directory the rename replaced
    if c["kind"] == "rmdir":
        _drop(ns, ino)
        return
    if ino is None or ino not in ns.inodes:
        return
    below = _held_below(ns, ino)
    if c.get("sparent") is not None:
        ns.unlink_dentry(c["sparent"], c["sname"], ino, c["stamp"])
    if not c["keep"] and not below:
        _drop(ns, ino)
        return
    # Our contents stay (a subtree root of ours under its new name), or subtrees of ours
    # beneath it do (it stays as a stub above them, at its new place).
    subtree.graft_chain(ns, c["chain"])
    if c["dparent"] in ns.dentries:
        occupant = ns.dentries[c["dparent"]].get(c["dname"])
        if occupant is not None and occupant != ino:
            _drop(ns, occupant)  # a stale stub of what the rename replaced
            ns.dentries[c["dparent"]].pop(c["dname"], None)
        ns.link_dentry(c["dparent"], c["dname"], ino, c["stamp"])
    if c["keep"]:
        ns.auth_roots.add(ino)
