"""A rank's metadata in the metadata pool: its journal and its directory objects (ref J1–J5).

The trio layer over `mds.journal` (format, segments) and `mds.namespace` (what the events
mean). Directory `D` lives in object `<D hex>.00000000`, one omap entry per dentry holding the
child's inode; the root's own inode is under the key "." of the root object. The journal is
replayed from `expire_pos` onto what the directory objects hold (R3); when there are more than
`mds_log_max_segments` segments, the directories the oldest segments dirtied are written back
and `expire_pos` moves past them (J3); data objects wholly before it are removed (`trimmed_pos`).

Write-back uses `flushed`, a namespace that lags the live one: it holds exactly the state at
`expire_pos`, and expiring a segment applies that segment's events to it before its dirty
directories are written. So the directory objects always match a journal position, and replay
(directory objects + the tail) rebuilds exactly the state the active had.
"""

from __future__ import annotations

import errno
from collections import deque
from collections.abc import Callable

import msgpack
import structlog
import trio

from common.net import background
from mds import applier, subtree
from mds import journal as j
from mds.namespace import ROOT_INO, Inode, Namespace
from osd.objecter import OSDClient, OSDError

log = structlog.get_logger("mds")

READ_AHEAD = 1024 * 1024  # bytes of journal asked of the osd at once in replay (divides
# OBJECT_SIZE, so a piece never straddles two objects)
READ_AHEAD_DEPTH = 4  # pieces asked for ahead of the one being applied (Ceph's Journaler
# prefetches several periods): the osd reads and sends while we decode and apply


def dir_object(ino: int) -> str:
    return f"{ino:x}.00000000"


def sessionmap_object(rank: int) -> str:
    return f"mds{rank}_sessionmap"


def _deep(d: dict) -> dict:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}


def _pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _key(inode: Inode) -> tuple:
    """What a dentry's stored inode is, compared to tell whether to write it again."""
    v = inode.__dict__
    return (*v.values(), tuple(sorted(v["xattrs"].items()))) if v["xattrs"] else \
        tuple(v.values())


def _unpack(data: bytes):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


class RankStore:
    def __init__(self, osd: OSDClient, pool: int, rank: int, events_per_segment: int,
                 max_segments: int, min_epoch: int = 0) -> None:
        self.osd = osd
        self.pool = pool
        self.rank = rank
        self.min_epoch = min_epoch  # F3: ops wait until the osd has the fencing map
        self.header = j.Header()
        self.segments = j.SegmentLog(events_per_segment, max_segments)
        self.read_pos = 0  # how far replay (or standby-replay) has read
        self.header_wait = 0.0  # seconds the last load waited for the journal header
        self.replayed = 0
        self.replayed_total = 0  # events applied from the journal so far (standby-replay rate)
        self.flushed: Namespace | None = None  # the state at expire_pos (what the dirs hold)
        self.sessions: dict[str, dict] = {}  # client -> {"addr", "metadata"}: open sessions
        self.flushed_sessions: dict[str, dict] = {}  # ... at expire_pos (the sessionmap object)
        self.damaged: dict[int, str] = {}  # dir ino -> why: the damage table (MDS_DAMAGE)
        self.subtree_map: Callable[[], dict] = dict  # the live subtree state, for openers
        # dir ino -> {name: _key(inode)}: what its object holds, as this rank last wrote it
        self._written: dict[int, dict[str, tuple]] = {}
        self._trimming = trio.Lock()

    # -- objects
    async def _read_obj(self, name: str, offset: int = 0) -> bytes:
        try:
            return await self.osd.read(self.pool, name, offset, -1, min_epoch=self.min_epoch)
        except OSDError as e:
            if e.code == errno.ENOENT:  # nothing written there yet
                return b""
            raise

    async def read_piece(self, name: str, offset: int, length: int) -> bytes:
        """Bytes of one object (none if it does not exist): a piece of replay's read-ahead."""
        try:
            return await self.osd.read(self.pool, name, offset, length,
                                       min_epoch=self.min_epoch)
        except OSDError as e:
            if e.code == errno.ENOENT:
                return b""
            raise

    async def _omap(self, name: str) -> dict[str, bytes]:
        try:
            return await self.osd.omap_get(self.pool, name, None, min_epoch=self.min_epoch)
        except OSDError as e:
            if e.code == errno.ENOENT:  # a directory never written back yet
                return {}
            raise

    async def write_header(self) -> None:
        await self.osd.write_full(self.pool, j.header_object(self.rank), self.header.encode(),
                                  min_epoch=self.min_epoch)

    async def read_header(self) -> j.Header:
        data = await self._read_obj(j.header_object(self.rank))
        if not data:
            raise j.JournalDamaged(f"journal header {j.header_object(self.rank)} is missing")
        return j.Header.decode(data)

    # -- create (R4) and load (R3)
    async def create(self, ns: Namespace) -> None:
        self.header = j.Header()
        await self.write_header()
        self.flushed = Namespace.from_wire(ns.to_wire())
        if self.rank == 0:
            await self.write_dirs(ns, {ROOT_INO})
        await self.append([self.opener()])

    def opener(self) -> dict:
        """The event that opens a segment: this rank's subtrees at that point."""
        return {"t": j.ESUBTREEMAP, "rank": self.rank, **self.subtree_map()}

    async def load(self, completed: dict | None = None) -> Namespace:
        """Read the directory objects of the subtrees this rank holds (the ESubtreeMap that
        opens the journal's first live segment names them), then replay the journal tail.
        The tail is read in pieces, each asked of the osd while the one before is decoded
        and applied (read-ahead), so the osd's reading and ours overlap."""
        t0 = trio.current_time()
        self.header = await self.read_header()
        self.header_wait = trio.current_time() - t0  # the osd may first wait for the fence
        pos = self.header.expire_pos
        ns = Namespace(rank=self.rank)
        self.read_pos = pos
        self.replayed = 0
        tail = b""
        first = True

        async def replay_piece(data: bytes, last: bool) -> None:
            nonlocal tail, first
            buf = tail + data if tail else data
            start = self.read_pos
            events, end = j.decode_events(buf, start)
            if first:
                if not events and not last:  # the opener is not whole yet: it names the
                    tail = buf  # subtrees whose directory objects are read first
                    return
                first = False
                if events and events[0][1].get("t") == j.ESUBTREEMAP:
                    applier.apply(ns, events[0][1])
                await self._load_flushed(ns, completed)
            tail = buf[end - start:]  # an incomplete record: the next piece completes it
            self.replayed += self._apply_events(ns, events, end, completed)

        await self._read_stream_ahead(pos, replay_piece)
        return ns

    async def _load_flushed(self, ns: Namespace, completed: dict | None) -> None:
        """What the directory and sessionmap objects hold (the state at expire_pos)."""
        await self.read_dirs(ns)
        self.flushed = Namespace.from_wire(ns.to_wire())
        stored = {c: _unpack(v) for c, v in
                  (await self._omap(sessionmap_object(self.rank))).items()}
        self.flushed_sessions = stored
        self.sessions = {c: {k: v for k, v in d.items() if k != "completed"}
                         for c, d in stored.items()}
        if completed is not None:  # what clients may resend from before the journal's tail
            for client, d in stored.items():
                completed.load(client, d.get("completed", {}))

    async def _read_stream_ahead(self, pos: int, consume) -> None:
        """Stream bytes from `pos` to the end in pieces of READ_AHEAD bytes (the first up to
        the next multiple of it); `consume(piece, last)` runs while the next READ_AHEAD_DEPTH
        pieces are being read (the osd works meanwhile)."""
        async with background() as nursery:
            ahead = deque([_Fetch(self, nursery, pos)])
            while True:
                while len(ahead) < 1 + READ_AHEAD_DEPTH:  # the next pieces, asked for now
                    last = ahead[-1].pos
                    ahead.append(_Fetch(self, nursery, last + READ_AHEAD - last % READ_AHEAD))
                await trio.lowlevel.checkpoint()  # let them send their requests
                fetch = ahead.popleft()
                data = await fetch.get()
                more = len(data) == READ_AHEAD - fetch.pos % READ_AHEAD
                await consume(data, not more)
                if not more:  # the end: what was asked beyond it is cancelled
                    return

    async def read_dirs(self, ns: Namespace) -> None:
        """Fill `ns` from the directory objects of its subtree roots (not below exports). A
        directory below them that cannot be read (checksum failure, undecodable entries) is
        noted in the damage table and left empty; the rank serves around it, as Ceph's MDS
        does with a damaged dirfrag. Damage to a subtree root's object is fatal (F5)."""
        todo = []
        for root in sorted(ns.auth_roots):
            omap = await self._omap(dir_object(root))
            if root == ROOT_INO and "." in omap:
                ns.inodes[ROOT_INO] = Inode.from_wire(_unpack(omap["."]))
            if root in ns.dentries:
                todo.append((root, omap))
        while todo:
            dir_ino, omap = todo.pop()
            children = self._decode_dir(ns, dir_ino, omap)
            for name, child in children:
                ns.attach(dir_ino, name, child)
                if child.is_dir and child.ino not in ns.exported:
                    omap = await self._dir_omap(ns, child.ino)
                    if omap is not None:
                        todo.append((child.ino, omap))

    def _decode_dir(self, ns: Namespace, dir_ino: int, omap: dict) -> list[tuple[str, Inode]]:
        try:
            return [(name, Inode.from_wire(_unpack(raw))) for name, raw in sorted(omap.items())
                    if name != "."]
        except Exception as e:  # noqa: BLE001 - whatever fails to decode is damage
            if dir_ino in ns.auth_roots:
                raise j.JournalDamaged(f"directory object {dir_object(dir_ino)} is damaged: "
                                       f"{e!r}") from None
            self._note_damage(ns, dir_ino, f"undecodable dentry: {e!r}")
            return []

    async def _dir_omap(self, ns: Namespace, ino: int) -> dict[str, bytes] | None:
        try:
            return await self._omap(dir_object(ino))
        except OSDError as e:
            if e.code != errno.EIO:
                raise
            self._note_damage(ns, ino, str(e))
            return None

    def _note_damage(self, ns: Namespace, ino: int, why: str) -> None:
        self.damaged[ino] = why
        log.error("damaged metadata: directory left unread", dir=ns.path_of(ino),
                  ino=hex(ino), reason=why)

    async def _read_stream(self, pos: int) -> bytes:
        """Stream bytes from `pos` to the end, across object boundaries."""
        out = bytearray()
        while True:
            objno, off = 1 + pos // j.OBJECT_SIZE, pos % j.OBJECT_SIZE
            data = await self._read_obj(j.data_object(self.rank, objno), off)
            out += data
            pos += len(data)
            if off + len(data) < j.OBJECT_SIZE:
                return bytes(out)

    async def replay_more(self, ns: Namespace, completed: dict | None = None) -> int:
        """Apply the events written since `read_pos`; return how many were applied."""
        events, end = j.decode_events(await self._read_stream(self.read_pos), self.read_pos)
        return self._apply_events(ns, events, end, completed)

    def _apply_events(self, ns: Namespace, events: list, end: int,
                      completed: dict | None) -> int:
        for pos, ev in events:
            self._note(pos, ev)
            applier.apply(ns, ev, self.sessions, completed)
        self.read_pos = end
        self.header.write_pos = max(self.header.write_pos, end)
        self.replayed_total += len(events)
        return len(events)

    def _note(self, pos: int, ev: dict) -> None:
        self.segments.note(pos, ev, applier.dirty_dirs(ev))
        if ev.get("t") in (j.EEXPORT, j.EIMPORT):
            self._written.clear()  # another rank writes (or wrote) some of our directories

    # -- write path (J5)
    async def append(self, events: list[dict]) -> None:
        """Journal events durably (returns once the osd has them on disk). Each event is
        noted in its segment as it joins the batch, so that a batch longer than a segment
        opens one new segment where the last fills, not one before every event after it."""
        data = bytearray()
        pos = self.header.write_pos
        for ev in events:
            if ev.get("t") == j.EUPDATE and self.segments.needs_new_segment():
                opener = self.opener()
                self._note(pos + len(data), opener)
                data += j.encode_event(opener)
            self._note(pos + len(data), ev)
            data += j.encode_event(ev)
        data = bytes(data)
        for objno, off, n in j.object_span(pos, len(data)):
            start = (objno - 1) * j.OBJECT_SIZE + off - pos
            await self.osd.append_at(self.pool, j.data_object(self.rank, objno), off,
                                     data[start : start + n], min_epoch=self.min_epoch)
        self.header.write_pos = pos + len(data)
        self.read_pos = self.header.write_pos

    # -- write-back and trimming (J3, J4)
    async def write_dirs(self, ns: Namespace, dirs: set[int]) -> None:
        """Write back the current dentries of `dirs` (removed directories are deleted): only
        the dentries that changed since this rank last wrote or read the object (Ceph's
        dirfrag commit writes its dirty dentries), known from `_written`."""
        for dir_ino in sorted(dirs):
            name = dir_object(dir_ino)
            if dir_ino in self.damaged:
                continue  # what is left of a damaged directory object stays for repair
            if dir_ino in ns.inodes and not subtree.holds(ns, dir_ino):
                self._written.pop(dir_ino, None)  # another rank's to write from now on
                continue  # a stub, or a directory exported to another rank: not ours to write
            if dir_ino not in ns.dentries:
                self._written.pop(dir_ino, None)
                try:
                    await self.osd.remove(self.pool, name, min_epoch=self.min_epoch)
                except OSDError as e:
                    if e.code != errno.ENOENT:
                        raise
                continue
            want = dict(ns.dentries[dir_ino])
            inodes = {n: ns.inodes[i] for n, i in want.items()}
            if dir_ino == ROOT_INO:
                inodes["."] = ns.inodes[ROOT_INO]
            known = self._written.get(dir_ino)
            if known is None:  # first write since load: compare with what the osd holds
                have = await self._omap(name)
                changed = {k: v for k, v in ((k, _pack(i.to_wire())) for k, i in
                                             inodes.items()) if have.get(k) != v}
                stale = [k for k in have if k not in inodes]
            else:
                changed = {k: _pack(i.to_wire()) for k, i in inodes.items()
                           if known.get(k) != _key(i)}
                stale = [k for k in known if k not in inodes]
            if stale:
                await self.osd.omap_rm(self.pool, name, stale, min_epoch=self.min_epoch)
            if changed:
                await self.osd.omap_set(self.pool, name, changed, min_epoch=self.min_epoch)
            self._written[dir_ino] = {k: _key(i) for k, i in inodes.items()}

    async def write_sessionmap(self, before: dict[str, dict]) -> None:
        name, now = sessionmap_object(self.rank), self.flushed_sessions
        gone = [c for c in before if c not in now]
        if gone:
            await self.osd.omap_rm(self.pool, name, gone, min_epoch=self.min_epoch)
        changed = {c: _pack(d) for c, d in now.items() if before.get(c) != d}
        if changed:
            await self.osd.omap_set(self.pool, name, changed, min_epoch=self.min_epoch)

    async def trim(self, everything: bool = False) -> int:
        """Expire the oldest segments (all but the current one if `everything`), one trim
        at a time: two at once would write the same segments back twice and expire more
        than either wrote (a flush's trim and an export's flush_all)."""
        async with self._trimming:
            return await self._trim(everything)

    async def _trim(self, everything: bool) -> int:
        old = self.segments.segments[:-1] if everything else self.segments.expirable()
        if not old:
            return 0
        dirty: set[int] = set()
        sessions_before = {c: _deep(d) for c, d in self.flushed_sessions.items()}
        for seg in old:
            dirty |= seg.dirty
            for ev in seg.updates:
                applier.write_back(self.flushed, self.flushed_sessions, ev)
        await self.write_dirs(self.flushed, dirty)
        if self.flushed_sessions != sessions_before:
            await self.write_sessionmap(sessions_before)
        self.header.expire_pos = self.segments.expire(old)
        first_live = 1 + self.header.expire_pos // j.OBJECT_SIZE
        for objno in range(1 + self.header.trimmed_pos // j.OBJECT_SIZE, first_live):
            await self.osd.remove(self.pool, j.data_object(self.rank, objno),
                                  min_epoch=self.min_epoch)
        self.header.trimmed_pos = (first_live - 1) * j.OBJECT_SIZE
        await self.write_header()
        log.info("trimmed journal", segments=len(old), expire_pos=self.header.expire_pos)
        return len(old)


class _Fetch:
    """One piece of the journal stream being read from the osd (a task of the read-ahead);
    `get` waits for it and raises what the read raised."""

    def __init__(self, store: RankStore, nursery, pos: int) -> None:
        self.store, self.pos = store, pos
        self.done = trio.Event()
        self.data, self.error = b"", None
        nursery.start_soon(self._run)

    async def _run(self) -> None:
        objno, off = 1 + self.pos // j.OBJECT_SIZE, self.pos % j.OBJECT_SIZE
        length = READ_AHEAD - self.pos % READ_AHEAD  # pieces never straddle objects
        try:
            self.data = await self.store.read_piece(j.data_object(self.store.rank, objno),
                                                     off, length)
        except Exception as e:  # noqa: BLE001 - handed to the reader, not the nursery
            self.error = e
        self.done.set()

    async def get(self) -> bytes:
        await self.done.wait()
        if self.error is not None:
            raise self.error
        return self.data


def damaged_path(ns: Namespace, damaged: dict[int, str], op: str, args: dict) -> str | None:
    """The path of a request that goes through a damaged directory, if one does: its
    requests fail with EIO (as Ceph's do under a damaged dirfrag)."""
    for key in ("path", "src", "dst"):
        path = args.get(key)
        if not isinstance(path, str):
            continue
        parts = [p for p in path.split("/") if p]
        ino: int | None = ROOT_INO
        for name in [None, *(parts if op == "readdir" else parts[:-1])]:
            if name is not None:
                ino = ns.dentries.get(ino, {}).get(name)
                if ino is None:
                    break
            if ino in damaged:
                return path
    return None
