"""The NFSv4.1 state of a gateway, sans-IO (nfs/state.py), against NFS-Ganesha's rules: client
ids and leases, OPEN CLAIM_NULL/CLAIM_PREVIOUS and LOCK/LOCKU in and out of a grace period,
RECLAIM_COMPLETE and the early lift, byte-range conflicts with NFS4ERR_DENIED."""

from __future__ import annotations

import pytest

from nfs.nfs4 import STATUS, TO_EOF, NFS4Error
from nfs.state import NFSState


def err(fn, *args, **kwargs) -> str:
    with pytest.raises(NFS4Error) as e:
        fn(*args, **kwargs)
    assert e.value.status == STATUS[e.value.name]
    return e.value.name


def session(s: NFSState, owner: str, now: float = 0.0, verifier: str = "v1"):
    cid = s.exchange_id(owner, verifier, now)
    return s.sequence(s.create_session(cid, now), now)


def test_status_numbers_are_rfc5661s():
    assert STATUS["NFS4ERR_GRACE"] == 10013 and STATUS["NFS4ERR_NO_GRACE"] == 10033
    assert STATUS["NFS4ERR_DENIED"] == 10010 and STATUS["NFS4ERR_EXPIRED"] == 10011
    assert STATUS["NFS4ERR_STALE_CLIENTID"] == 10022 and STATUS["NFS4ERR_BADSESSION"] == 10052


def test_new_state_needs_reclaim_complete_and_no_grace():
    s = NFSState(lease=60)
    c = session(s, "client-1")
    assert err(s.open, c, "/f", "null") == "NFS4ERR_GRACE"  # v4.1: RECLAIM_COMPLETE first
    s.reclaim_complete(c)
    assert err(s.reclaim_complete, c) == "NFS4ERR_COMPLETE_ALREADY"
    o = s.open(c, "/f", "null")
    assert s.open(c, "/f", "null").stateid == o.stateid
    lk = s.lock(c, o.stateid, "write", 0, 10)
    assert (lk.offset, lk.length) == (0, 10)
    assert err(s.open, c, "/g", "previous") == "NFS4ERR_NO_GRACE"  # no grace period
    assert err(s.lock, c, o.stateid, "read", 0, 1, reclaim=True) == "NFS4ERR_NO_GRACE"
    assert err(s.close, c, o.stateid) == "NFS4ERR_LOCKS_HELD"
    s.locku(c, lk.stateid, 0, TO_EOF)
    s.close(c, o.stateid)
    assert err(s.close, c, o.stateid) == "NFS4ERR_BAD_STATEID"


def test_conflicting_locks_are_denied_with_the_holder():
    s = NFSState(lease=60)
    a, b = session(s, "a"), session(s, "b")
    for c in (a, b):
        s.reclaim_complete(c)
    oa, ob = s.open(a, "/f", "null"), s.open(b, "/f", "null")
    s.lock(a, oa.stateid, "write", 100, 50)
    with pytest.raises(NFS4Error) as e:
        s.lock(b, ob.stateid, "read", 120, 1)
    assert e.value.name == "NFS4ERR_DENIED"
    assert e.value.denied == {"offset": 100, "length": 50, "type": 2, "owner": "a"}
    s.lock(b, ob.stateid, "write", 150, TO_EOF)  # adjacent: no overlap
    s.lock(b, ob.stateid, "read", 0, 100)
    s.lock(a, oa.stateid, "read", 0, 10)  # read locks share
    assert err(s.lock, a, oa.stateid, "write", 0, 0) == "NFS4ERR_INVAL"
    assert err(s.lock, a, oa.stateid, "write", TO_EOF - 1, 5) == "NFS4ERR_INVAL"
    assert err(s.lock, a, oa.stateid, "frob", 0, 1) == "NFS4ERR_INVAL"
    # LOCKU splits a range; the freed part can be taken by the other client
    lk = s.locks_of("/f")[0]
    s.locku(a, lk.stateid, 110, 10)
    assert sorted((x.offset, x.length) for x in s.locks_of("/f") if x.clientid == a.clientid) \
        == [(0, 10), (100, 10), (120, 30)]
    assert err(s.locku, b, lk.stateid, 0, 1) == "NFS4ERR_BAD_STATEID"


def test_grace_period_of_a_restarted_head():
    """Only clients in the old recovery database reclaim, until their RECLAIM_COMPLETE; new
    state is NFS4ERR_GRACE; the grace period can end early once they all completed."""
    s = NFSState(lease=60, boot=2)
    s.start_grace(now=0, reclaimable={"a", "b"})
    a, b, new = session(s, "a"), session(s, "b"), session(s, "newcomer")
    oa = s.open(a, "/f", "previous")
    assert oa.reclaimed
    s.lock(a, oa.stateid, "write", 0, 10, reclaim=True)
    assert err(s.open, new, "/g", "previous") == "NFS4ERR_NO_GRACE"
    s.reclaim_complete(new)
    assert err(s.open, new, "/g", "null") == "NFS4ERR_GRACE"
    assert err(s.lock, a, oa.stateid, "write", 20, 1) == "NFS4ERR_GRACE"
    assert not s.grace_over(now=10, grace_period=90)
    s.reclaim_complete(a)
    assert err(s.open, a, "/h", "previous") == "NFS4ERR_NO_GRACE"  # after its RECLAIM_COMPLETE
    assert not s.reclaims_done()  # b has not completed
    assert s.grace_over(now=90, grace_period=90)  # ... but the time is up
    s.reclaim_complete(b)
    assert s.grace_over(now=11, grace_period=90)  # everyone completed: lift early
    s.end_grace()
    assert s.open(new, "/g", "null") and err(s.open, b, "/x", "previous") == "NFS4ERR_NO_GRACE"


def test_with_nlm_enabled_the_grace_period_runs_its_full_time():
    """nfs_try_lift_grace: the early lift needs Enable_NLM = false (NLM clients never send
    RECLAIM_COMPLETE); with it, only Grace_Period ends a head's need for grace."""
    s = NFSState(lease=60, boot=2)
    s.start_grace(now=0, reclaimable={"a"})
    a = session(s, "a")
    s.reclaim_complete(a)
    assert s.reclaims_done() and s.grace_over(now=1, grace_period=90)
    assert not s.grace_over(now=1, grace_period=90, early=False)
    assert s.grace_over(now=90, grace_period=90, early=False)


def test_a_survivor_enforcing_allows_no_reclaim():
    s = NFSState(lease=60)
    c = session(s, "a")
    s.reclaim_complete(c)
    o = s.open(c, "/f", "null")
    s.start_grace(now=5, reclaimable=None)  # another head's grace period
    assert err(s.lock, c, o.stateid, "write", 0, 1) == "NFS4ERR_GRACE"
    assert err(s.open, c, "/g", "previous") == "NFS4ERR_NO_GRACE"
    # it needs no reclaims itself (its lift clears no N), yet it enforces until the cluster's
    # grace period is over (R=0 in the grace database): the shell calls end_grace then
    assert s.grace_over(now=6, grace_period=90) and s.in_grace
    s.end_grace()
    assert s.lock(c, o.stateid, "write", 0, 1)


def test_leases_client_ids_and_sessions():
    s = NFSState(lease=10, boot=3)
    cid = s.exchange_id("a", "v1", 0)
    assert s.exchange_id("a", "v1", 1) == cid
    sid = s.create_session(cid, 1)
    c = s.sequence(sid, 5)
    s.reclaim_complete(c)
    s.lock(c, s.open(c, "/f", "null").stateid, "write", 0, 1)
    assert s.expire(now=14) == []  # renewed at 5
    assert [x.owner for x in s.expire(now=16)] == ["a"]
    assert s.locks_of("/f") == [] and s.opens == {}
    assert err(s.sequence, sid, 16) == "NFS4ERR_BADSESSION"
    assert err(s.create_session, cid, 16) == "NFS4ERR_EXPIRED"
    assert err(s.create_session, (2 << 32) | 1, 16) == "NFS4ERR_STALE_CLIENTID"
    # a rebooted client (new verifier) gets a new client id; its old state goes
    cid = s.exchange_id("b", "v1", 20)
    c = s.sequence(s.create_session(cid, 20), 20)
    s.reclaim_complete(c)
    s.open(c, "/f", "null")
    cid2 = s.exchange_id("b", "v2", 21)
    assert cid2 != cid and s.opens == {} and s.confirmed() == ["b"]
    s.destroy_session(s.create_session(cid2, 21))
    assert err(s.destroy_session, 999) == "NFS4ERR_BADSESSION"


def test_check_lock_checks_without_recording_so_cephfs_can_refuse_first():
    s = NFSState(lease=60)
    c = session(s, "client-1")
    s.reclaim_complete(c)
    o = s.open(c, "/f", "null")
    assert s.check_lock(c, o.stateid, "write", 0, 10) is o
    assert s.locks == []  # nothing recorded until the lock is taken in CephFS too
    assert err(s.check_lock, c, o.stateid, "write", 0, 0) == "NFS4ERR_INVAL"
    s.lock(c, o.stateid, "write", 0, 10)
    d = session(s, "client-2")
    s.reclaim_complete(d)
    od = s.open(d, "/f", "null")
    assert err(s.check_lock, d, od.stateid, "read", 5, 1) == "NFS4ERR_DENIED"


def test_a_gone_clients_locks_are_released_for_the_shell():
    s = NFSState(lease=10)
    c = session(s, "client-1")
    s.reclaim_complete(c)
    for path in ("/f", "/g"):
        o = s.open(c, path, "null")
        s.lock(c, o.stateid, "write", 0, TO_EOF)
    s.expire(11.0)
    assert s.released == [(c.clientid, "/f"), (c.clientid, "/g")]
    c2 = session(s, "client-2")
    s.exchange_id("client-2", "v2", 0.0)  # a rebooted client: nothing locked, nothing to do
    assert [r for r in s.released if r[0] == c2.clientid] == []
