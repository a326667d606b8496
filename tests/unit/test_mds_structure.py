"""The MDS's shape (issue 10): one event applier for the active, replay, standby-replay and
write-back; event types named once; sans-IO cores (no trio, no clock); no mixins; modules
under 500 lines. Plus the applier's behaviour on each event type, with plain values."""

from __future__ import annotations

import ast
from pathlib import Path

from mds import applier, subtree
from mds import events as e
from mds.namespace import Namespace
from mds.sessionmap import CompletedRequests

MDS = Path(__file__).resolve().parents[2] / "mds"


def _modules():
    for path in sorted(MDS.glob("*.py")):
        yield path.name, ast.parse(path.read_text())


def _imports(tree) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out += [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
    return out


def test_J3_event_type_names_are_defined_once() -> None:
    names = {getattr(e, n) for n in dir(e) if n.startswith("E") and n.isupper()}
    found = [f"{name}:{node.lineno}" for name, tree in _modules() if name != "events.py"
             for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and node.value in names]
    assert not found


def test_the_namespace_imports_neither_subtrees_nor_cross_rank_ops() -> None:
    """The namespace <-> subtree cycle is gone: the applier sits above both."""
    tree = dict(_modules())["namespace.py"]
    assert not [m for m in _imports(tree) if m.startswith(("mds.subtree", "mds.xrank"))]


def test_the_applier_replays_sessions_and_completed_requests() -> None:
    ns, sessions, done = Namespace(), {}, CompletedRequests()
    applier.apply(ns, {"t": e.ESESSION, "client": "client.7", "open": True, "addr": "a:0/1",
                       "metadata": {"hostname": "h"}}, sessions, done)
    ev = ns.prepare("mkdir", {"path": "/d"}, 1.0)
    ev.update(t=e.EUPDATE, reqid="client.7:3", oldest=0, result={"x": 1})
    applier.apply(ns, ev, sessions, done)
    assert sessions == {"client.7": {"addr": "a:0/1", "metadata": {"hostname": "h"}}}
    assert ns.resolve("/d").ino == ev["ino"] and done.get("client.7", 3) == {"x": 1}
    applier.apply(ns, {"t": e.ESESSION, "client": "client.7", "open": False}, sessions, done)
    assert sessions == {} and done.get("client.7", 3) is None


def test_the_applier_writes_back_results_into_the_sessionmap_object() -> None:
    flushed, table = Namespace(), {}
    applier.write_back(flushed, table, {"t": e.ESESSION, "client": "client.7", "open": True,
                                        "addr": "a:0/1", "metadata": {}})
    ev = flushed.prepare("create", {"path": "/f"}, 1.0)
    ev.update(t=e.EUPDATE, reqid="client.7:4", oldest=2, result={"y": 2})
    applier.write_back(flushed, table, ev)
    assert table["client.7"]["completed"] == {"4": {"y": 2}}
    assert flushed.resolve("/f").ino == ev["ino"]
    assert applier.dirty_dirs(ev) == {1} and applier.dirty_dirs({"t": e.ESESSION}) == set()


def test_the_applier_applies_subtree_events_and_ignores_segment_markers() -> None:
    ns0 = Namespace(rank=0)
    applier.apply(ns0, ns0.prepare("mkdir", {"path": "/a"}, 1.0))
    ns1 = Namespace(rank=1)
    a = ns0.resolve("/a").ino
    applier.apply(ns1, subtree.import_event(subtree.snapshot(ns0, a), 0, "x.1"))
    applier.apply(ns0, {"t": e.EEXPORT, "root": a, "to": 1, "export_id": "x.1"})
    applier.apply(ns0, {"t": e.ESEGMENT})
    assert ns0.exported == {a: 1} and a in ns1.auth_roots


def test_R3_replay_remembers_the_result_of_a_masters_cross_rank_update() -> None:
    """A client resending a cross-rank rename after the master's failover gets its answer."""
    ns, done = Namespace(), CompletedRequests()
    applier.apply(ns, {"t": e.EUPDATE, "op": "xrmdir", "id": "m.x1", "witness": 1, "parent": 1,
                       "name": "gone", "ino": 99, "stamp": 1.0, "reqid": "client.7:5",
                       "result": {}}, None, done)
    assert done.get("client.7", 5) == {} and ns.xmaster == {"m.x1": 1}


SHELLS = {"daemon.py", "monsession.py", "runtime.py", "clientserver.py", "peerlink.py",
          "rankdata.py", "mdlog.py", "mdstore.py", "process.py", "__main__.py"}  # the rest decides


def test_the_mds_cores_import_no_trio_and_read_no_clock() -> None:
    found = []
    for name, tree in _modules():
        if name in SHELLS:
            continue
        found += [f"{name}: import {m}" for m in _imports(tree)
                  if m.split(".")[0] in ("trio", "time", "socket", "asyncio", "os")]
        found += [f"{name}:{n.lineno} datetime.now" for n in ast.walk(tree)
                  if isinstance(n, ast.Attribute) and n.attr in ("now", "monotonic", "utcnow")
                  and isinstance(n.value, ast.Name) and n.value.id in ("datetime", "time")]
    assert not found


def test_no_mixins_in_the_mds() -> None:
    """Composition: no class in mds/ derives from another class of mds/."""
    from mds.daemon import MDSDaemon

    ours = {n.name for _, tree in _modules() for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    derived = [f"{name}: {n.name}({ast.unparse(b)})" for name, tree in _modules()
               for n in ast.walk(tree) if isinstance(n, ast.ClassDef)
               for b in n.bases if ast.unparse(b).split(".")[-1] in ours]
    assert not derived and MDSDaemon.__bases__ == (object,)


def test_the_work_of_a_state_is_not_found_by_building_a_method_name() -> None:
    found = [f"{name}:{n.lineno}" for name, tree in _modules() for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id == "getattr" and len(n.args) > 1
             and isinstance(n.args[1], ast.JoinedStr)]
    assert not found


def test_mds_modules_stay_under_500_lines() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in MDS.glob("*.py")}
    assert {n: s for n, s in sizes.items() if s > 500} == {}


def test_misleading_names_are_gone() -> None:
    root = MDS.parent
    assert not (MDS / "clients.py").exists() and not (root / "osd" / "client.py").exists()
    assert (root / "osd" / "objecter.py").exists()


def test_no_mds_module_reaches_into_another_objects_private_names() -> None:
    """Only `self` (or `cls`) is followed by a private name: the parts of the daemon and the
    cores go through each other's public interface."""
    found = [f"{name}:{node.lineno} .{node.attr}" for name, tree in _modules()
             for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and node.attr.startswith("_")
             and not node.attr.startswith("__")
             and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))]
    assert not found


def test_R1_every_state_the_machine_starts_has_its_work_in_the_table() -> None:
    from common.config import Config
    from mds.daemon import MDSDaemon
    from mds.rank import WORK_STATES
    from mds.runtime import RankRuntime

    daemon = MDSDaemon(Config("mds.a"))
    daemon.runtime = RankRuntime(daemon)  # as when the daemon takes a rank
    assert set(daemon._work_table()) == WORK_STATES
