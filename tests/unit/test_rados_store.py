"""RADOS features of the object store, sans-IO: namespaces, compound ops with assert_version
(Ceph's PrimaryLogPG CEPH_OSD_OP_ASSERT_VER), pool removal; and the watch/notify books."""

from __future__ import annotations

import errno

import pytest

from osd.store import Store, StoreError, locator
from osd.watch import Watches


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path), clock=lambda: 1000.0)
    yield s
    s.close()


def code_of(fn, *args) -> int:
    with pytest.raises(StoreError) as e:
        fn(*args)
    return e.value.code


def test_namespaces_keep_objects_apart(store):
    store.write_full(1, "grace", b"default")
    store.write_full(1, locator("ganesha", "grace"), b"in ns")
    store.write_full(1, locator("other", "grace"), b"elsewhere")
    assert store.read(1, "grace") == b"default"
    assert store.read(1, locator("ganesha", "grace")) == b"in ns"
    assert store.list(1) == ["grace"]
    assert store.list(1, ns="ganesha") == ["grace"]
    assert store.list(1, "gr", ns="other") == ["grace"]
    assert store.list_all(1) == [("", "grace"), ("ganesha", "grace"), ("other", "grace")]
    assert code_of(locator, "a\x1fb", "x") == errno.EINVAL


def test_assert_version_read_modify_write(store):
    """The loop rados_grace.c runs: read with the version, write asserting it; a write in
    between makes the second writer's assert fail with ERANGE (ahead: EOVERFLOW, 0: EINVAL)."""
    v = store.operate(1, "o", [["create", True], ["write_full", b"\x01"]])["version"]
    assert v == 1
    got = store.operate(1, "o", [["read"], ["omap_get", None]])
    assert (got["data"], got["values"], got["version"]) == (b"\x01", {}, 1)
    assert store.operate(1, "o", [["assert_version", 1], ["write_full", b"\x02"],
                                  ["omap_set", {"a": b"\x02"}]])["version"] == 2
    assert code_of(store.operate, 1, "o", [["assert_version", 1], ["write_full", b"x"]]) \
        == errno.ERANGE
    assert code_of(store.operate, 1, "o", [["assert_version", 9], ["write_full", b"x"]]) \
        == errno.EOVERFLOW
    assert code_of(store.operate, 1, "o", [["assert_version", 0]]) == errno.EINVAL
    assert store.read(1, "o") == b"\x02"  # the failed ops changed nothing
    assert store.omap_get(1, "o") == {"a": b"\x02"}


def test_compound_op_is_all_or_nothing(store):
    store.operate(1, "o", [["write_full", b"d"], ["omap_set", {"a": b"1", "b": b"2"}]])
    assert code_of(store.operate, 1, "o", [["omap_rm", ["a"]], ["create", True]]) == errno.EEXIST
    assert store.omap_get(1, "o") == {"a": b"1", "b": b"2"}
    out = store.operate(1, "o", [["omap_rm", ["a"]], ["omap_set", {"c": b"3"}]])
    assert out["version"] == 2 and store.omap_get(1, "o") == {"b": b"2", "c": b"3"}
    store.operate(1, "o", [["omap_clear"]])
    assert store.omap_get(1, "o") == {} and store.read(1, "o") == b"d"
    assert code_of(store.operate, 1, "nope", [["read"]]) == errno.ENOENT
    assert code_of(store.operate, 1, "nope", [["omap_rm", ["a"]]]) == errno.ENOENT
    assert code_of(store.operate, 1, "o", [["frob"]]) == errno.EOPNOTSUPP
    assert code_of(store.operate, 1, "o", []) == errno.EINVAL
    store.operate(1, "o", [["remove"]])
    assert code_of(store.stat, 1, "o") == errno.ENOENT


def test_remove_pool_drops_only_its_objects(store):
    store.write_full(1, "a", b"1")
    store.omap_set(1, locator("ns", "b"), {"k": b"v"})
    store.write_full(2, "c", b"3")
    assert store.remove_pool(1) == 2
    assert store.list_all(1) == [] and store.read(2, "c") == b"3"


def test_notify_completes_when_every_watcher_acks():
    w = Watches()
    w.watch((1, "grace"), conn=1, cookie=7, entity="client.a", timeout=30)
    w.watch((1, "grace"), conn=2, cookie=1, entity="client.b", timeout=30)
    w.watch((1, "other"), conn=3, cookie=1, entity="client.c", timeout=30)
    nid, targets = w.notify((1, "grace"), timeout=3, now=0)
    assert sorted(targets) == [(1, 7), (2, 1)]
    assert not w.ack(nid, 1, 7, b"a-says")
    assert not w.ack(nid, 1, 7, b"again")  # a repeated ack is ignored
    assert w.ack(nid, 2, 1, b"")
    n = w.finish(nid)
    assert n.acks == [["client.a", 7, b"a-says"], ["client.b", 1, b""]] and n.timeouts == []


def test_notify_reports_watchers_that_did_not_ack_in_time():
    w = Watches()
    w.watch((1, "g"), 1, 1, "client.a", 30)
    w.watch((1, "g"), 2, 1, "client.b", 30)
    w.disconnect(2, now=5)  # b's connection dropped: it is not sent the notify
    nid, targets = w.notify((1, "g"), 3, now=6)
    assert targets == [(1, 1)]
    w.ack(nid, 1, 1, b"")
    n = w.finish(nid)  # the shell calls it when the 3 s passed
    assert n.acks == [["client.a", 1, b""]] and n.timeouts == [["client.b", 1]]


def test_disconnected_watch_expires_after_its_timeout():
    w = Watches()
    w.watch((1, "g"), 1, 1, "client.a", 30)
    w.watch((1, "g"), 2, 1, "client.b", 30)
    w.disconnect(2, now=0)
    nid, _ = w.notify((1, "g"), 60, now=1)
    w.ack(nid, 1, 1, b"")
    assert w.expire(now=29) == [] and len(w.watchers((1, "g"))) == 2
    assert w.expire(now=30) == [nid]  # b is gone: the notify no longer waits for it
    assert w.finish(nid).timeouts == []
    assert w.watchers((1, "g")) == [("client.a", 1)]
    # a client that comes back with its cookie before the timeout keeps one watch
    w.disconnect(1, now=40)
    w.watch((1, "g"), 3, 1, "client.a", 30)
    assert w.expire(now=100) == [] and list(w.watches) == [(3, 1)]


def test_hexdump_is_cephs_bufferlist_hexdump():
    """bufferlist::hexdump as `rados listomapvals` prints values (hexdump -C layout)."""
    from client.rados_cli import hexdump

    assert hexdump(b"") == ""
    assert hexdump(b"\x02") == "00000000  02" + " " * 48 + "|.|\n00000001\n"
    assert hexdump(b"0123456789abcdefXYZ") == (
        "00000000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|\n"
        "00000010  58 59 5a" + " " * 42 + "|XYZ|\n00000013\n")
    # rows repeating the one before collapse into one `*`; the last row is always shown
    assert hexdump(b"\0" * 64) == (
        "00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n*\n"
        "00000030  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n"
        "00000040\n")
