"""The MDS's sans-IO cores: the rank state machine (R1–R6, B7–B9) and beacon lagginess (B4, B5)."""

from __future__ import annotations

from common import states
from common.fsmap import FSMap, MDSInfo, MDSMap
from mds.beacon import BeaconState
from mds.rank import Log, RankStateMachine, RequestState, Respawn, Start
from mon.subscriptions import mdsmap_for, mdsmap_key


def _map(epoch: int) -> FSMap:
    m = FSMap(epoch=epoch)
    m.create_filesystem("cephfs", 1, [2], 0.0)
    return m


def _standby(epoch: int, gid: int = 10) -> FSMap:
    m = _map(epoch)
    m.insert(MDSInfo(gid=gid, name="a"))
    return m


def _holder(epoch: int, state: int, gid: int = 10, ranks: int = 1) -> FSMap:
    m = _standby(epoch, gid)
    fs = m.filesystems[1]
    for r in range(1, ranks):
        fs.in_.add(r)
        fs.failed.add(r)
    fs.in_.add(0)
    fs.failed.add(0)
    m.promote(gid, fs, 0, 0.0)
    fs.mds_info[gid].state = state
    return m


def _mine(fsmap: FSMap, gid: int = 10) -> MDSMap:
    """What daemon `gid`'s `mdsmap` subscription gets of this FSMap (B7, the monitor's
    check_sub): its fs's MDSMap, its standby null map, or an empty one."""
    return mdsmap_for(fsmap, mdsmap_key(fsmap, "mdsmap", "mds.a", gid))


def test_B7_old_maps_are_ignored():
    sm = RankStateMachine(10)
    assert sm.handle_map(_mine(_standby(5))) != []
    assert sm.handle_map(_mine(_standby(5))) == []
    assert sm.handle_map(_mine(_standby(4))) == []


def test_boot_to_standby_then_replay_starts_work():
    sm = RankStateMachine(10)
    acts = sm.handle_map(_mine(_standby(2)))
    assert Log("Monitors have assigned me to become a standby.") in acts
    assert sm.state == states.STANDBY and sm.want_state == states.STANDBY
    acts = sm.handle_map(_mine(_holder(3, states.REPLAY)))
    assert Start(states.REPLAY) in acts
    assert Log("handle_mds_map state change up:standby --> up:replay") in acts
    assert sm.effective_epoch == 3


def test_R3_alone_goes_to_reconnect_else_resolve():
    sm = RankStateMachine(10)
    sm.handle_map(_mine(_standby(2)))
    sm.handle_map(_mine(_holder(3, states.REPLAY)))
    replaying = _mine(_holder(3, states.REPLAY))
    assert RequestState(states.RECONNECT) in sm.step_done(states.REPLAY, replaying)
    sm2 = RankStateMachine(10)
    sm2.handle_map(_mine(_standby(2)))
    two = _holder(3, states.REPLAY, ranks=2)
    sm2.handle_map(_mine(two))
    assert RequestState(states.RESOLVE) in sm2.step_done(states.REPLAY, _mine(two))


def test_R3_resolve_waits_for_every_rank():
    sm = RankStateMachine(10)
    sm.handle_map(_mine(_standby(2)))
    m = _holder(4, states.RESOLVE, ranks=2)  # rank 1 still failed: not resolving
    replaying = _holder(3, states.REPLAY, ranks=2)
    sm.handle_map(_mine(replaying))
    sm.step_done(states.REPLAY, _mine(replaying))
    assert Start(states.RESOLVE) in sm.handle_map(_mine(m))
    # our part done (peers asked); rank 1 failed
    assert sm.step_done(states.RESOLVE, _mine(m)) == []
    m2 = _holder(5, states.RESOLVE, ranks=2)
    fs = m2.filesystems[1]
    m2.insert(MDSInfo(gid=11, name="b"))
    m2.promote(11, fs, 1, 0.0)
    fs.mds_info[11].state = states.RESOLVE
    assert RequestState(states.RECONNECT) in sm.handle_map(_mine(m2))


def test_R3_R4_walk_through_recovery():
    sm = RankStateMachine(10)
    sm.handle_map(_mine(_standby(2)))
    epoch = 3
    for state, nxt in [(states.REPLAY, states.RECONNECT), (states.RECONNECT, states.REJOIN),
                       (states.REJOIN, states.ACTIVE), (states.ACTIVE, None)]:
        m = _holder(epoch, state)
        assert Start(state) in sm.handle_map(_mine(m))
        want = [Log("i am alone, moving to state reconnect")] if state == states.REPLAY else []
        assert sm.step_done(state, _mine(m)) == want + ([RequestState(nxt)] if nxt else [])
        epoch += 1
    sm2 = RankStateMachine(10)
    sm2.handle_map(_mine(_standby(2)))
    m = _holder(3, states.CREATING)
    sm2.handle_map(_mine(m))
    assert sm2.step_done(states.CREATING, _mine(m)) == [RequestState(states.ACTIVE)]


def test_B8_removed_from_map_respawns():
    sm = RankStateMachine(10)
    sm.handle_map(_mine(_standby(2)))
    acts = sm.handle_map(_mine(_map(3)))
    assert len(acts) == 1 and isinstance(acts[0], Respawn)


def test_B9_invalid_transition_respawns():
    sm = RankStateMachine(10)
    sm.handle_map(_mine(_standby(2)))
    sm.handle_map(_mine(_holder(3, states.ACTIVE)))  # standby -> active is not allowed (R2)
    assert sm.state == states.STANDBY  # it respawned instead of acting


def test_R6_follower_promotion_logs_and_replays():
    sm = RankStateMachine(10)
    sm.handle_map(_mine(_standby(2)))
    m = _map(3)
    m.insert(MDSInfo(gid=10, name="a"))
    m.assign_standby_replay(10, m.filesystems[1], 0)
    m.filesystems[1].in_.add(0)
    m.insert(MDSInfo(gid=9, name="z"))
    m.promote(9, m.filesystems[1], 0, 0.0)
    assert Start(states.STANDBY_REPLAY) in sm.handle_map(_mine(m))
    m2 = _map(4)
    m2.insert(MDSInfo(gid=10, name="a"))
    fs = m2.filesystems[1]
    m2.assign_standby_replay(10, fs, 0)
    fs.in_.add(0)
    fs.failed.add(0)
    m2.promote(10, fs, 0, 0.0)
    acts = sm.handle_map(_mine(m2))
    assert Log("Monitor activated us! Deactivating replay loop") in acts
    assert Start(states.REPLAY) in acts


def test_B4_B5_laggy_until_acked_and_cleared():
    b = BeaconState(grace=15)
    assert b.laggy(0.0)  # never acked
    s1 = b.sent(0.0)
    assert not b.acked(s1, 0.1)
    assert not b.laggy(10.0)
    assert b.laggy(15.5)
    s2 = b.sent(16.0)
    assert b.acked(s2, 16.2)  # ends the laggy period
    assert not b.laggy(17.0)
    assert not b.acked(999, 17.0)  # unknown seq is ignored
    assert b.seq_stamp == {}


def test_completed_requests_are_kept_until_the_client_has_the_answer(monkeypatch):
    """Ceph's completed_requests: trimmed by the client's oldest tid without a safe reply,
    dropped with its session, capped per client as a safety net."""
    from mds import sessionmap

    done = sessionmap.CompletedRequests()
    for tid in (1, 2, 3):
        done.add("client.1", tid, {"n": tid})
    done.add("client.2", 1, {"n": 1})
    done.trim("client.1", 3)  # the client waits for nothing older than tid 3
    assert done.get("client.1", 2) is None and done.get("client.1", 3) == {"n": 3}
    done.note_event({"reqid": "client.1:4", "result": {"n": 4}, "oldest": 4})
    assert done.to_wire("client.1") == {"4": {"n": 4}}
    done.forget("client.2")
    assert len(done) == 1
    monkeypatch.setattr(sessionmap, "MAX_COMPLETED_PER_CLIENT", 2)
    for tid in (5, 6, 7):
        done.add("client.1", tid, {})
    assert sorted(done.by_client["client.1"]) == [6, 7]


def test_B7_a_standby_learns_its_rank_from_its_own_entry_in_the_map_of_another_fs():
    """A standby's map holds only itself (O1); assigned a rank of a second file system, it
    gets that file system's MDSMap, its own entry there saying which rank."""
    m = _map(2)
    m.create_filesystem("fs2", 3, [4], 0.0)
    m.insert(MDSInfo(gid=10, name="a"))
    null = _mine(m)
    assert null.fscid == -1 and list(null.mds_info) == [10] and null.epoch == 2
    sm = RankStateMachine(10)
    assert Log("Monitors have assigned me to become a standby.") in sm.handle_map(null)
    assert sm.effective_epoch == 2 and sm.fs_name == ""
    m.epoch = 3
    fs2 = m.filesystems[2]
    m.promote(10, fs2, 0, 0.0)  # rank 0 of fs2 was never in: up:creating
    mine = _mine(m)
    assert mine.fscid == 2 and mine.epoch == 3
    acts = sm.handle_map(mine)
    assert Start(states.CREATING) in acts and sm.rank == 0
    assert sm.fs_name == "fs2" and sm.effective_epoch == 3
    assert sm.step_done(states.CREATING, mine) == [RequestState(states.ACTIVE)]


def test_B8_an_empty_map_after_a_standby_null_map_respawns():
    m = _standby(2)
    sm = RankStateMachine(10)
    sm.handle_map(_mine(m))
    m.epoch = 3
    m.erase(10, 0)  # e.g. `mds fail` of the standby
    gone = _mine(m)
    assert gone.mds_info == {} and gone.epoch == 3
    acts = sm.handle_map(gone)
    assert len(acts) == 1 and isinstance(acts[0], Respawn)


def test_B7_a_map_the_acks_name_but_never_comes_renews_the_subscription() -> None:
    """A thrash run: mds.a respawned during a one-way partition (the monitor dropped its
    subscribe), then its beacons got through. Acked, yet never sent a map, it stayed in
    up:boot; the monitor ignored its boot beacons (M2), removed it as laggy and booted it
    again every 1.26 s, and offered it as a replacement. Once the acks have named an epoch
    it lacks for a grace, it subscribes again; a map that comes, or was held (B5), ends it."""
    b = BeaconState(grace=1.0)
    assert not b.map_missing(0, 0, 0.0)  # a boot beacon's null ack
    assert not b.map_missing(894, 0, 0.1)  # booted: the map is on its way
    assert not b.map_missing(894, 0, 0.9)
    assert b.map_missing(894, 0, 1.1)  # it never came: subscribe again
    assert not b.map_missing(896, 0, 1.5)  # once a grace, not at every ack
    assert b.map_missing(896, 0, 2.2)
    assert not b.map_missing(896, 896, 2.4)  # it came
    assert not b.map_missing(897, 896, 2.5) and not b.map_missing(897, 897, 3.6)
    assert not b.map_missing(900, 896, 3.7)
    assert not b.map_missing(900, 905, 4.8)  # a newer map (or one held while laggy) counts
