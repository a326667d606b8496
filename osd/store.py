"""The object store's durable core: objects by (pool, name) in one SQLite file (DESIGN §5).

An object in a RADOS namespace is stored under `locator(ns, name)`; `operate` runs a compound
op (Ceph's ObjectOperation) in one transaction, with `assert_version` checks.

Plain synchronous code, no trio. Every write is one transaction in WAL mode with
synchronous=FULL, so a call that returns has been fsynced: acknowledged means durable.
Object data lives in chunks, so an append adds rows and never rewrites the object. Every
record (object row, chunk, omap value, meta value) carries a CRC-32 over its location and
content, checked whenever it is read: a mismatch raises EIO and the bad bytes are never returned.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import msgpack

CHUNK = 64 * 1024  # data is stored in chunks of at most this many bytes
SMALL = 4 * 1024  # a tail chunk this short absorbs the next small append (fewer rows)

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (pool INTEGER NOT NULL, name TEXT NOT NULL,
    size INTEGER NOT NULL, version INTEGER NOT NULL, mtime REAL NOT NULL, crc INTEGER NOT NULL,
    PRIMARY KEY (pool, name));
CREATE TABLE IF NOT EXISTS chunks (pool INTEGER NOT NULL, name TEXT NOT NULL,
    offset INTEGER NOT NULL, data BLOB NOT NULL, crc INTEGER NOT NULL,
    PRIMARY KEY (pool, name, offset));
CREATE TABLE IF NOT EXISTS omap (pool INTEGER NOT NULL, name TEXT NOT NULL, key TEXT NOT NULL,
    value BLOB NOT NULL, crc INTEGER NOT NULL, PRIMARY KEY (pool, name, key));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL,
    crc INTEGER NOT NULL);
"""


class StoreError(Exception):
    """An op that failed; `code` is a positive errno (ENOENT, EINVAL, EIO, ...)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Stat:
    size: int
    version: int  # bumped by every write to the object (data or omap)
    mtime: float  # wall clock of the last write


def crc(where: list, data: bytes = b"") -> int:
    """CRC-32 of a record: its location (so a misplaced record fails too), then its bytes."""
    return zlib.crc32(data, zlib.crc32(msgpack.packb(where)))


class Store:
    def __init__(self, path: str, clock: Callable[[], float] = time.time) -> None:
        os.makedirs(path, exist_ok=True)
        self.path = os.path.join(path, "store.db")
        self.clock = clock
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        try:
            self.db.execute("PRAGMA locking_mode=EXCLUSIVE")  # one osd per data dir
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
        except sqlite3.OperationalError as e:
            self.db.close()
            raise StoreError(errno.EBUSY, f"cannot open {self.path}: {e}") from None

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def _txn(self):
        """One write transaction; COMMIT returns after the WAL is fsynced."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    # -- object rows
    def _object(self, pool: int, name: str) -> Stat | None:
        _check(pool, name)
        row = self.db.execute("SELECT size, version, mtime, crc FROM objects "
                              "WHERE pool = ? AND name = ?", (pool, name)).fetchone()
        if row is None:
            return None
        size, version, mtime, stored = row
        if crc([pool, name, size, version, mtime]) != stored:
            raise StoreError(errno.EIO, f"checksum mismatch in {pool}/{name} object record")
        return Stat(size, version, mtime)

    def _need(self, pool: int, name: str) -> Stat:
        st = self._object(pool, name)
        if st is None:
            raise StoreError(errno.ENOENT, f"no such object {pool}/{name}")
        return st

    def _bump(self, pool: int, name: str, size: int, old: Stat | None) -> Stat:
        st = Stat(size, (old.version if old else 0) + 1, self.clock())
        self.db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?)",
                        (pool, name, st.size, st.version, st.mtime,
                         crc([pool, name, st.size, st.version, st.mtime])))
        return st

    # -- data
    def _chunk(self, pool: int, name: str, row) -> bytes:
        offset, data, stored = row
        if crc([pool, name, offset], data) != stored:
            raise StoreError(errno.EIO, f"checksum mismatch in {pool}/{name} at offset {offset}")
        return data

    def _put(self, pool: int, name: str, offset: int, data: bytes) -> None:
        for i in range(0, len(data), CHUNK):
            piece = data[i:i + CHUNK]
            self.db.execute("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?)",
                            (pool, name, offset + i, piece, crc([pool, name, offset + i], piece)))

    def append(self, pool: int, name: str, data: bytes) -> Stat:
        """Add `data` at the end (creating the object); costs O(len(data)), not O(size)."""
        _check_bytes(data)
        with self._txn():
            old = self._object(pool, name)
            size = old.size if old else 0
            offset, merged = size, data
            tail = self.db.execute("SELECT offset, data, crc FROM chunks WHERE pool = ? AND "
                                   "name = ? ORDER BY offset DESC LIMIT 1", (pool, name)).fetchone()
            if data and tail and len(tail[1]) + len(data) <= SMALL \
                    and tail[0] + len(tail[1]) == size:
                # rewrite the short tail chunk (checked first: never re-checksum bad bytes)
                offset, merged = tail[0], self._chunk(pool, name, tail) + data
            self._put(pool, name, offset, merged)
            return self._bump(pool, name, size + len(data), old)

    def append_at(self, pool: int, name: str, offset: int, data: bytes) -> Stat:
        """Append `data` if the object ends at `offset`. If those bytes are there already (a
        resent append whose first copy was applied), nothing changes: unlike `append`, it can
        be resent safely. ERANGE otherwise."""
        _check_bytes(data)
        old = self._object(pool, name)
        size = old.size if old else 0
        if size == offset:
            return self.append(pool, name, data)
        if old is not None and 0 <= offset and size >= offset + len(data) and \
                self.read(pool, name, offset, len(data)) == data:
            return old
        raise StoreError(errno.ERANGE, f"append at {offset}: {pool}/{name} holds {size} bytes")

    def write_full(self, pool: int, name: str, data: bytes) -> Stat:
        """Replace the object's data (creating the object); its omap is kept."""
        _check_bytes(data)
        with self._txn():
            old = self._object(pool, name)
            self.db.execute("DELETE FROM chunks WHERE pool = ? AND name = ?", (pool, name))
            self._put(pool, name, 0, data)
            return self._bump(pool, name, len(data), old)

    def read(self, pool: int, name: str, offset: int = 0, length: int = -1) -> bytes:
        """Bytes [offset, offset + length) (length -1: to the end), short at the end."""
        if offset < 0 or length < -1:
            raise StoreError(errno.EINVAL, f"bad range offset={offset} length={length}")
        st = self._need(pool, name)
        end = st.size if length < 0 else min(st.size, offset + length)
        if offset >= end:
            return b""
        first = self.db.execute("SELECT max(offset) FROM chunks WHERE pool = ? AND name = ? "
                                "AND offset <= ?", (pool, name, offset)).fetchone()[0]
        rows = self.db.execute("SELECT offset, data, crc FROM chunks WHERE pool = ? AND name = ? "
                               "AND offset >= ? AND offset < ? ORDER BY offset",
                               (pool, name, first or 0, end))
        out, pos = bytearray(), offset
        for row in rows:
            data = self._chunk(pool, name, row)
            if row[0] > pos:
                break
            out += data[pos - row[0]:end - row[0]]
            pos = max(pos, min(end, row[0] + len(data)))
        if pos < end:
            raise StoreError(errno.EIO, f"missing data in {pool}/{name} at offset {pos}")
        return bytes(out)

    def remove(self, pool: int, name: str) -> None:
        with self._txn():
            self._need(pool, name)
            for table in ("objects", "chunks", "omap"):
                self.db.execute(f"DELETE FROM {table} WHERE pool = ? AND name = ?", (pool, name))

    def stat(self, pool: int, name: str) -> Stat:
        return self._need(pool, name)

    def list(self, pool: int, prefix: str = "", ns: str = "") -> list[str]:
        """Names of the objects of namespace `ns` in `pool` starting with `prefix`, sorted."""
        _check(pool, prefix or "-")
        start = locator(ns, prefix) if ns else prefix
        rows = self.db.execute("SELECT name FROM objects WHERE pool = ? AND name >= ? "
                               "ORDER BY name", (pool, start))
        names = []
        for (name,) in rows:
            if not name.startswith(start):
                break
            found_ns, found = split_locator(name)
            if found_ns == ns:
                names.append(found)
        return names

    def list_all(self, pool: int) -> list[tuple[str, str]]:
        """(namespace, name) of every object in `pool` (`rados ls --all`)."""
        _check(pool, "-")
        rows = self.db.execute("SELECT name FROM objects WHERE pool = ? ORDER BY name", (pool,))
        return sorted(split_locator(name) for (name,) in rows)

    def remove_pool(self, pool: int) -> int:
        """Delete every object of a pool the OSDMap no longer has; how many there were."""
        with self._txn():
            n = self.db.execute("SELECT count(*) FROM objects WHERE pool = ?",
                                (pool,)).fetchone()[0]
            for table in ("objects", "chunks", "omap"):
                self.db.execute(f"DELETE FROM {table} WHERE pool = ?", (pool,))
            return n

    def pools(self) -> list[int]:
        return [p for (p,) in self.db.execute("SELECT DISTINCT pool FROM objects ORDER BY pool")]

    # -- compound ops (Ceph's ObjectReadOperation / ObjectWriteOperation)
    def operate(self, pool: int, name: str, ops: list) -> dict:
        """Run `ops` ([["assert_version", v], ["create", exclusive], ["write_full", data],
        ["omap_set", {k: v}], ["omap_rm", [k]], ["omap_clear"], ["remove"], ["read"],
        ["omap_get", keys | None], ["stat"]]) in order, all or nothing. The object's version
        goes up once if any op writes. Returns what the reads asked for and the version after.
        assert_version fails as Ceph's does: EINVAL for 0, ERANGE if the object is newer,
        EOVERFLOW if it is older (a missing object is version 0)."""
        _check(pool, name)
        if not isinstance(ops, list) or not ops:
            raise StoreError(errno.EINVAL, "a compound op needs a list of ops")
        out: dict = {}
        with self._txn():
            st = self._object(pool, name)
            exists = st is not None
            data = None  # the new data, if written
            omap_set: dict[str, bytes] = {}
            omap_rm: set[str] = set()
            clear = removed = wrote = False
            for op in ops:
                kind, args = _sub_op(op)
                if kind == "assert_version":
                    v = args[0] if args else None
                    if type(v) is not int or v < 0:
                        raise StoreError(errno.EINVAL, f"bad version {v!r}")
                    have = st.version if exists else 0
                    if v == 0:
                        raise StoreError(errno.EINVAL, "assert_version 0")
                    if v < have:
                        raise StoreError(errno.ERANGE, f"version {have} > asserted {v}")
                    if v > have:
                        raise StoreError(errno.EOVERFLOW, f"version {have} < asserted {v}")
                elif kind == "create":
                    if exists and args and args[0]:
                        raise StoreError(errno.EEXIST, f"object {pool}/{name} exists")
                    exists = wrote = True
                elif kind == "write_full":
                    _check_bytes(args[0] if args else None)
                    data, exists, wrote = args[0], True, True
                elif kind == "omap_set":
                    values = args[0] if args else None
                    if not isinstance(values, dict):
                        raise StoreError(errno.EINVAL, "omap_set needs a map")
                    _check_keys(list(values))
                    for v in values.values():
                        _check_bytes(v)
                    omap_set.update(values)
                    omap_rm.difference_update(values)
                    exists = wrote = True
                elif kind in ("omap_rm", "omap_clear", "remove"):
                    if not exists:
                        raise StoreError(errno.ENOENT, f"no such object {pool}/{name}")
                    if kind == "omap_rm":
                        keys = args[0] if args else None
                        _check_keys(keys)
                        omap_rm.update(keys)
                        for k in keys:
                            omap_set.pop(k, None)
                    elif kind == "omap_clear":
                        clear, omap_set, omap_rm = True, {}, set()
                    else:
                        removed, exists, data = True, False, None
                        clear, omap_set, omap_rm = True, {}, set()
                    wrote = True
                elif kind in ("read", "omap_get", "stat"):
                    if not exists or wrote:
                        if not exists:
                            raise StoreError(errno.ENOENT, f"no such object {pool}/{name}")
                        raise StoreError(errno.EINVAL, "reads must come before writes")
                    if kind == "read":
                        out["data"] = self.read(pool, name)
                    elif kind == "omap_get":
                        out["values"] = self.omap_get(pool, name, args[0] if args else None)
                    out["size"], out["mtime"] = st.size, st.mtime
                else:
                    raise StoreError(errno.EOPNOTSUPP, f"unknown sub-op {kind!r}")
            if wrote:
                st = self._apply(pool, name, st, data, omap_set, omap_rm, clear, removed)
            out["version"] = st.version if st else 0
        return out

    def _apply(self, pool, name, old, data, omap_set, omap_rm, clear, removed) -> Stat | None:
        """The writes of one compound op, inside its transaction."""
        if clear or removed:
            self.db.execute("DELETE FROM omap WHERE pool = ? AND name = ?", (pool, name))
        if removed:
            for table in ("objects", "chunks"):
                self.db.execute(f"DELETE FROM {table} WHERE pool = ? AND name = ?", (pool, name))
            if data is None and not omap_set:
                return None
            old = None
        if data is not None:
            self.db.execute("DELETE FROM chunks WHERE pool = ? AND name = ?", (pool, name))
            self._put(pool, name, 0, data)
        for key in omap_rm:
            self.db.execute("DELETE FROM omap WHERE pool = ? AND name = ? AND key = ?",
                            (pool, name, key))
        for key, value in omap_set.items():
            self.db.execute("INSERT OR REPLACE INTO omap VALUES (?, ?, ?, ?, ?)",
                            (pool, name, key, value, crc([pool, name, key], value)))
        size = len(data) if data is not None else (old.size if old else 0)
        return self._bump(pool, name, size, old)

    # -- omap
    def omap_get(self, pool: int, name: str, keys: list[str] | None = None) -> dict[str, bytes]:
        """The omap values for `keys` (absent keys are left out), or all of them."""
        self._need(pool, name)
        if keys is None:
            rows = self.db.execute("SELECT key, value, crc FROM omap WHERE pool = ? AND name = ? "
                                   "ORDER BY key", (pool, name)).fetchall()
        else:
            _check_keys(keys)
            rows = [r for k in keys for r in self.db.execute(
                "SELECT key, value, crc FROM omap WHERE pool = ? AND name = ? AND key = ?",
                (pool, name, k))]
        out = {}
        for key, value, stored in rows:
            if crc([pool, name, key], value) != stored:
                raise StoreError(errno.EIO, f"checksum mismatch in {pool}/{name} omap key {key!r}")
            out[key] = value
        return out

    def omap_set(self, pool: int, name: str, values: dict[str, bytes]) -> Stat:
        """Set omap values (creating the object)."""
        _check_keys(list(values))
        for v in values.values():
            _check_bytes(v)
        with self._txn():
            old = self._object(pool, name)
            for key, value in values.items():
                self.db.execute("INSERT OR REPLACE INTO omap VALUES (?, ?, ?, ?, ?)",
                                (pool, name, key, value, crc([pool, name, key], value)))
            return self._bump(pool, name, old.size if old else 0, old)

    def omap_rm(self, pool: int, name: str, keys: list[str]) -> Stat:
        _check_keys(keys)
        with self._txn():
            old = self._need(pool, name)
            for key in keys:
                self.db.execute("DELETE FROM omap WHERE pool = ? AND name = ? AND key = ?",
                                (pool, name, key))
            return self._bump(pool, name, old.size, old)

    # -- the daemon's own small records (its last OSDMap)
    def get_meta(self, key: str) -> bytes | None:
        row = self.db.execute("SELECT value, crc FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        if crc(["meta", key], row[0]) != row[1]:
            raise StoreError(errno.EIO, f"checksum mismatch in meta record {key!r}")
        return row[0]

    def set_meta(self, key: str, value: bytes) -> None:
        with self._txn():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?, ?)",
                            (key, value, crc(["meta", key], value)))


NS_SEP = "\x1f"  # between a namespace and an object name in the store's key


def locator(ns: str, name: str) -> str:
    """The store's key of object `name` in RADOS namespace `ns` ("" is the default one)."""
    if not isinstance(ns, str) or NS_SEP in ns or not isinstance(name, str) or NS_SEP in name:
        raise StoreError(errno.EINVAL, f"bad namespace or object name {ns!r}/{name!r}")
    return f"{ns}{NS_SEP}{name}" if ns else name


def split_locator(key: str) -> tuple[str, str]:
    ns, sep, name = key.partition(NS_SEP)
    return (ns, name) if sep else ("", key)


def _sub_op(op: object) -> tuple[str, list]:
    if not isinstance(op, list) or not op or not isinstance(op[0], str):
        raise StoreError(errno.EINVAL, f"bad sub-op {op!r}")
    return op[0], op[1:]


def _check(pool: object, name: object) -> None:
    if type(pool) is not int or not isinstance(name, str) or not name:
        raise StoreError(errno.EINVAL, f"bad object id {pool!r}/{name!r}")


def _check_bytes(data: object) -> None:
    if not isinstance(data, bytes):
        raise StoreError(errno.EINVAL, f"expected bytes, got {type(data).__name__}")


def _check_keys(keys: object) -> None:
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise StoreError(errno.EINVAL, "omap keys must be a list of strings")
