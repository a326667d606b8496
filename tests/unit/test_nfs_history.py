"""The NFS load checker (nfs/history.py) on hand-written histories: conflicting locks, locks
held across a head's restart (reclaimed, reported lost, or neither), new locks in a grace
period (issue 11 item 6)."""

from __future__ import annotations

import pytest

from nfs.history import TO_EOF, HistoryError, render, verify

S = "127.0.0.1:2049"


def mount(client, t, boot=1, server=S):
    return {"ev": "mount", "client": client, "server": server, "boot": boot, "lease": 4,
            "t": t}


def grant(client, t, path="/f", type_="write", boot=1, reclaim=False, offset=0,
          length=TO_EOF, server=S):
    return {"ev": "grant", "client": client, "server": server, "boot": boot, "path": path,
            "type": type_, "offset": offset, "length": length, "reclaim": reclaim,
            "sent": t - 0.01, "t": t}


def release(client, t, path="/f"):
    return {"ev": "release", "client": client, "path": path, "t": t}


def lost(client, t, path="/f", reason="NFS4ERR_NO_GRACE"):
    return {"ev": "lost", "client": client, "path": path, "t": t, "reason": reason}


def grace(client, t, in_grace, boot=1, server=S):
    return {"ev": "grace", "client": client, "server": server, "boot": boot,
            "in_grace": in_grace, "sent": t - 0.01, "t": t}


def test_a_clean_history_passes():
    v = verify([mount("c1", 0), mount("c2", 0), grant("c1", 1), release("c1", 2),
                grant("c2", 2.1), release("c2", 3),
                grant("c1", 3.5, type_="read"), grant("c2", 3.6, type_="read"),
                release("c1", 4), release("c2", 4)])
    assert v.ok and v.grants == 4 and v.clients == 2
    assert render(v, "h").endswith("no new lock in a grace period")


def test_overlapping_write_locks_of_two_clients_are_a_conflict():
    v = verify([grant("c1", 1), grant("c2", 1.5), release("c1", 2), release("c2", 3)])
    assert not v.ok and len(v.conflicts) == 1
    assert v.conflicts[0].startswith("/f: c1 write [0, EOF)")
    assert "FAILED: 1 conflicts" in render(v, "h")


def test_disjoint_ranges_other_files_and_the_same_client_do_not_conflict():
    v = verify([grant("c1", 1, offset=0, length=10), grant("c2", 1.1, offset=10, length=10),
                grant("c3", 1.2, path="/g"), grant("c1", 1.3, path="/g2"),
                grant("c1", 1.4, offset=5, length=2, path="/g2")])
    assert v.ok, v.conflicts


def test_a_lock_held_across_a_restart_must_be_reclaimed_or_reported_lost():
    reclaimed = [mount("c1", 0), grant("c1", 1), mount("c1", 5, boot=2),
                 grant("c1", 5.2, boot=2, reclaim=True), release("c1", 6)]
    v = verify(reclaimed)
    assert v.ok and (v.reclaims, v.restarts) == (1, 1)
    told = [mount("c1", 0), grant("c1", 1), mount("c1", 5, boot=2), lost("c1", 5.2)]
    assert verify(told).ok and verify(told).lost == 1
    silent = [mount("c1", 0), grant("c1", 1), mount("c1", 5, boot=2), release("c1", 6)]
    v = verify(silent)
    assert not v.ok and "released it without reclaiming" in v.unresolved[0]
    forgotten = [mount("c1", 0), grant("c1", 1), mount("c1", 5, boot=2)]
    assert "neither reclaimed nor reported lost" in verify(forgotten).unresolved[0]


def test_graceless_restart_lets_another_client_in_before_the_holder_learns():
    """The run that Graceless = true produces: c2 is granted c1's lock by the restarted head
    before c1 comes back and hears that its lock is lost."""
    v = verify([mount("c1", 0), mount("c2", 0), grant("c1", 1), mount("c2", 5.6, boot=2),
                grant("c2", 5.7, boot=2), mount("c1", 6.5, boot=2), lost("c1", 6.6),
                release("c2", 8)])
    assert not v.ok and len(v.conflicts) == 1 and not v.unresolved
    # with a grace period c2 waits: c1 reclaims first and then releases
    v = verify([mount("c1", 0), mount("c2", 0), grant("c1", 1), mount("c2", 5.6, boot=2),
                grace("c2", 5.7, True, boot=2), mount("c1", 6.5, boot=2),
                grant("c1", 6.6, boot=2, reclaim=True), release("c1", 7),
                grace("c2", 7.5, False, boot=2), grant("c2", 7.6, boot=2), release("c2", 8)])
    assert v.ok, render(v, "h")


def test_a_new_lock_between_two_in_grace_observations_is_granted_in_grace():
    v = verify([grace("c2", 1, True), grant("c1", 2), grace("c2", 3, True)])
    assert len(v.grace) == 1 and "in a grace period" in v.grace[0]
    # an observation out of grace between them, another incarnation, or a reclaim: fine
    assert verify([grace("c2", 1, True), grace("c3", 1.5, False), grant("c1", 2),
                   grace("c2", 3, True)]).ok
    assert verify([grace("c2", 1, True), grant("c1", 2, boot=2), grace("c2", 3, True)]).ok
    assert verify([grace("c2", 1, True), grant("c1", 2, reclaim=True),
                   grace("c2", 3, True)]).unresolved  # a reclaim of nothing held


def test_a_bad_event_is_refused():
    with pytest.raises(HistoryError, match="lacks path"):
        verify([{"ev": "grant", "client": "c1", "t": 1, "server": S, "boot": 1}])
    with pytest.raises(HistoryError, match="not an object"):
        verify([[1]])
    with pytest.raises(HistoryError, match="t is not a number"):
        verify([{"ev": "lost", "client": "c1", "t": "soon", "path": "/f"}])
