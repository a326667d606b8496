"""Beacon handling by the monitor core (ref M2–M7, B4, B8, B10, H8)."""

from __future__ import annotations

from common import states
from common.messages import Beacon
from tests.unit.monsim import Cluster, healthy


def test_M3_unknown_gid_gets_null_map() -> None:
    c = healthy("a", "b")
    epoch = c.mon.fsmap.epoch
    effects = c.mon.handle_beacon(
        Beacon(global_id=9999, name="ghost", state=states.ACTIVE, seq=7, version=3,
               addr="10.9.9.9:6800/1"), c.t, c.wall)
    reply = effects.reply
    assert reply is not None and reply.null_map and reply.seq == 7
    assert c.mon.fsmap.epoch == epoch and not effects.changed


def test_M3_unknown_gid_booting_joins_as_standby() -> None:
    c = Cluster()
    d = c.add("a")
    info = c.info("a")
    assert info.state == states.STANDBY and info.rank == -1 and info.gid == d.gid
    assert c.mon.fsmap.standby_epochs[d.gid] == c.mon.fsmap.epoch
    name, reply = c.replies[0]
    assert name == "a" and reply.state == states.BOOT and not reply.null_map
    assert reply.version == c.mon.fsmap.epoch  # M6 step 2: standby_epochs[gid]


def test_B8_evicted_daemon_respawns_with_new_gid() -> None:
    c = healthy("a", "b")
    old = c.daemons["b"].gid
    assert c.cmd("mds", "fail", "b")[0] == 0
    d = c.daemons["b"]
    assert d.gid != old and d.respawns == 1
    assert c.state("b") == "up:standby"


def test_M2_old_seq_and_second_boot_are_dropped() -> None:
    c = healthy("a", "b")
    d = c.daemons["a"]
    assert c.beacon("a", seq=0) is None  # info.state_seq (1) > seq
    assert c.beacon("a", state=states.BOOT, version=0) is None
    assert c.state("a") == "up:standby" and c.daemons["a"].gid == d.gid


def test_M4_stale_version_ignores_the_request_but_acks() -> None:
    c = healthy("a", "b", "c", standby_replay=True)
    assert c.ranks()[0][0] == "c"
    epoch = c.mon.fsmap.epoch
    eff = c.mon.fsmap.effective_epoch(c.daemons["c"].gid)
    reply = c.beacon("c", state=states.STOPPING, version=eff - 1)
    assert reply.version == eff and not reply.null_map and reply.state == states.STOPPING
    assert c.mon.fsmap.epoch == epoch and c.state("c") == "up:active"
    # The same request with the right version is honoured (and here it is a valid one).
    reply = c.beacon("c", state=states.STOPPING, version=eff)
    assert reply.version == epoch + 1 and not reply.null_map
    assert ("INF", "daemon mds.c finished stopping rank 0 in filesystem cephfs "
            "(now has 0 ranks)") in c.clog


def test_M5_fast_path_proposes_nothing() -> None:
    c = healthy("a", "b")
    epoch = c.mon.fsmap.epoch
    for name in ("a", "b"):
        reply = c.beacon(name)
        assert reply.version == c.mon.fsmap.effective_epoch(c.daemons[name].gid)
    c.advance(60)
    assert c.mon.fsmap.epoch == epoch


def test_M5_join_fs_change_is_proposed() -> None:
    c = healthy("a", "b")
    c.daemons["a"].fs = "cephfs"
    c.advance(4)
    assert c.info("a").join_fscid == c.fs().fscid
    c.daemons["a"].fs = "nosuchfs"
    c.advance(4)
    assert c.info("a").join_fscid == -1


def test_M6_unique_name_fails_old_gid() -> None:
    c = healthy("a", "b")
    old = c.daemons["b"].gid  # b is active (S2: the highest-gid vanilla standby)
    old_addr = c.daemons["b"].addr
    c.kill("b")
    c.restart("b")
    assert not c.mon.fsmap.gid_exists(old)
    assert c.mon.osdmap.is_blocklisted(old_addr)
    # T0: the tick after the boot's commit fills the rank at once, with the new b (S2: it is
    # the highest-gid standby again)
    assert not c.fs().failed and c.holder() == "b"
    assert c.take_clog()[:5] == [
        "daemon mds.b restarted",
        "Health check failed: 1 filesystem is degraded (FS_DEGRADED)",
        "Health check failed: 1 filesystem is offline (MDS_ALL_DOWN)",
        "Standby daemon mds.b assigned to filesystem cephfs as rank 0",
        "Health check cleared: MDS_ALL_DOWN (was: 1 filesystem is offline)"]
    c.until(c.all_active, within=5)


def test_M6_without_unique_names_both_gids_stay() -> None:
    c = healthy("a", "b", mds_enforce_unique_name=False)
    c.kill("b")
    old = c.daemons["b"].gid
    c.restart("b")
    assert c.mon.fsmap.gid_exists(old) and c.mon.fsmap.gid_exists(c.daemons["b"].gid)


def test_M7_invalid_transition_evicts() -> None:
    c = healthy("a", "b")
    holder = c.holder()
    d = c.daemons[holder]
    gid, addr = d.gid, d.addr
    reply = c.beacon(holder, state=states.REPLAY)  # up:active -> up:replay is not allowed
    assert reply.null_map
    assert not c.mon.fsmap.gid_exists(gid) and c.mon.osdmap.is_blocklisted(addr)
    assert not c.fs().failed and c.holder() not in (None, holder)  # T0: replaced at once
    c.until(lambda: c.all_active())


def test_M7_standby_asking_for_a_rank_state_is_evicted() -> None:
    c = healthy("a", "b", "c", standby_replay=True)
    standby = c.standbys()[0]
    gid = c.daemons[standby].gid
    assert c.beacon(standby, state=states.ACTIVE).null_map
    assert not c.mon.fsmap.gid_exists(gid)
    follower = c.follower()
    gid = c.daemons[follower].gid
    assert c.beacon(follower, state=states.REPLAY).null_map  # followers never ask (R5)
    assert not c.mon.fsmap.gid_exists(gid)
    assert not c.mon.osdmap.blocklist  # neither held a rank: no fencing


def test_M7_laggy_daemon_beaconing_again_is_cleared() -> None:
    c = healthy("a", "b")
    c.kill("a")
    c.pause("b")  # T4: nobody gets through, so nobody is removed, only marked laggy
    c.advance(30)
    assert all(i.laggy for i in c.mon.fsmap.all_infos())
    c.resume("b")
    # b holds the map that marked it laggy until its beacon is acked (B5), so that beacon
    # reports an old epoch (M4); its next beacon clears its laggy flag, and the tick after
    # that commit (T0) sees b getting through again (T4), so the dead standby a is dropped
    assert c.info("b").laggy
    c.advance(c.opt("mds_beacon_interval"))
    assert not c.info("b").laggy and c.info("a") is None


def test_M7_first_move_to_active_is_logged() -> None:
    c = Cluster()
    c.add("a")
    c.new_fs()
    c.until(c.all_active)
    assert c.take_clog() == ["daemon mds.a assigned to filesystem cephfs as rank 0",  # fs new
                             "daemon mds.a is now active in filesystem cephfs as rank 0"]
    assert c.state("a") == "up:active"


def test_B10_dne_fails_at_once() -> None:
    c = healthy("a", "b")
    holder, other = c.holder(), c.standbys()[0]
    addr = c.daemons[holder].addr
    reply = c.shutdown(holder)
    assert reply.null_map
    assert c.mon.osdmap.is_blocklisted(addr)
    assert not c.fs().failed and c.holder() == other  # T0: no grace, and no tick to wait for
    took = c.until(lambda: c.ranks() == {0: (other, "up:active")})
    assert took < c.opt("mon_tick_interval")


def test_B10_dne_with_stale_epoch_or_old_seq_fails_at_once() -> None:
    """M7: Ceph's preprocess_beacon handles down:dne before the seq (M2) and epoch (M4) checks,
    so a daemon stopping with an old map or seq is failed now, not after the grace. Ceph logs no
    cluster-log line of its own for it."""
    c = healthy("a", "b", "c")
    holder, standby = c.holder(), c.standbys()[0]
    addr = c.daemons[holder].addr
    stale = c.mon.fsmap.effective_epoch(c.daemons[holder].gid) - 1
    c.kill(holder)  # its last beacon goes out as the process exits
    reply = c.beacon(holder, state=states.DNE, version=stale)
    assert reply is not None and reply.null_map
    assert c.info(holder) is None and c.mon.osdmap.is_blocklisted(addr)
    assert c.info(standby).state_seq > 0
    c.kill(standby)
    reply = c.beacon(standby, state=states.DNE, seq=0)  # below its state_seq
    assert reply is not None and reply.null_map and c.info(standby) is None
    assert not [m for m in c.take_clog() if "shutting down" in m]


def test_B10_dne_of_a_standby_is_not_fenced() -> None:
    c = healthy("a", "b")
    standby = c.standbys()[0]
    c.shutdown(standby)
    assert c.standbys() == [] and not c.mon.osdmap.blocklist


def test_H8_daemon_metrics_raise_and_clear() -> None:
    c = healthy("a", "b")
    holder = c.holder()
    metric = {"type": "MDS_TRIM", "severity": "HEALTH_WARN", "message": "Behind on trimming (300/128)",
              "metadata": {"num_segments": 300, "max_segments": 128}}
    c.daemons[holder].health = [metric]
    c.advance(4)
    check = c.mon.health_checks()["MDS_TRIM"]
    assert check.summary == "1 MDSs behind on trimming"
    assert check.detail == (f"mds.{holder}(mds.0): Behind on trimming (300/128) "
                            "max_segments: 128, num_segments: 300",)
    c.daemons[holder].health = []
    c.advance(4)
    assert "MDS_TRIM" not in c.mon.health_checks()
    assert c.take_clog() == [
        "Health check failed: 1 MDSs behind on trimming (MDS_TRIM)",
        f"MDS health message cleared (mds.{holder}): Behind on trimming (300/128)",
        "Health check cleared: MDS_TRIM (was: 1 MDSs behind on trimming)",
        "Cluster is now healthy"]


def test_beacon_ack_tracks_the_epoch_of_a_standby() -> None:
    c = healthy("a", "b")
    standby = c.standbys()[0]
    reply = c.beacon(standby)
    assert reply.version == c.mon.fsmap.standby_epochs[c.daemons[standby].gid]
