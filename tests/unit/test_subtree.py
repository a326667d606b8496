"""Subtree authority, forwards and the export/import events (mds.subtree), sans-IO."""

from __future__ import annotations

from mds import applier, subtree
from mds.namespace import ROOT_INO, Namespace, ino_range


def _ns0() -> Namespace:
    ns = Namespace(now=1.0, rank=0)
    for op, path in [("mkdir", "/a"), ("mkdir", "/a/b"), ("create", "/a/b/f"),
                     ("mkdir", "/c"), ("create", "/c/g")]:
        applier.apply(ns, ns.prepare(op, {"path": path}, 2.0))
    return ns


def _move(src: Namespace, dst: Namespace, path: str, export_id: str = "x.1") -> int:
    root = src.resolve(path).ino
    snap = subtree.snapshot(src, root)
    applier.apply(dst, subtree.import_event(snap, src.rank, export_id))
    applier.apply(src, {"t": subtree.EEXPORT, "root": root, "to": dst.rank, "export_id": export_id})
    return root


def test_each_rank_allocates_inodes_from_its_own_range():
    ns1 = Namespace(rank=1)
    ev = ns1.prepare("mkdir", {"path": "/x"}, 1.0)
    lo, hi = ino_range(1)
    assert lo <= ev["ino"] < hi
    ns0 = _ns0()
    _move(ns0, ns1, "/a")
    assert ns1.prepare("mkdir", {"path": "/a/new"}, 3.0)["ino"] < hi  # rank 0's inos ignored


def test_export_moves_contents_and_requests_are_forwarded():
    ns0, ns1 = _ns0(), Namespace(rank=1)
    root = _move(ns0, ns1, "/a")
    assert subtree.holds(ns1, root) and not subtree.holds(ns0, root)
    assert ns0.dentries[root] == {} and ns0.exported == {root: 1}
    assert sorted(n for n, _ in ns1.readdir("/a/b")) == ["f"]
    # rank 0 forwards what is under /a; rank 1 serves it and forwards the rest to rank 0
    assert subtree.route(ns0, "create", {"path": "/a/b/g"}) == (1, "/a")
    assert subtree.route(ns0, "readdir", {"path": "/a"}) == (1, "/a")
    assert subtree.route(ns0, "getattr", {"path": "/a"}) is None  # the inode stays with "/"
    assert subtree.route(ns1, "create", {"path": "/a/b/g"}) is None
    assert subtree.route(ns1, "create", {"path": "/c/h"}) == (0, "/")
    assert subtree.route(ns1, "getattr", {"path": "/"}) == (0, "/")


def test_import_back_merges_into_the_parents_subtree():
    ns0, ns1 = _ns0(), Namespace(rank=1)
    root = _move(ns0, ns1, "/a", "x.1")
    _move(ns1, ns0, "/a", "y.1")
    assert root not in ns0.exported and root not in ns0.auth_roots  # merged under "/"
    assert subtree.holds(ns0, root) and sorted(n for n, _ in ns0.readdir("/a/b")) == ["f"]
    assert subtree.imported_ids(ns0) == {"y.1"}


def test_subtree_map_restores_the_state_for_load():
    ns0, ns1 = _ns0(), Namespace(rank=1)
    root = _move(ns0, ns1, "/a")
    fresh = Namespace(rank=1)
    applier.apply(fresh, {"t": subtree.ESUBTREEMAP, "rank": 1, **subtree.subtree_map(ns1)})
    assert fresh.auth_roots == {root} and fresh.path_of(root) == "/a"  # with its stubs
    assert fresh.imported[root] == [0, "x.1"]
    again = Namespace(rank=0)
    applier.apply(again, {"t": subtree.ESUBTREEMAP, "rank": 0, **subtree.subtree_map(ns0)})
    assert again.auth_roots == {ROOT_INO} and again.exported == {root: 1}


def test_an_import_records_its_export_id_for_resends_and_resolve():
    ns0, ns1 = _ns0(), Namespace(rank=1)
    snap = subtree.snapshot(ns0, ns0.resolve("/a").ino)
    ev = subtree.import_event(snap, 0, "x.9")
    applier.apply(ns1, ev)
    assert "x.9" in subtree.imported_ids(ns1)


def test_importing_a_parent_keeps_and_merges_the_subtrees_already_held():
    """Rank 1 holds /a, rank 0 holds /a/b (pinned back); rank 1 hands /a to rank 0 (it
    stops): rank 0 must keep /a/b's contents, and hold it all from the root."""
    ns0, ns1 = _ns0(), Namespace(rank=1)
    a = _move(ns0, ns1, "/a", "x.1")
    b = _move(ns1, ns0, "/a/b", "y.1")
    assert b in ns0.auth_roots and ns1.exported == {b: 0}
    applier.apply(ns1, ns1.prepare("create", {"path": "/a/h"}, 3.0))
    _move(ns1, ns0, "/a", "z.1")
    assert sorted(n for n, _ in ns0.readdir("/a")) == ["b", "h"]
    assert sorted(n for n, _ in ns0.readdir("/a/b")) == ["f"]
    assert ns0.auth_roots == {ROOT_INO} and ns0.exported == {}
    assert subtree.holds(ns0, a) and subtree.holds(ns0, b)


def test_exporting_a_parent_keeps_the_subtrees_held_beneath_an_exported_boundary():
    """Rank 1 holds /a and, beneath /a/b (rank 0's), /a/b/x. Handing /a to rank 0 (e.g. it
    stops, X4) must not forget /a/b/x: it goes on its own, later."""
    ns0, ns1 = _ns0(), Namespace(rank=1)
    applier.apply(ns0, ns0.prepare("mkdir", {"path": "/a/b/x"}, 3.0))
    _move(ns0, ns1, "/a", "x.1")
    _move(ns1, ns0, "/a/b", "y.1")
    applier.apply(ns0, ns0.prepare("create", {"path": "/a/b/x/f"}, 3.0))
    x = _move(ns0, ns1, "/a/b/x", "z.1")
    _move(ns1, ns0, "/a", "w.1")
    assert ns1.auth_roots == {x} and ns1.path_of(x) == "/a/b/x"
    assert subtree.route(ns1, "create", {"path": "/a/b/x/g"}) is None
    assert subtree.route(ns0, "create", {"path": "/a/b/x/g"}) == (1, "/a/b/x")
    assert sorted(n for n, _ in ns1.readdir("/a/b/x")) == ["f"]
    _move(ns1, ns0, "/a/b/x", "v.1")
    assert ns0.auth_roots == {ROOT_INO} and ns0.exported == {}
    assert sorted(n for n, _ in ns0.readdir("/a/b/x")) == ["f"]


def test_resolve_finishes_only_exports_whose_contents_we_still_hold():
    """Rank 0 exported /a and then /a/b to rank 1 (rank 1 merged /a/b into /a, but keeps its
    record of that import), and holds /a/b/x itself. In resolve rank 1 names /a/b: rank 0
    must not "finish" that export (it would forget /a/b/x, which it holds)."""
    ns0, ns1 = _ns0(), Namespace(rank=1)
    applier.apply(ns0, ns0.prepare("mkdir", {"path": "/a/b/x"}, 3.0))
    b = ns0.resolve("/a/b").ino
    a = _move(ns0, ns1, "/a", "x.1")
    ns1.imported[b] = [0, "x.2"]  # the merged import's record
    x = _move(ns1, ns0, "/a/b/x", "y.1")
    assert not subtree.unfinished_export(ns0, b) and subtree.holds(ns0, x)
    applier.apply(ns0, ns0.prepare("mkdir", {"path": "/c/d"}, 3.0))
    d = ns0.resolve("/c/d").ino
    snap = subtree.snapshot(ns0, d)  # the peer journaled the EImport; we died before EExport
    applier.apply(ns1, subtree.import_event(snap, 0, "x.3"))
    assert subtree.unfinished_export(ns0, d) and not subtree.unfinished_export(ns0, a)


def test_exporting_a_parent_ships_a_nested_subtree_of_ours_once():
    """Rank 1 holds /a and, as a separate (pinned) subtree, /a/c; /a/c/x is rank 0's and
    rank 1 holds /a/c/x/r beneath it. Rank 1 stops (X4) and hands everything to rank 0, one
    subtree root at a time: /a's export carries /a/c's contents, so /a/c must stop being a
    subtree of rank 1's (else a second export of the bare stub would wipe them at rank 0,
    with /a/c/x's: acknowledged metadata lost, seen under load in test_subtrees.py)."""
    ns0, ns1 = _ns0(), Namespace(rank=1)
    for op, path in [("mkdir", "/a/c"), ("mkdir", "/a/c/x"), ("mkdir", "/a/c/x/r")]:
        applier.apply(ns0, ns0.prepare(op, {"path": path}, 3.0))
    _move(ns0, ns1, "/a", "x.1")
    c = ns1.resolve("/a/c").ino
    ns1.auth_roots.add(c)  # a pinned subtree of its own, as `ceph.dir.pin` makes it
    _move(ns1, ns0, "/a/c/x", "y.1")
    applier.apply(ns0, ns0.prepare("create", {"path": "/a/c/x/f"}, 4.0))
    r = _move(ns0, ns1, "/a/c/x/r", "z.1")
    applier.apply(ns1, ns1.prepare("create", {"path": "/a/c/g"}, 5.0))
    applier.apply(ns1, ns1.prepare("create", {"path": "/a/c/x/r/h"}, 5.0))
    n = 0
    while ns1.auth_roots:  # stopping: export each subtree root, parents first
        root = min(ns1.auth_roots, key=lambda i: ns1.path_of(i).count("/"))
        n += 1
        _move(ns1, ns0, ns1.path_of(root), f"w.{n}")
    assert n == 2 and r not in ns1.auth_roots  # /a (with /a/c), then /a/c/x/r
    assert sorted(name for name, _ in ns0.readdir("/a/c")) == ["g", "x"]
    assert sorted(name for name, _ in ns0.readdir("/a/c/x")) == ["f", "r"]
    assert sorted(name for name, _ in ns0.readdir("/a/c/x/r")) == ["h"]
    assert ns0.auth_roots == {ROOT_INO} and ns0.exported == {}


def test_importing_a_parent_drops_our_stale_export_mark_on_a_stub_beneath_it():
    """Rank 0 exported /a, got /a/c/x back (pinned to 0), then exported the stub /a/c itself
    (pinned to 1), which rank 1 merged into its /a. When rank 1 stops and hands /a back
    (X4), its snapshot carries /a/c's contents: rank 0's old mark "/a/c is rank 1's" must
    go, else rank 0 forwards everything under /a/c to a rank that has stopped (seen under
    load in test_subtrees.py as a `client verify` that got no answer for a minute)."""
    ns0, ns1 = _ns0(), Namespace(rank=1)
    for op, path in [("mkdir", "/a/c"), ("mkdir", "/a/c/x")]:
        applier.apply(ns0, ns0.prepare(op, {"path": path}, 3.0))
    _move(ns0, ns1, "/a", "x.1")
    _move(ns1, ns0, "/a/c/x", "y.1")
    c = _move(ns0, ns1, "/a/c", "x.2")
    _move(ns1, ns0, "/a/c/x", "y.2")
    assert ns0.exported[c] == 1 and c not in ns1.auth_roots  # merged into rank 1's /a
    applier.apply(ns1, ns1.prepare("create", {"path": "/a/c/g"}, 5.0))
    _move(ns1, ns0, "/a", "z.1")
    assert subtree.route(ns0, "readdir", {"path": "/a/c"}) is None
    assert ns0.auth_roots == {ROOT_INO} and ns0.exported == {}
    assert sorted(n for n, _ in ns0.readdir("/a/c")) == ["g", "x"]



def test_an_import_moves_a_stub_we_kept_by_its_old_name_to_the_new_one():
    """Rank 0 holds /a/d/r beneath rank 1's /a, with stubs /a and /a/d on the way. Rank 1
    renames /a/d to /a/e, then stops (X4) and hands /a back: rank 0 must have /a/e only.
    Kept, the stub's old name /a/d named the same inode as /a/e; once /a/e went (a rename
    over it), /a/d named an inode that no longer exists (seen under load in
    test_subtrees.py as a `client verify` failing with "bad arguments: <ino>")."""
    ns0, ns1 = _ns0(), Namespace(rank=1)
    for op, path in [("mkdir", "/a/d"), ("mkdir", "/a/d/r")]:
        applier.apply(ns0, ns0.prepare(op, {"path": path}, 3.0))
    _move(ns0, ns1, "/a", "x.1")
    _move(ns1, ns0, "/a/d/r", "y.1")
    applier.apply(ns1, ns1.prepare("rename", {"src": "/a/d", "dst": "/a/e"}, 4.0))
    _move(ns1, ns0, "/a", "z.1")
    assert sorted(n for n, _ in ns0.readdir("/a")) == ["b", "e"]
    assert sorted(n for n, _ in ns0.readdir("/a/e")) == ["r"]
    assert ns0.path_of(ns0.resolve("/a/e/r").ino) == "/a/e/r"
