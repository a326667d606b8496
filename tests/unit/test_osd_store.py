"""Unit tests of the object store's durable core (osd.store)."""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osd.store import CHUNK, SMALL, Store, StoreError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path), clock=lambda: 1000.0)
    yield s
    s.close()


def code_of(fn, *args) -> int:
    with pytest.raises(StoreError) as e:
        fn(*args)
    return e.value.code


def test_append_and_read_ranges_across_chunks(store):
    model = bytearray()
    for i, n in enumerate([10, SMALL, 3, CHUNK + 7, 1, 2 * CHUNK]):
        piece = bytes([i + 1]) * n
        st = store.append(1, "obj", piece)
        model += piece
        assert (st.size, st.version) == (len(model), i + 1)
    assert store.read(1, "obj") == bytes(model)
    for offset, length in [(0, 1), (5, 20), (SMALL, CHUNK), (CHUNK + 3, CHUNK * 2), (9, 0),
                           (len(model) - 1, 100), (len(model), 10), (len(model) + 5, -1)]:
        want = model[offset:] if length < 0 else model[offset:offset + length]
        assert store.read(1, "obj", offset, length) == bytes(want), (offset, length)


def test_small_appends_share_a_chunk(store):
    for _ in range(100):
        store.append(1, "journal", b"x" * 30)
    rows = store.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert rows == 1
    assert store.read(1, "journal") == b"x" * 3000


def test_write_full_replaces_and_keeps_omap(store):
    store.append(1, "o", b"a" * (CHUNK * 2))
    store.omap_set(1, "o", {"k": b"v"})
    st = store.write_full(1, "o", b"new")
    assert (st.size, st.version) == (3, 3)
    assert store.read(1, "o") == b"new"
    assert store.omap_get(1, "o") == {"k": b"v"}
    store.append(1, "o", b"!")
    assert store.read(1, "o") == b"new!"


def test_stat_remove_list_and_enoent(store):
    assert code_of(store.stat, 1, "nope") == errno.ENOENT
    assert code_of(store.read, 1, "nope") == errno.ENOENT
    assert code_of(store.remove, 1, "nope") == errno.ENOENT
    assert code_of(store.omap_get, 1, "nope") == errno.ENOENT
    assert code_of(store.omap_rm, 1, "nope", ["k"]) == errno.ENOENT
    store.append(1, "200.00000000", b"h")
    store.append(1, "200.00000001", b"d")
    store.append(1, "201.00000000", b"h")
    store.append(2, "200.00000000", b"other pool")
    assert store.stat(1, "200.00000000").size == 1
    assert store.stat(1, "200.00000000").mtime == 1000.0
    assert store.list(1, "200.") == ["200.00000000", "200.00000001"]
    assert store.list(1) == ["200.00000000", "200.00000001", "201.00000000"]
    store.remove(1, "200.00000000")
    assert code_of(store.stat, 1, "200.00000000") == errno.ENOENT
    assert store.list(1, "200.") == ["200.00000001"]
    assert store.read(2, "200.00000000") == b"other pool"


def test_omap(store):
    st = store.omap_set(1, "dir", {"a": b"1", "b": b"2", "c": b"\x00\xff"})
    assert (st.size, st.version) == (0, 1)
    assert store.omap_get(1, "dir") == {"a": b"1", "b": b"2", "c": b"\x00\xff"}
    assert store.omap_get(1, "dir", ["b", "missing"]) == {"b": b"2"}
    store.omap_rm(1, "dir", ["a", "missing"])
    assert store.omap_get(1, "dir") == {"b": b"2", "c": b"\x00\xff"}
    assert store.stat(1, "dir").version == 2


def test_bad_arguments_are_einval(store):
    assert code_of(store.append, 1, "", b"x") == errno.EINVAL
    assert code_of(store.append, 1, "o", "not bytes") == errno.EINVAL
    assert code_of(store.omap_set, 1, "o", {"k": "not bytes"}) == errno.EINVAL
    assert code_of(store.read, 1, "o", -1) == errno.EINVAL


def test_corrupt_chunk_is_an_error_not_data(store):
    store.append(1, "o", b"A" * 100)
    store.append(1, "o", b"B" * CHUNK)  # a second chunk at offset 100
    store.db.execute("UPDATE chunks SET data = ? WHERE offset = 100", (b"X" * CHUNK,))
    assert store.read(1, "o", 0, 100) == b"A" * 100  # the good chunk is still readable
    for args in [(), (100, 1), (50, 100)]:
        with pytest.raises(StoreError) as e:
            store.read(1, "o", *args)
        assert e.value.code == errno.EIO
        assert "checksum mismatch in 1/o at offset 100" in str(e.value)


def test_corrupt_tail_is_not_laundered_by_an_append(store):
    store.append(1, "o", b"good")
    store.db.execute("UPDATE chunks SET data = ?", (b"evil",))
    assert code_of(store.append, 1, "o", b"more") == errno.EIO
    assert code_of(store.read, 1, "o") == errno.EIO


def test_corrupt_omap_value_and_object_record(store):
    store.omap_set(1, "o", {"k": b"v", "j": b"w"})
    store.db.execute("UPDATE omap SET value = ? WHERE key = 'k'", (b"x",))
    assert code_of(store.omap_get, 1, "o") == errno.EIO
    assert code_of(store.omap_get, 1, "o", ["k"]) == errno.EIO
    assert store.omap_get(1, "o", ["j"]) == {"j": b"w"}
    store.db.execute("UPDATE objects SET size = 5")
    assert code_of(store.stat, 1, "o") == errno.EIO


def test_meta_records(store):
    assert store.get_meta("osdmap") is None
    store.set_meta("osdmap", b"\x01\x02")
    assert store.get_meta("osdmap") == b"\x01\x02"
    store.db.execute("UPDATE meta SET value = ?", (b"zz",))
    assert code_of(store.get_meta, "osdmap") == errno.EIO


def test_second_open_of_the_same_dir_is_refused(store, tmp_path):
    with pytest.raises(StoreError) as e:
        Store(str(tmp_path))
    assert e.value.code == errno.EBUSY


def test_reopen_keeps_everything(tmp_path):
    s = Store(str(tmp_path))
    s.append(1, "o", b"x" * (CHUNK + 1))
    s.omap_set(1, "o", {"k": b"v"})
    s.close()
    s = Store(str(tmp_path))
    assert s.read(1, "o") == b"x" * (CHUNK + 1)
    assert s.omap_get(1, "o") == {"k": b"v"}
    s.close()


WRITER = textwrap.dedent("""
    import sys
    from osd.store import Store
    s = Store(sys.argv[1])
    i = 0
    while True:
        s.append(1, "journal", b"%08d;" % i)
        s.omap_set(1, "header", {"write_pos": b"%d" % (i + 1)})
        print(i, flush=True)  # acknowledged
        i += 1
""")


@pytest.mark.timeout(60)
def test_acknowledged_writes_survive_kill_9(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})
    acked = -1
    try:
        for line in proc.stdout:
            acked = int(line)
            if acked >= 200:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert acked >= 200
    s = Store(str(tmp_path))
    data = s.read(1, "journal")
    events = data.split(b";")[:-1]
    assert len(events) >= acked + 1
    assert events == [b"%08d" % i for i in range(len(events))]
    assert int(s.omap_get(1, "header")["write_pos"]) >= acked + 1
    s.close()


def pattern(n: int, seed: int) -> bytes:
    return bytes((seed + i * 7) % 256 for i in range(n))


SIZES = st.one_of(st.integers(0, 300), st.integers(CHUNK - 10, CHUNK + 10), st.just(SMALL))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(SIZES, st.integers(0, 255)), min_size=1, max_size=12),
       st.lists(st.tuples(st.integers(0, 3 * CHUNK), st.integers(-1, 2 * CHUNK)), max_size=8))
def test_appends_then_reads_match_a_bytearray(tmp_path_factory, pieces, ranges):
    s = Store(str(tmp_path_factory.mktemp("store")))
    try:
        model = bytearray()
        for n, seed in pieces:
            s.append(1, "o", pattern(n, seed))
            model += pattern(n, seed)
        assert s.stat(1, "o").size == len(model)
        assert s.read(1, "o") == bytes(model)
        for offset, length in ranges:
            want = model[offset:] if length < 0 else model[offset:offset + length]
            assert s.read(1, "o", offset, length) == bytes(want)
    finally:
        s.close()


def test_sqlite_settings_make_acks_durable(store):
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert isinstance(store.db, sqlite3.Connection)


def test_append_at_is_safe_to_resend(tmp_path):
    """A journal append resent after a lost connection must not be written twice."""
    s = Store(str(tmp_path / "osd"))
    assert s.append_at(1, "200.00000001", 0, b"abc").size == 3
    assert s.append_at(1, "200.00000001", 3, b"def").size == 6
    assert s.append_at(1, "200.00000001", 3, b"def").size == 6  # the resend: nothing changes
    assert s.read(1, "200.00000001") == b"abcdef"
    with pytest.raises(StoreError) as e:
        s.append_at(1, "200.00000001", 3, b"xyz")  # other bytes there: refused
    assert e.value.code == errno.ERANGE
    with pytest.raises(StoreError) as e:
        s.append_at(1, "200.00000001", 9, b"g")  # a gap
    assert e.value.code == errno.ERANGE
