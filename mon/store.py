"""The monitor's durable store: SQLite in WAL mode with synchronous writes (DESIGN §5).

Every committed FSMap epoch is kept for `fs dump <epoch>`, trimmed as Ceph's MDSMonitor trims
its Paxos versions (the newest one and the `mon_max_mdsmap_epochs` before it stay), with the
latest OSDMap, the gid counter, the config database and a ring of cluster-log entries. A write
returns only once SQLite has synced it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence

import msgpack

from common.fsmap import FSMap
from common.osdmap import OSDMap

KEEP_EPOCHS = 500  # mon_max_mdsmap_epochs' default
KEEP_LOG = 1000

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS fsmap (epoch INTEGER PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS clog (seq INTEGER PRIMARY KEY, stamp REAL, who TEXT, level TEXT,
                                 message TEXT);
"""


def _pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _unpack(data: bytes):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


class MonStore:
    def __init__(self, path: str, keep_epochs: int = KEEP_EPOCHS) -> None:
        self.keep_epochs = keep_epochs
        os.makedirs(path, exist_ok=True)
        self.db = sqlite3.connect(os.path.join(path, "store.db"), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def get(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return _unpack(row[0]) if row else default

    def is_new(self) -> bool:
        return self.get("fsid") is None

    def latest_fsmap(self) -> FSMap | None:
        row = self.db.execute("SELECT value FROM fsmap ORDER BY epoch DESC LIMIT 1").fetchone()
        return FSMap.from_wire(_unpack(row[0])) if row else None

    def fsmap_at(self, epoch: int) -> FSMap | None:
        row = self.db.execute("SELECT value FROM fsmap WHERE epoch = ?", (epoch,)).fetchone()
        return FSMap.from_wire(_unpack(row[0])) if row else None

    def latest_osdmap(self) -> OSDMap | None:
        d = self.get("osdmap")
        return OSDMap.from_wire(d) if d else None

    def recent_log(self, n: int) -> list[dict]:
        rows = self.db.execute(
            "SELECT seq, stamp, who, level, message FROM clog ORDER BY seq DESC LIMIT ?", (n,)
        ).fetchall()
        return [dict(zip(("seq", "stamp", "who", "level", "message"), r, strict=True))
                for r in reversed(rows)]

    def commit(self, *, fsmap: FSMap | None = None, osdmap: OSDMap | None = None,
               kv: dict | None = None, log: list[dict] | None = None,
               fsmaps: Sequence[FSMap] = ()) -> None:
        """One durable transaction (`fsmaps`: several epochs committed back to back)."""
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for f in [*fsmaps, *([fsmap] if fsmap is not None else [])]:
                cur.execute("INSERT OR REPLACE INTO fsmap VALUES (?, ?)",
                            (f.epoch, _pack(f.to_wire())))
                cur.execute("DELETE FROM fsmap WHERE epoch < ?", (f.epoch - self.keep_epochs,))
            if osdmap is not None:
                cur.execute("INSERT OR REPLACE INTO kv VALUES ('osdmap', ?)",
                            (_pack(osdmap.to_wire()),))
            for key, value in (kv or {}).items():
                cur.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, _pack(value)))
            for e in log or []:
                cur.execute("INSERT INTO clog VALUES (?, ?, ?, ?, ?)",
                            (e["seq"], e["stamp"], e["who"], e["level"], e["message"]))
            if log:
                cur.execute("DELETE FROM clog WHERE seq <= ?", (log[-1]["seq"] - KEEP_LOG,))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
