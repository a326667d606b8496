"""Cross-rank operations (mds.xrank), sans-IO: the master/witness protocol of a rename between
ranks and of rmdir of an exported subtree root, and what recovery (up:resolve) decides from
each side's journal after a crash at every point."""

from __future__ import annotations

import errno

import pytest

from mds import applier, subtree, xrank
from mds import journal as j
from mds.namespace import FSError, Namespace


class Rank:
    """A rank's namespace and the journal it wrote since `base`: a crash replays it."""

    def __init__(self, ns: Namespace) -> None:
        self.ns = ns
        self.base = ns.to_wire()
        self.journal: list[dict] = []

    def log(self, ev: dict | None) -> None:
        if ev:
            applier.apply(self.ns, ev)
            self.journal.append(ev)

    def crash(self) -> None:
        """Restart: what the journal holds, nothing held in memory only (R3 replay)."""
        self.ns = Namespace.from_wire(self.base)
        for ev in self.journal:
            applier.apply(self.ns, ev)


def _cluster() -> tuple[Rank, Rank]:
    """Rank 0 holds / with /c/g (a file) and /d/e (a directory); rank 1 holds /a/b."""
    ns0 = Namespace(now=1.0, rank=0)
    for op, path in [("mkdir", "/a"), ("mkdir", "/a/b"), ("mkdir", "/c"), ("create", "/c/g"),
                     ("mkdir", "/d"), ("mkdir", "/d/e"), ("create", "/d/e/f")]:
        applier.apply(ns0, ns0.prepare(op, {"path": path}, 2.0))
    ns1 = Namespace(rank=1)
    root = ns0.resolve("/a").ino
    applier.apply(ns1, subtree.import_event(subtree.snapshot(ns0, root), 0, "x.1"))
    applier.apply(ns0, {"t": subtree.EEXPORT, "root": root, "to": 1, "export_id": "x.1"})
    return Rank(ns0), Rank(ns1)


def _ranks(r0: Rank, r1: Rank) -> dict[int, Rank]:
    return {0: r0, 1: r1}


def ls(ranks: dict[int, Rank], path: str) -> list[str]:
    """readdir as a client sees it: from the rank holding the directory's contents."""
    for r in ranks.values():
        try:
            node = r.ns.resolve(path)
        except FSError:
            continue
        if subtree.holds(r.ns, node.ino):
            return sorted(n for n, _ in r.ns.readdir(path))
    raise FileNotFoundError(path)


def _steps(master: Rank, witness: Rank, m: int, w: int, op: str, args: dict):
    """The protocol, one journal write at a time (yields after each)."""
    plan = xrank.plan(master.ns, op, args, 5.0)
    assert plan["witness"] == w
    ev, reply = xrank.prepare(witness.ns, m, "m.x1", plan["req"], xrank.locks(witness.ns),
                              set())
    witness.log(ev)  # PREPARE
    yield "prepared"
    mev = xrank.master_event(master.ns, op, args, plan, reply, "m.x1", 5.0)
    master.log(dict(mev, t=j.EUPDATE, reqid="client.1:1"))  # the commit point
    yield "master committed"
    witness.log(xrank.finish_event(witness.ns, "m.x1", True))  # COMMIT
    yield "witness committed"
    master.log({"t": xrank.ECOMMITTED, "id": "m.x1"})
    yield "done"


def resolve(master: Rank, witness: Rank, m: int, w: int) -> None:
    """up:resolve between the two: the master's journal decides."""
    for xid in xrank.prepared_for(witness.ns, m):
        witness.log(xrank.finish_event(witness.ns, xid, bool(xrank.decide(master.ns, [xid]))))
    for xid in [x for x, r in master.ns.xmaster.items() if r == w]:
        witness.log(xrank.finish_event(witness.ns, xid, True))
        master.log({"t": xrank.ECOMMITTED, "id": xid})


POINTS = ["before prepare", "prepared", "master committed", "witness committed", "done"]


@pytest.mark.parametrize("crashed", ["master", "witness", "both"])
@pytest.mark.parametrize("point", POINTS)
def test_rename_file_across_ranks_exists_once_after_a_crash_at_every_point(point, crashed):
    r0, r1 = _cluster()
    ranks = _ranks(r0, r1)
    args = {"src": "/c/g", "dst": "/a/b/g"}  # rank 1 (the destination's) is the master
    if point != "before prepare":
        for step in _steps(r1, r0, 1, 0, "rename", args):
            if step == point:
                break
    if crashed in ("master", "both"):
        r1.crash()
    if crashed in ("witness", "both"):
        r0.crash()
    if point == "prepared":  # the source's directory waits for the outcome
        assert r0.ns.resolve("/c").ino in xrank.locks(r0.ns)
    resolve(r1, r0, 1, 0)
    committed = point not in ("before prepare", "prepared")
    assert ls(ranks, "/c") == ([] if committed else ["g"])
    assert ls(ranks, "/a/b") == (["g"] if committed else [])
    assert xrank.locks(r0.ns) == set() and r1.ns.xmaster == {} and r0.ns.xpeer == {}
    for r in (r0, r1):  # and a replay of the settled journals agrees
        before = r.ns.to_wire()
        r.crash()
        assert r.ns.to_wire() == before


def test_a_directory_renamed_to_another_rank_keeps_its_contents_where_they_are():
    r0, r1 = _cluster()
    ranks = _ranks(r0, r1)
    for _ in _steps(r1, r0, 1, 0, "rename", {"src": "/d/e", "dst": "/a/e"}):
        pass
    e = r1.ns.resolve("/a/e").ino
    assert ls(ranks, "/d") == [] and ls(ranks, "/a") == ["b", "e"]
    assert ls(ranks, "/a/e") == ["f"]  # served by rank 0, a new subtree root there
    assert r1.ns.exported == {e: 0} and e in r0.ns.auth_roots
    assert subtree.route(r1.ns, "create", {"path": "/a/e/h"}) == (0, "/a/e")
    assert subtree.route(r0.ns, "create", {"path": "/a/e/h"}) is None
    fresh = Namespace(rank=0)  # the next segment's ESubtreeMap knows the new root
    applier.apply(fresh, {"t": j.ESUBTREEMAP, **subtree.subtree_map(r0.ns)})
    assert fresh.path_of(e) == "/a/e" and e in fresh.auth_roots


def test_a_directory_held_by_the_master_merges_into_its_subtree():
    """/a is rank 1's (exported by rank 0): renaming /a to /a2 is rank 0's rename with
    rank 1 as witness (it relinks its subtree root); renaming it under rank 1's /a2/b moves
    the dentry to rank 1, which then holds it all."""
    r0, r1 = _cluster()
    ranks = _ranks(r0, r1)
    a = r0.ns.resolve("/a").ino
    for _ in _steps(r0, r1, 0, 1, "rename", {"src": "/a", "dst": "/a2"}):
        pass
    assert ls(ranks, "/") == ["a2", "c", "d"] and ls(ranks, "/a2") == ["b"]
    assert r1.ns.path_of(a) == "/a2" and r0.ns.exported == {a: 1}
    assert subtree.route(r1.ns, "create", {"path": "/a2/x"}) is None
    applier.apply(r1.ns, r1.ns.prepare("mkdir", {"path": "/a2/b/m"}, 6.0))
    for _ in _steps(r1, r0, 1, 0, "rename", {"src": "/c", "dst": "/a2/b/m/c"}):
        pass
    assert ls(ranks, "/a2/b/m/c") == ["g"]  # still rank 0's contents
    assert ls(ranks, "/") == ["a2", "d"]


def test_rmdir_of_an_exported_root_asks_its_holder_and_survives_crashes():
    r0, r1 = _cluster()
    ranks = _ranks(r0, r1)
    with pytest.raises(FSError) as e:  # the holder sees /a/b: not empty
        xrank.prepare(r1.ns, 0, "x", xrank.plan(r0.ns, "rmdir", {"path": "/a"}, 1.0)["req"],
                      set(), set())
    assert e.value.code == errno.ENOTEMPTY
    applier.apply(r1.ns, r1.ns.prepare("rmdir", {"path": "/a/b"}, 3.0))
    r1.base = r1.ns.to_wire()
    for point in ("prepared", "master committed"):
        for step in _steps(r0, r1, 0, 1, "rmdir", {"path": "/a"}):
            if step == point:
                break
        r0.crash()
        r1.crash()
        resolve(r0, r1, 0, 1)
        if point == "prepared":
            assert ls(ranks, "/") == ["a", "c", "d"] and ls(ranks, "/a") == []
    assert ls(ranks, "/") == ["c", "d"]
    assert r0.ns.exported == {} and r1.ns.auth_roots == set()
    assert xrank.dirty({"t": xrank.EPEERUPDATE, "phase": xrank.COMMIT,
                        "change": {"kind": "rmdir", "ino": 7}}) == {7}  # its object goes


def test_the_witness_checks_what_only_it_can_see():
    r0, r1 = _cluster()

    def refused(args: dict, master: Rank = r1, witness: Rank = r0, m: int = 1) -> int:
        plan = xrank.plan(master.ns, "rename", args, 1.0)
        with pytest.raises(FSError) as e:
            xrank.prepare(witness.ns, m, "x", plan["req"], xrank.locks(witness.ns), set())
        return e.value.code

    assert refused({"src": "/c/missing", "dst": "/a/x"}) == errno.ENOENT
    assert refused({"src": "/c/g", "dst": "/a/b"}) == errno.EISDIR
    applier.apply(r1.ns, r1.ns.prepare("create", {"path": "/a/b/file"}, 3.0))
    assert refused({"src": "/d/e", "dst": "/a/b/file"}) == errno.ENOTDIR
    assert refused({"src": "/d/e", "dst": "/a/b"}) == errno.ENOTEMPTY
    assert refused({"src": "/a", "dst": "/a/b/a"}, r1, r0) == errno.EINVAL  # into itself
    with pytest.raises(xrank.Forward):  # not held here: the master asks the holder
        xrank.prepare(r1.ns, 0, "x", {"kind": "rename", "src": "/d/e", "dparent": 1,
                                      "dname": "e", "chain": [], "stamp": 1.0,
                                      "ancestors": [1]}, set(), set())
    plan = xrank.plan(r1.ns, "rename", {"src": "/c/g", "dst": "/a/g"}, 1.0)
    ev, _ = xrank.prepare(r0.ns, 1, "x1", plan["req"], set(), set())
    r0.log(ev)
    with pytest.raises(FSError) as e:  # one operation at a time on a directory
        xrank.prepare(r0.ns, 1, "x2", plan["req"], xrank.locks(r0.ns), set())
    assert e.value.code == errno.EAGAIN
    assert xrank.prepare(r0.ns, 1, "x1", plan["req"], set(), set())[0] == {}  # a resend
    fresh = Namespace(rank=0)  # the prepared update survives the segment's end
    applier.apply(fresh, {"t": j.ESUBTREEMAP, **subtree.subtree_map(r0.ns)})
    assert xrank.prepared_for(fresh, 1) == ["x1"] and xrank.locks(fresh) == xrank.locks(r0.ns)


def test_routing_sends_a_rename_to_the_destinations_rank():
    r0, r1 = _cluster()
    assert subtree.route(r0.ns, "rename", {"src": "/c/g", "dst": "/a/g"}) == (1, "/a")
    assert subtree.route(r1.ns, "rename", {"src": "/c/g", "dst": "/a/g"}) is None
    assert xrank.plan(r0.ns, "rename", {"src": "/c/g", "dst": "/d/g"}, 1.0) is None  # local
    assert xrank.plan(r0.ns, "rmdir", {"path": "/c"}, 1.0) is None


def test_a_rank_holding_subtrees_beneath_a_renamed_directory_moves_its_stub():
    """Rank 1 holds /d/e; renaming /d (rank 0's, locally or to rank 1's /a) moves rank 1's
    stub of /d too, so that both ranks still agree on who holds /…/d/e (no forward loop)."""
    r0, r1 = _cluster()
    ranks = _ranks(r0, r1)
    e = r0.ns.resolve("/d/e").ino
    applier.apply(r1.ns, subtree.import_event(subtree.snapshot(r0.ns, e), 0, "x.2"))
    applier.apply(r0.ns, {"t": subtree.EEXPORT, "root": e, "to": 1, "export_id": "x.2"})
    r0.base, r1.base = r0.ns.to_wire(), r1.ns.to_wire()
    plan = xrank.plan(r0.ns, "rename", {"src": "/d", "dst": "/z"}, 1.0)
    assert plan["witness"] == 1 and plan["req"]["keep"] is False
    for _ in _steps(r0, r1, 0, 1, "rename", {"src": "/d", "dst": "/z"}):
        pass
    r0.crash()
    r1.crash()
    assert r1.ns.path_of(e) == "/z/e" and ls(ranks, "/z/e") == ["f"]
    assert subtree.route(r1.ns, "create", {"path": "/z/e/g"}) is None
    assert subtree.route(r0.ns, "create", {"path": "/z/e/g"}) == (1, "/z/e")
    for _ in _steps(r1, r0, 1, 0, "rename", {"src": "/z", "dst": "/a/z"}):
        pass
    assert ls(ranks, "/") == ["a", "c"] and ls(ranks, "/a/z/e") == ["f"]
    assert subtree.route(r1.ns, "create", {"path": "/a/z/e/g"}) is None
    assert subtree.route(r1.ns, "mkdir", {"path": "/a/z/k"}) == (0, "/a/z")
    assert subtree.route(r0.ns, "mkdir", {"path": "/a/z/k"}) is None


def test_a_rename_over_an_empty_directory_another_rank_holds_asks_it():
    r0, r1 = _cluster()
    ranks = _ranks(r0, r1)
    applier.apply(r0.ns, r0.ns.prepare("mkdir", {"path": "/m"}, 3.0))
    a, m = r0.ns.resolve("/a").ino, r0.ns.resolve("/m").ino
    plan = xrank.plan(r0.ns, "rename", {"src": "/m", "dst": "/a"}, 4.0)
    assert plan["witness"] == 1 and plan["req"]["drop"] == a
    with pytest.raises(FSError) as e:  # rank 1 holds /a/b: not empty
        xrank.prepare(r1.ns, 0, "x", plan["req"], set(), set())
    assert e.value.code == errno.ENOTEMPTY
    applier.apply(r1.ns, r1.ns.prepare("rmdir", {"path": "/a/b"}, 3.0))
    r0.base, r1.base = r0.ns.to_wire(), r1.ns.to_wire()
    for _ in _steps(r0, r1, 0, 1, "rename", {"src": "/m", "dst": "/a"}):
        pass
    r0.crash()
    r1.crash()
    assert ls(ranks, "/") == ["a", "c", "d"] and r0.ns.resolve("/a").ino == m
    assert r0.ns.exported == {} and r1.ns.auth_roots == set() and a not in r1.ns.inodes
