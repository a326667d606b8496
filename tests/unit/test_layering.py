"""The shape of the tools (issue 10, items 4 and 6): `client/` has no import cycle, bench does
not import the tests, one MonClient hunts for monitors and one multiplexer matches replies to
tids. Checked on the source, so a regression fails here before it confuses anyone."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _graph(package: str) -> dict[str, set[str]]:
    mods = {f"{package}.{p.stem}": p for p in (ROOT / package).glob("*.py")}
    return {name: {i for i in _imports(p) if i in mods and i != name}
            for name, p in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for dep in sorted(graph[node]):
            found = visit(dep, path + [node])
            if found:
                return found
        done.add(node)
        return None

    for node in sorted(graph):
        found = visit(node, [])
        if found:
            return found
    return None


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_client_has_no_import_cycle() -> None:
    assert _cycle(_graph("client")) is None


def test_bench_does_not_import_the_tests() -> None:
    for path in (ROOT / "bench").glob("*.py"):
        assert not any(i.split(".")[0] == "tests" for i in _imports(path)), path.name


def test_one_module_starts_local_clusters() -> None:
    """vstart, the integration tests and bench/ start daemons through client/procs.py."""
    for name in ("client/vstart.py", "client/localcluster.py"):
        assert "client.procs.spawn" in _imports(ROOT / name), name
    assert "client.localcluster.Cluster" in _imports(ROOT / "tests/integration/cluster.py")
    starters = {str(p.relative_to(ROOT)) for p in _production() + list((ROOT / "bench").glob(
        "*.py")) + list((ROOT / "tests").rglob("*.py"))
        if p.name != "test_layering.py" and '"--pid-file", str(' in p.read_text()}
    assert starters == {"client/procs.py"}


def _production() -> list[Path]:
    return [p for pkg in ("client", "osd", "common", "mon", "mds") for p in
            (ROOT / pkg).glob("*.py")]


def test_one_monclient_hunts_over_mon_host() -> None:
    """Only the MonClient's core reads the list of monitor addresses (the monitor reads its
    own first address to listen on)."""
    hunting = {str(p.relative_to(ROOT)) for p in _production()
               if 'get("mon_host").split(",")' in p.read_text().replace(" ", "")
               or "mon_host.split(" in p.read_text()}
    assert hunting == {"common/monclient_core.py", "mon/server.py"}
    for name in ("osd/server.py", "client/fsclient.py", "client/admin.py"):
        assert "common.monclient" in _imports(ROOT / name), name


def test_one_reply_multiplexer_by_tid() -> None:
    for name in ("common/monclient.py", "osd/objecter.py", "client/mdssession.py"):
        assert "common.replies.ReplyMux" in _imports(ROOT / name), name
    channels = {str(p.relative_to(ROOT)) for p in _production()
                if "open_memory_channel(" in p.read_text()}
    # the MonClient's pushes only (replies wait in ReplyMux's slots; the monitor's outgoing
    # queue is an OutQueue, common/outqueue.py)
    assert channels == {"common/monclient.py"}


def test_unit_tests_open_no_sockets():
    """A test that starts servers or opens connections lives in tests/inprocess (or
    tests/integration): the unit tests import neither trio nor the networked shells."""
    shells = ("trio", "common.net", "common.monclient", "mon.server", "osd.server",
              "tests.inprocess")
    for path in sorted((ROOT / "tests" / "unit").glob("*.py")):
        bad = [i for i in _imports(path) if any(i == s or i.startswith(s + ".") for s in shells)]
        assert not bad, f"{path.name} imports {bad}"


def test_one_backoff():
    """Every retry loop asks common.backoff.Backoff; no module keeps a backoff class of its
    own (issue 10 item 4)."""
    owners = []
    for package in ("common", "mon", "mds", "osd", "client", "nfs", "vip"):
        for path in (ROOT / package).glob("*.py"):
            owners += [f"{package}/{path.name}" for node in ast.walk(ast.parse(path.read_text()))
                       if isinstance(node, ast.ClassDef) and "backoff" in node.name.lower()]
    assert owners == ["common/backoff.py"]
