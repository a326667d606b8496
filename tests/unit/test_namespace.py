"""The namespace core: POSIX errors, and replay of the events reaching the same state."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mds import applier
from mds.namespace import FSError, Namespace


def run(ns: Namespace, op: str, now: float = 1.0, **args) -> dict:
    ev = ns.prepare(op, args, now)
    applier.apply(ns, ev)
    return ev


def test_mkdir_create_readdir_stat():
    ns = Namespace()
    run(ns, "mkdir", path="/a")
    run(ns, "create", path="/a/f", mode=0o600, uid=7)
    assert [n for n, _ in ns.readdir("/a")] == ["f"]
    f = ns.resolve("/a/f")
    assert f.uid == 7 and oct(f.mode & 0o777) == "0o600" and not f.is_dir
    assert ns.stat(ns.resolve("/a"))["nlink"] == 2 and ns.stat(ns.resolve("/"))["nlink"] == 3
    assert ns.path_of(f.ino) == "/a/f"


@pytest.mark.parametrize("op,args,code", [
    ("mkdir", {"path": "/a"}, errno.EEXIST),
    ("create", {"path": "/nope/f"}, errno.ENOENT),
    ("create", {"path": "/a/f/g"}, errno.ENOTDIR),
    ("rmdir", {"path": "/a"}, errno.ENOTEMPTY),
    ("rmdir", {"path": "/a/f"}, errno.ENOTDIR),
    ("unlink", {"path": "/a"}, errno.EISDIR),
    ("unlink", {"path": "/zzz"}, errno.ENOENT),
    ("rename", {"src": "/a", "dst": "/a/sub"}, errno.EINVAL),
    ("rename", {"src": "/a/f", "dst": "/b"}, errno.EISDIR),
    ("rename", {"src": "/b", "dst": "/a"}, errno.ENOTEMPTY),
    ("setattr", {"path": "/a", "size": 5}, errno.EISDIR),
    ("setattr", {"path": "/a/f", "size": -1}, errno.EINVAL),
    ("frob", {"path": "/a"}, errno.EINVAL),
])
def test_posix_errors(op, args, code):
    ns = Namespace()
    run(ns, "mkdir", path="/a")
    run(ns, "create", path="/a/f")
    run(ns, "mkdir", path="/b")
    with pytest.raises(FSError) as e:
        ns.prepare(op, args, 2.0)
    assert e.value.code == code


def test_rename_replaces_and_moves_dirs():
    ns = Namespace()
    run(ns, "mkdir", path="/a")
    run(ns, "mkdir", path="/b")
    run(ns, "create", path="/a/f")
    run(ns, "create", path="/b/g")
    run(ns, "rename", src="/a/f", dst="/b/g")
    assert [n for n, _ in ns.readdir("/b")] == ["g"] and ns.readdir("/a") == []
    run(ns, "rename", src="/a", dst="/b/a")
    assert ns.stat(ns.resolve("/"))["nlink"] == 3 and ns.stat(ns.resolve("/b"))["nlink"] == 3


NAMES = st.sampled_from(["a", "b", "c"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map(lambda p: "/" + "/".join(p))
OPS = st.one_of(
    st.tuples(st.sampled_from(["mkdir", "create", "unlink", "rmdir"]), PATHS.map(
        lambda p: {"path": p})),
    st.tuples(st.just("rename"), st.tuples(PATHS, PATHS).map(
        lambda t: {"src": t[0], "dst": t[1]})),
    st.tuples(st.just("setattr"), st.tuples(PATHS, st.integers(0, 4096)).map(
        lambda t: {"path": t[0], "mode": t[1] % 0o777})),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(OPS, max_size=40))
def test_replaying_the_events_rebuilds_the_same_namespace(ops):
    live, events = Namespace(), []
    for i, (op, args) in enumerate(ops):
        try:
            events.append(run(live, op, now=float(i), **args))
        except FSError:
            pass
    replayed = Namespace()
    for ev in events:
        applier.apply(replayed, ev)
    assert replayed.to_wire() == live.to_wire()
    assert Namespace.from_wire(live.to_wire()).to_wire() == live.to_wire()
    # Replaying the tail again onto a state that already has it changes nothing (idempotent),
    # and replaying any suffix onto the final state converges on it too.
    snapshots = []
    ns = Namespace()
    for ev in events:
        snapshots.append(ns.to_wire())
        applier.apply(ns, ev)
    snapshots.append(ns.to_wire())
    for start in range(len(events) + 1):  # dirs written back at `start`, the tail after it
        again = Namespace.from_wire(snapshots[start])
        for ev in events[start:]:
            applier.apply(again, ev)
        assert again.to_wire() == live.to_wire(), start
