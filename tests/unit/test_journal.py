"""Journal format (J1, J2, J7) and segment bookkeeping (J3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mds import journal as j


def test_J1_object_names():
    assert j.header_object(0) == "200.00000000"
    assert j.data_object(1, 3) == "201.00000003"
    assert j.object_span(j.OBJECT_SIZE - 2, 5) == [(1, j.OBJECT_SIZE - 2, 2), (2, 0, 3)]


@given(st.lists(st.dictionaries(st.sampled_from(["a", "b"]), st.integers(-(2**63), 2**63 - 1)), max_size=20),
       st.integers(0, 64))
def test_round_trip_and_torn_tail(evs, cut):
    evs = [{"t": j.EUPDATE, **e} for e in evs]
    buf = b"".join(j.encode_event(e) for e in evs)
    got, end = j.decode_events(buf, 1000)
    assert [e for _, e in got] == evs and end == 1000 + len(buf)
    torn = buf[: max(0, len(buf) - cut)]
    got, end = j.decode_events(torn, 0)
    assert [e for _, e in got] == evs[: len(got)]
    assert end <= len(torn)


def test_corruption_is_damage_never_data():
    buf = bytearray(j.encode_event({"t": j.EUPDATE, "x": 1}))
    buf[-1] ^= 0xFF
    with pytest.raises(j.JournalDamaged, match="checksum"):
        j.decode_events(bytes(buf), 0)


def test_J2_header_round_trip_and_damage():
    h = j.Header(write_pos=10, expire_pos=4, trimmed_pos=2)
    assert j.Header.decode(h.encode()) == h
    with pytest.raises(j.JournalDamaged):
        j.Header.decode(b"\x00\x00\x00\x01\x00\x00\x00\x00x")


def test_J3_segments_expire_oldest_beyond_limit():
    log = j.SegmentLog(events_per_segment=2, max_segments=2)
    pos = 0
    for i in range(10):
        if log.needs_new_segment():
            log.note(pos, {"t": j.ESUBTREEMAP})
            pos += 1
        log.note(pos, {"t": j.EUPDATE}, {i})
        pos += 1
    assert len(log.segments) == 10  # each segment: a subtree map and one update
    assert log.behind_on_trimming(2.0)
    old = log.expirable()
    assert len(old) == 8 and old[0].start == 0
    new_expire = log.expire(old)
    assert new_expire == log.segments[0].start and len(log.segments) == 2
    assert log.expirable() == []


async def test_J3_a_batch_longer_than_a_segment_opens_one_segment_where_the_last_fills():
    """Group commit with lazily flushed events appends batches of many segments' worth: each
    new segment opens with one ESubtreeMap, not one before every event past the first."""
    from mds.mdstore import RankStore

    class OSD:
        def __init__(self):
            self.data = b""

        async def append_at(self, pool, name, offset, data, min_epoch=0):
            self.data += data

    osd = OSD()
    store = RankStore(osd, 1, 0, events_per_segment=4, max_segments=100)
    await store.append([{"t": j.EUPDATE, "op": "setattr", "ino": i} for i in range(10)])
    events = [ev for _, ev in j.decode_events(osd.data, 0)[0]]
    assert [ev["t"] for ev in events].count(j.ESUBTREEMAP) == 4  # O e e e | O e e e | ... | O e
    assert [s.events for s in store.segments.segments] == [4, 4, 4, 2]
