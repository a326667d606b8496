"""The object store's durable core: objects by (pool, name) in one SQLite file (DESIGN §5).

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

    def list(self, pool: int, prefix: str = "") -> list[str]:
        """Names of the objects in `pool` starting with `prefix`, sorted."""
        _check(pool, prefix or "-")
        rows = self.db.execute("SELECT name FROM objects WHERE pool = ? AND name >= ? "
                               "ORDER BY name", (pool, prefix))
        names = []
        for (name,) in rows:
            if not name.startswith(prefix):
                break
            names.append(name)
        return names

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


def _check(pool: object, name: object) -> None:
    if type(pool) is not int or not isinstance(name, str) or not name:
        raise StoreError(errno.EINVAL, f"bad object id {pool!r}/{name!r}")


def _check_bytes(data: object) -> None:
    if not isinstance(data, bytes):
        raise StoreError(errno.EINVAL, f"expected bytes, got {type(data).__name__}")


def _check_keys(keys: object) -> None:
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise StoreError(errno.EINVAL, "omap keys must be a list of strings")
