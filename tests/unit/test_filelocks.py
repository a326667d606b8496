"""The MDS's file lock table (mds.filelocks), the byte-range helper and the session rules an
NFS head relies on (C2, C5 with a client's own "timeout"), with plain numbers."""

from __future__ import annotations

import pytest

from common import lockranges as lr
from mds import applier, filelocks
from mds.events import EFLOCK, ESESSION
from mds.filelocks import FileLock
from mds.sessionmap import SessionMap


def _table(*clients: str) -> dict[str, dict]:
    table: dict[str, dict] = {}
    for c in clients:
        applier.apply_session(table, {"t": ESESSION, "client": c, "open": True,
                                      "addr": f"127.0.0.1:0/{c[-1]}", "metadata": {}})
    return table


def _set(table: dict, client: str, lock: FileLock) -> None:
    assert filelocks.conflict(table, client, lock) is None
    applier.write_back(None, table, filelocks.set_event(client, lock))


def test_ranges_cut_and_overlap_with_to_eof():
    assert lr.end_of(10, 0) is None and lr.end_of(10, 5) == 15
    assert lr.overlaps(0, None, 100, 101) and not lr.overlaps(0, 10, 10, None)
    assert lr.cut(0, 100, 10, 20) == [(0, 10), (20, 100)]
    assert lr.cut(0, None, 10, 20) == [(0, 10), (20, None)]
    assert lr.cut(0, 100, 0, None) == []
    assert lr.cut(0, 10, 20, 30) == [(0, 10)]
    with pytest.raises(ValueError):
        lr.end_of(-1, 0)


def test_write_locks_of_two_sessions_conflict_reads_share():
    table = _table("client.1", "client.2")
    _set(table, "client.1", FileLock(5, "a", "write", 0, 10))
    hit = filelocks.conflict(table, "client.2", FileLock(5, "b", "read", 5, 6))
    assert hit == ("client.1", FileLock(5, "a", "write", 0, 10))
    assert filelocks.conflict(table, "client.2", FileLock(5, "b", "write", 10, None)) is None
    assert filelocks.conflict(table, "client.2", FileLock(6, "b", "write", 0, None)) is None
    _set(table, "client.2", FileLock(7, "b", "read", 0, None))
    assert filelocks.conflict(table, "client.1", FileLock(7, "a", "read", 0, 1)) is None


def test_two_owners_in_one_session_conflict_the_same_owner_replaces_its_own():
    # an NFS head's clients share its one CephFS session: the owner tells them apart
    table = _table("client.1")
    _set(table, "client.1", FileLock(5, "nfs-1", "write", 0, 10))
    assert filelocks.conflict(table, "client.1", FileLock(5, "nfs-2", "read", 0, 1))
    _set(table, "client.1", FileLock(5, "nfs-1", "read", 2, 3))  # a downgrade in the middle
    assert [lk for _, lk in filelocks.held(table)] == [
        FileLock(5, "nfs-1", "write", 0, 2), FileLock(5, "nfs-1", "read", 2, 3),
        FileLock(5, "nfs-1", "write", 3, 10)]


def test_unlock_splits_and_the_last_unlock_leaves_no_locks_key():
    table = _table("client.1")
    _set(table, "client.1", FileLock(5, "a", "write", 0, None))
    applier.write_back(None, table, filelocks.unlock_event("client.1",
                                                           FileLock(5, "a", "write", 10, 20)))
    assert [(lk.start, lk.end) for _, lk in filelocks.held(table)] == [(0, 10), (20, None)]
    applier.write_back(None, table, filelocks.unlock_event("client.1",
                                                           FileLock(5, "a", "write", 0, None)))
    assert "locks" not in table["client.1"] and filelocks.holders(table) == set()


def test_a_session_that_ends_takes_its_locks_a_reopen_keeps_them():
    table = _table("client.1", "client.2")
    _set(table, "client.1", FileLock(5, "a", "write", 0, None))
    applier.apply_session(table, {"t": ESESSION, "client": "client.1", "open": True,
                                  "addr": "127.0.0.1:0/1", "metadata": {"uuid": "x"}})
    assert filelocks.holders(table) == {"client.1"}
    applier.apply_session(table, {"t": ESESSION, "client": "client.1", "open": False})
    assert filelocks.conflict(table, "client.2", FileLock(5, "b", "write", 0, None)) is None
    # a lock event of a session that has gone is dropped
    applier.write_back(None, table, filelocks.set_event("client.1",
                                                        FileLock(5, "a", "write", 0, 1)))
    assert filelocks.holders(table) == set()


def test_replay_of_the_journal_rebuilds_the_table():
    # the active applies each event as it journals it; a new holder replays the same events
    events = [{"t": ESESSION, "client": "client.1", "open": True, "addr": "a", "metadata": {}},
              filelocks.set_event("client.1", FileLock(5, "a", "write", 0, 100)),
              filelocks.unlock_event("client.1", FileLock(5, "a", "write", 50, None))]
    replayed: dict[str, dict] = {}
    for ev in events:
        applier.apply(None, ev, replayed)
    assert events[1]["t"] == EFLOCK
    assert filelocks.held(replayed) == [("client.1", FileLock(5, "a", "write", 0, 50))]


def test_reconnect_reinstalls_what_the_table_lacks_and_reports_conflicts():
    table = _table("client.1", "client.2")
    _set(table, "client.1", FileLock(5, "a", "write", 0, 10))
    _set(table, "client.2", FileLock(6, "b", "write", 0, 10))
    sent = [FileLock(5, "a", "write", 0, 10), FileLock(7, "a", "read", 0, None),
            FileLock(6, "a", "write", 5, 6)]
    events, lost = filelocks.reinstall(table, "client.1", sent)
    assert [ev["lock"]["ino"] for ev in events] == [7]
    assert lost == [FileLock(6, "a", "write", 5, 6)]
    for ev in events:
        applier.apply(None, ev, table)
    assert len(filelocks.held(table, "client.1")) == 2


def test_wire_form_uses_fcntl_lengths():
    lk = FileLock(5, "a", "read", 7, None)
    assert lk.to_wire() == {"ino": 5, "owner": "a", "type": "read", "start": 7, "length": 0}
    assert FileLock.from_wire(lk.to_wire()) == lk
    with pytest.raises(ValueError):
        FileLock.from_wire({"ino": 5, "owner": "a", "type": "exclusive", "start": 0,
                            "length": 0})


def _smap(*clients: str) -> SessionMap:
    smap = SessionMap()
    for i, c in enumerate(clients):
        smap.add(c, f"127.0.0.1:0/{i + 1}", {}, 0.0)
    smap.last_cleared_laggy = -1000.0
    return smap


def test_C5_a_lock_holder_with_its_own_timeout_is_evicted_after_it_despite_defer_stale():
    # Ganesha asks 300 s; mds_defer_session_stale defers only a session nobody waits on
    smap = _smap("client.1", "client.2")
    smap.get("client.1").metadata["timeout"] = "300"
    assert smap.idle(299.0, 60, 1000, defer_stale=True, busy={"client.1"}) == ([], [])
    _, evicts = smap.idle(300.0, 60, 1000, defer_stale=True, busy={"client.1"})
    assert [e.session.client for e in evicts] == ["client.1"]
    assert evicts[0].message == "evicting unresponsive client 1, after 300 seconds"


def test_C2_a_missed_reconnect_keeps_a_session_with_its_own_timeout():
    smap = _smap("client.1", "client.2")
    smap.get("client.1").metadata["timeout"] = "300"
    smap.start_reconnect(10.0, set())
    verdict, evicts = smap.reconnect_tick(60.0, 45.0)
    assert verdict == "evict" and [e.session.client for e in evicts] == ["client.2"]
    assert smap.get("client.1") is not None and smap.get("client.1").last_renew == 60.0
    assert smap.gather == {"client.2"}  # the evicted one leaves it as the daemon removes it
