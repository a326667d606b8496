"""Subscriptions as Ceph's MDSMonitor::check_sub serves them, each map encoded once, and the
bounded, coalescing send queue of a connection."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest

from common.fsmap import FS_CLUSTER_ID_NONE, FSMapError
from common.outqueue import OutQueue
from mon.subscriptions import BadSubscription, Frames, Subs
from tests.unit.monsim import healthy


def _decode(frame: bytes) -> dict:
    return msgpack.unpackb(frame[4:], raw=False)


def _maps(subs: Subs, c, frames: Frames | None = None) -> list[dict]:
    return [_decode(f) for _, f in subs.due_maps(c.mon.fsmap, frames or Frames())]


def test_check_sub_an_mds_in_a_file_system_gets_that_file_systems_mdsmap() -> None:
    c = healthy("a", "b")
    holder = c.daemons[c.holder()]
    subs = Subs(f"mds.{c.holder()}", holder.gid)
    subs.add("mdsmap")
    [msg] = _maps(subs, c)
    fs = c.mon.fsmap.filesystems[1]
    assert msg["type"] == "mdsmap" and msg["mdsmap"]["fscid"] == 1
    assert msg["mdsmap"]["epoch"] == fs.epoch
    assert [i["gid"] for i in msg["mdsmap"]["mds_info"]] == [holder.gid]
    assert _maps(subs, c) == []  # nothing new until the file system changes


def test_a_subscribe_again_asks_for_the_current_map_once_more() -> None:
    """A renewal (an MDS whose first map was lost on a session that stayed up) is sent the
    current map though the session was sent it already; then only new epochs again."""
    c = healthy("a", "b")
    subs = Subs("mds.a", c.daemons["a"].gid)
    subs.add("fsmap")
    [first] = _maps(subs, c)
    assert _maps(subs, c) == []
    subs.add("fsmap")
    assert _maps(subs, c) == [first]
    assert _maps(subs, c) == []


def test_check_sub_a_standby_gets_a_map_of_itself_at_its_standby_epoch() -> None:
    c = healthy("a", "b")
    spare = c.standbys()[0]
    gid = c.daemons[spare].gid
    subs = Subs(f"mds.{spare}", gid)
    subs.add("mdsmap")
    [msg] = _maps(subs, c)
    assert msg["mdsmap"]["epoch"] == c.mon.fsmap.standby_epochs[gid]
    assert msg["mdsmap"]["fscid"] == FS_CLUSTER_ID_NONE and msg["mdsmap"]["enabled"] is False
    assert [i["name"] for i in msg["mdsmap"]["mds_info"]] == [spare]
    c.add("c")  # another daemon boots: a new FSMap epoch, nothing for this standby
    c.until(lambda: "c" in c.standbys())
    assert c.mon.fsmap.epoch > msg["mdsmap"]["epoch"] and _maps(subs, c) == []


def test_check_sub_an_mds_not_in_the_map_gets_an_empty_map_at_the_fsmap_epoch() -> None:
    c = healthy("a")
    subs = Subs("mds.ghost", 99999)
    subs.add("mdsmap")
    [msg] = _maps(subs, c)
    assert msg["mdsmap"]["epoch"] == c.mon.fsmap.epoch and msg["mdsmap"]["mds_info"] == []


def test_check_sub_a_client_names_its_file_system_or_gets_the_legacy_one() -> None:
    c = healthy("a")
    named, legacy, missing = (Subs("client.admin", 5000) for _ in range(3))
    named.add("mdsmap.1")
    legacy.add("mdsmap")
    missing.add("mdsmap.7")
    assert _maps(named, c)[0]["mdsmap"]["fs_name"] == "cephfs"
    assert _maps(legacy, c)[0]["mdsmap"]["fscid"] == c.mon.fsmap.legacy_client_fscid
    assert _maps(missing, c) == []  # Ceph sends nothing for a file system that does not exist
    with pytest.raises(BadSubscription, match="mdsmap.<fscid>"):
        Subs("client.admin", 5000).add("mdsmap.x")
    with pytest.raises(BadSubscription, match="cannot subscribe"):
        Subs("client.admin", 5000).add("monmap")


def test_each_epoch_is_encoded_once_for_all_its_subscribers() -> None:
    c = healthy("a", "b")
    frames = Frames()
    sessions = [Subs(f"client.{i}", 5000 + i) for i in range(50)]
    for s in sessions:
        s.add("fsmap")
        s.add("mdsmap.1")
    sent = [s.due_maps(c.mon.fsmap, frames) for s in sessions]
    assert frames.encoded == 2  # one FSMap, one MDSMap, whatever the number of subscribers
    assert all(out[0][1] is sent[0][0][1] and out[1][1] is sent[0][1][1] for out in sent)
    assert _decode(sent[0][0][1])["fsmap"]["epoch"] == c.mon.fsmap.epoch


def test_a_queued_map_is_replaced_by_a_newer_one_and_other_messages_keep_order() -> None:
    q = OutQueue(max_items=3)
    assert q.put(b"fsmap-1", "fsmap") and q.put(b"ack-1") and q.put(b"fsmap-2", "fsmap")
    assert len(q) == 2 and q.nbytes == len(b"fsmap-2") + len(b"ack-1")
    assert q.pop() == b"fsmap-2" and q.put(b"fsmap-3", "fsmap")  # sent: a new one queues
    assert [q.pop(), q.pop(), q.pop()] == [b"ack-1", b"fsmap-3", None]


def test_the_send_queue_is_bounded_but_maps_always_coalesce() -> None:
    q = OutQueue(max_items=2)
    assert q.put(b"a") and q.put(b"m1", "osdmap")
    assert not q.put(b"b")  # full: the owner disconnects the peer
    assert q.put(b"m2", "osdmap") and len(q) == 2  # a newer map replaces the waiting one


def _mutables(obj, path="map"):
    """(path, object) of every list, dict, set and dataclass reachable from obj."""
    if dataclasses.is_dataclass(obj):
        yield path, obj
        for f in dataclasses.fields(obj):
            yield from _mutables(getattr(obj, f.name), f"{path}.{f.name}")
    elif isinstance(obj, dict):
        yield path, obj
        for k, v in obj.items():
            yield from _mutables(v, f"{path}[{k}]")
    elif isinstance(obj, list | set):
        yield path, obj
        for i, v in enumerate(obj):
            yield from _mutables(v, f"{path}[{i}]")


def test_a_map_copy_is_equal_and_shares_nothing_mutable() -> None:
    """The hand-made FSMap.copy (deepcopy was most of a proposal's time at scale)."""
    c = healthy("a", "b", "c", max_mds=2, standby_replay=True)
    c.cmd("osd", "blocklist", "add", "10.0.0.1:0/1")
    original = c.mon.fsmap
    copied = original.copy()
    assert copied == original and copied.to_wire() == original.to_wire()
    theirs = {id(o) for _, o in _mutables(original)}
    assert [p for p, o in _mutables(copied) if id(o) in theirs] == []


def test_sanity_still_names_a_bad_standby() -> None:
    """The standby checks build their message only on failure (sanity runs at every commit)."""
    c = healthy("a", "b")
    bad = c.mon.fsmap.copy()
    gid = c.daemons[c.standbys()[0]].gid
    bad.standby_daemons[gid].rank = 3
    with pytest.raises(FSMapError, match=f"standby {gid} has rank 3"):
        bad.sanity()
    bad.standby_daemons[gid].rank = -1
    bad.mds_roles[gid] = 1
    with pytest.raises(FSMapError, match=f"standby {gid} role"):
        bad.sanity()
