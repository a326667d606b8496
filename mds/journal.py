"""The MDS journal's format and bookkeeping, sans-IO (ref J1–J4, J7).

A rank's journal is a byte stream striped over objects of the metadata pool named
`<0x200 + rank hex>.<objno %08x>`: object 0 is the header, the data starts in object 1 (J1).
The stream is a sequence of records, each `length (u32) | crc32 (u32) | msgpack event`, so a
torn tail is recognised (incomplete record: the writer died mid-append) and a damaged one is
reported (checksum mismatch), never replayed. Events are grouped in segments of
`mds_log_events_per_segment`; each segment opens with an ESubtreeMap ("major") event, and the
oldest segments expire once there are more than `mds_log_max_segments` (J3).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import msgpack

from mds.events import (  # noqa: F401 - the event types, named here for the journal's users
    ECOMMITTED,
    EEXPORT,
    EIMPORT,
    EPEERUPDATE,
    ESEGMENT,
    ESESSION,
    ESUBTREEMAP,
    EUPDATE,
    SEGMENT_OPENERS,
    WRITE_BACK,
    result_of,
)

MAGIC = "mdsemu journal v1"
RECORD = struct.Struct(">II")
MAX_EVENT = 16 * 1024 * 1024
OBJECT_SIZE = 4 * 1024 * 1024  # bytes of stream per data object


class JournalDamaged(Exception):
    """The journal cannot be read: the rank is damaged (F5)."""


def header_object(rank: int) -> str:
    return f"{0x200 + rank:x}.{0:08x}"


def data_object(rank: int, objno: int) -> str:
    return f"{0x200 + rank:x}.{objno:08x}"


def object_span(pos: int, length: int) -> list[tuple[int, int, int]]:
    """Split stream bytes [pos, pos+length) into (objno, offset in object, length) pieces."""
    out = []
    while length > 0:
        objno, off = 1 + pos // OBJECT_SIZE, pos % OBJECT_SIZE
        n = min(length, OBJECT_SIZE - off)
        out.append((objno, off, n))
        pos += n
        length -= n
    return out


def encode_event(ev: dict) -> bytes:
    body = msgpack.packb(ev, use_bin_type=True)
    return RECORD.pack(len(body), zlib.crc32(body)) + body


def decode_events(buf: bytes, pos: int) -> tuple[list[tuple[int, dict]], int]:
    """Decode whole records from `buf`, which starts at stream position `pos`.

    Returns [(position, event)] and the position just after the last whole record; an
    incomplete record at the end is left for later. Raises JournalDamaged on corruption.
    """
    events = []
    off = 0
    view = memoryview(buf)  # slices without copies
    size, unpack_from, crc32, unpackb = len(buf), RECORD.unpack_from, zlib.crc32, msgpack.unpackb
    while size - off >= RECORD.size:
        length, crc = unpack_from(buf, off)
        if length > MAX_EVENT:
            raise JournalDamaged(f"record at {pos + off} claims {length} bytes")
        if size - off - RECORD.size < length:
            break
        body = view[off + RECORD.size : off + RECORD.size + length]
        if crc32(body) != crc:
            raise JournalDamaged(f"checksum mismatch in journal event at {pos + off}")
        try:
            ev = unpackb(body, raw=False, strict_map_key=False)
        except Exception as e:
            raise JournalDamaged(f"undecodable journal event at {pos + off}: {e}") from None
        if not isinstance(ev, dict) or "t" not in ev:
            raise JournalDamaged(f"journal event at {pos + off} has no type")
        events.append((pos + off, ev))
        off += RECORD.size + length
    return events, pos + off


@dataclass
class Header:
    """J2. Readers replay [expire_pos, write_pos); trimmed_pos is where data was removed."""

    write_pos: int = 0
    expire_pos: int = 0
    trimmed_pos: int = 0
    magic: str = MAGIC
    stream_format: int = 1

    def encode(self) -> bytes:
        return encode_event({"t": "header", **self.__dict__})

    @classmethod
    def decode(cls, data: bytes) -> Header:
        events, _ = decode_events(data, 0)
        if len(events) != 1 or events[0][1].get("magic") != MAGIC:
            raise JournalDamaged("bad journal header")
        d = events[0][1]
        return cls(d["write_pos"], d["expire_pos"], d["trimmed_pos"], d["magic"],
                   d.get("stream_format", 1))


@dataclass
class Segment:
    start: int  # stream position of its first event
    events: int = 0
    dirty: set[int] = field(default_factory=set)  # directory inodes it changed
    updates: list[dict] = field(default_factory=list)  # its EUpdates/ESessions, for write-back


class SegmentLog:
    """Which segments exist and what they dirtied; decides when to open and expire them."""

    def __init__(self, events_per_segment: int, max_segments: int) -> None:
        self.events_per_segment = events_per_segment
        self.max_segments = max_segments
        self.segments: list[Segment] = []

    def needs_new_segment(self) -> bool:
        return not self.segments or self.segments[-1].events >= self.events_per_segment

    def note(self, pos: int, ev: dict, dirty: set[int] | tuple = ()) -> None:
        """Record an event written (or replayed) at `pos`."""
        if ev.get("t") in SEGMENT_OPENERS or not self.segments:
            self.segments.append(Segment(pos))
        seg = self.segments[-1]
        seg.events += 1
        seg.dirty.update(dirty)
        if ev.get("t") in WRITE_BACK:
            seg.updates.append(ev)

    def expirable(self) -> list[Segment]:
        """The oldest segments beyond the limit (never the one being written)."""
        extra = len(self.segments) - self.max_segments
        return self.segments[: max(0, min(extra, len(self.segments) - 1))]

    def expire(self, upto: list[Segment]) -> int:
        """Drop those segments; return the new expire_pos."""
        del self.segments[: len(upto)]
        return self.segments[0].start

    def behind_on_trimming(self, warn_factor: float) -> bool:
        return len(self.segments) > self.max_segments * warn_factor
