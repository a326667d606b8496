"""Health checks as the monitor raises them while the cluster changes (H1–H6, H10, F5)."""

from __future__ import annotations

from common import states
from tests.unit.monsim import Cluster, healthy


def _detail(c: Cluster) -> str:
    rc, _, out = c.cmd("health", "detail")
    assert rc == 0
    return out


def test_H3_H4() -> None:
    c = Cluster()
    c.new_fs()
    assert _detail(c) == (
        "HEALTH_ERR 1 filesystem is offline; 1 filesystem is online with fewer MDS than max_mds\n"
        "[ERR] MDS_ALL_DOWN: 1 filesystem is offline\n"
        "    fs cephfs is offline because no MDS is active for it.\n"
        "[WRN] MDS_UP_LESS_THAN_MAX: 1 filesystem is online with fewer MDS than max_mds\n"
        "    fs cephfs has 0 MDS online, but wants 1"
    )
    c.add("a", hold={states.CREATING})
    c.tick()
    assert c.ranks() == {0: ("a", "up:creating")}
    assert c.health() == set()  # a creating rank is up and in
    c.release("a")
    c.add("b")
    c.add("c")
    c.cmd("fs", "set", "cephfs", "max_mds", "4")
    c.advance(30)
    checks = c.json("health", "detail")["checks"]
    assert checks["MDS_UP_LESS_THAN_MAX"]["detail"] == [
        {"message": "fs cephfs has 3 MDS online, but wants 4"}]
    assert c.json("health")["status"] == "HEALTH_WARN"


def test_H4_two_filesystems_offline_is_plural() -> None:
    c = Cluster()
    c.new_fs()
    c.new_fs("other")
    summary = c.mon.health_checks()["MDS_ALL_DOWN"]
    assert summary.summary == "2 filesystems are offline"
    assert summary.detail == ("fs cephfs is offline because no MDS is active for it.",
                              "fs other is offline because no MDS is active for it.")


def test_H5() -> None:
    c = healthy("a", "b", "c", max_mds=2)
    for name in ("a", "b", "c"):
        c.kill(name)
    standby = c.standbys()[0]
    c.cmd("mds", "fail", standby)
    assert "FS_WITH_FAILED_MDS" not in c.health()
    c.cmd("mds", "fail", c.holder(0))
    check = c.mon.health_checks()["FS_WITH_FAILED_MDS"]
    assert (check.summary, check.detail) == ("1 filesystem has a failed mds daemon",
                                             ("fs cephfs has 1 failed mds",))
    c.cmd("mds", "fail", c.holder(1))
    assert c.mon.health_checks()["FS_WITH_FAILED_MDS"].detail == ("fs cephfs has 2 failed mdss",)
    assert {"MDS_ALL_DOWN", "FS_DEGRADED", "FS_WITH_FAILED_MDS"} <= c.health()
    c.restart("a")  # T0: the commit of its boot ticks, and it takes rank 0 at once
    assert c.holder(0) == "a"
    assert c.mon.health_checks()["FS_WITH_FAILED_MDS"].detail == ("fs cephfs has 1 failed mds",)
    c.restart("b")
    assert c.holder(1) == "b" and "FS_WITH_FAILED_MDS" not in c.health()


def test_H2_degraded_while_recovering() -> None:
    c = healthy("a", "b")
    spare = c.standbys()[0]
    c.daemons[spare].hold = {states.RECONNECT}
    holder = c.holder()
    c.kill(holder)
    c.cmd("mds", "fail", holder)
    assert "FS_DEGRADED" in c.health()
    c.tick()
    assert c.state(spare) == "up:reconnect"
    check = c.mon.health_checks()["FS_DEGRADED"]
    assert (check.summary, check.detail) == ("1 filesystem is degraded", ("fs cephfs is degraded",))
    c.release(spare)
    assert "FS_DEGRADED" not in c.health()


def test_H6_insufficient_standby_raised_and_cleared() -> None:
    c = healthy("a", "b")
    assert c.fs().standby_count_wanted == 1  # T0: set once a standby existed
    standby = c.standbys()[0]
    c.kill(standby)
    c.until(lambda: not c.standbys(), within=25)
    assert _detail(c) == (
        "HEALTH_WARN insufficient standby MDS daemons available\n"
        "[WRN] MDS_INSUFFICIENT_STANDBY: insufficient standby MDS daemons available\n"
        "    have 0; want 1 more"
    )
    c.restart(standby)
    assert c.health() == set()
    c.kill(standby)
    c.until(lambda: not c.standbys(), within=25)
    assert c.cmd("fs", "set", "cephfs", "standby_count_wanted", "0")[0] == 0
    assert c.health() == set()


def test_H6_standby_replay_counts_for_its_fs() -> None:
    c = healthy("a", "b", standby_replay=True)
    assert c.follower() is not None and not c.standbys()
    assert c.health() == set()
    assert c.cmd("fs", "set", "cephfs", "standby_count_wanted", "2")[0] == 0
    assert c.mon.health_checks()["MDS_INSUFFICIENT_STANDBY"].detail == ("have 0; want 1 more",)


def test_F5_damaged_and_repaired() -> None:
    c = healthy("a", "b", "c", standby_replay=True)
    holder, follower, standby = c.holder(), c.follower(), c.standbys()[0]
    addr = c.daemons[holder].addr
    c.daemons[holder].alive = False  # it reports damaged, then stops beaconing
    epoch = c.mon.fsmap.epoch
    reply = c.beacon(holder, state=states.DAMAGED)
    assert reply is not None and not reply.null_map and reply.state == states.DAMAGED
    assert reply.version == epoch + 1
    fs = c.fs()
    assert fs.damaged == {0} and fs.in_ == {0} and not fs.up and not fs.failed
    assert c.mon.osdmap.is_blocklisted(addr)
    assert c.daemons[follower].respawns == 1  # its follower was failed too
    assert ("ERR", "Health check failed: 1 mds daemon damaged (MDS_DAMAGE)") in c.clog
    c.advance(30)
    assert c.fs().damaged == {0} and not c.fs().up  # never assigned while damaged
    checks = c.mon.health_checks()
    assert (checks["MDS_DAMAGE"].summary, checks["MDS_DAMAGE"].detail) == (
        "1 mds daemon damaged", ("fs cephfs mds.0 is damaged",))
    assert c.json("health")["status"] == "HEALTH_ERR"
    assert c.cmd("mds", "repaired", "cephfs:0")[:2] == (0, "repaired: restoring rank 1:0")
    assert not c.fs().failed and c.holder() in (follower, standby)  # T0: filled at once
    c.until(c.all_active, within=10)
    assert c.cmd("mds", "repaired", "0")[:2] == (0, "nothing to do: rank is not damaged")
    assert "MDS_DAMAGE" not in c.health()


def test_F5_follower_reports_damaged() -> None:
    c = healthy("a", "b", "c", standby_replay=True)
    holder, follower = c.holder(), c.follower()
    holder_addr, follower_addr = c.daemons[holder].addr, c.daemons[follower].addr
    c.daemons[follower].alive = False
    c.beacon(follower, state=states.DAMAGED)
    fs = c.fs()
    assert fs.damaged == {0} and not fs.up and not fs.followers()
    assert c.mon.osdmap.is_blocklisted(holder_addr)
    assert not c.mon.osdmap.is_blocklisted(follower_addr)
    assert c.daemons[holder].respawns == 1 and holder in c.standbys()


def test_F5_damaged_while_creating_keeps_the_rank_in() -> None:
    c = Cluster()
    c.new_fs()
    c.add("a", hold={states.CREATING})
    c.tick()
    c.daemons["a"].alive = False
    c.beacon("a", state=states.DAMAGED)
    assert c.fs().damaged == {0} and c.fs().in_ == {0}


def test_F5_follower_of_a_failed_rank_reports_damaged() -> None:
    c = healthy("a", "b", "c", standby_replay=True)
    follower = c.follower()
    c.cmd("fs", "set", "cephfs", "joinable", "false")
    c.cmd("mds", "fail", c.holder())
    assert c.fs().failed == {0} and c.follower() == follower
    c.daemons[follower].alive = False
    reply = c.beacon(follower, state=states.DAMAGED)
    assert reply.state == states.DAMAGED and not reply.null_map
    assert c.fs().damaged == {0} and c.fs().failed == set() and c.fs().in_ == {0}


def test_health_changes_are_logged_per_proposal_as_ceph_logs_them() -> None:
    """Monitor::log_health: each commit logs the checks that failed, changed or cleared since the
    previous one, and "Cluster is now healthy" once none is left."""
    c = healthy("a", "b")
    holder, spare = c.holder(), c.standbys()[0]
    c.clog.clear()
    assert c.cmd("mds", "fail", holder)[0] == 0
    c.until(c.all_active, within=5)
    assert c.clog == [
        ("INF", f"daemon mds.{holder} marked failed by client.admin"),
        ("WRN", "Health check failed: 1 filesystem is degraded (FS_DEGRADED)"),
        ("ERR", "Health check failed: 1 filesystem is offline (MDS_ALL_DOWN)"),
        ("INF", f"Standby daemon mds.{spare} assigned to filesystem cephfs as rank 0"),
        ("WRN", "Health check failed: insufficient standby MDS daemons available "
                "(MDS_INSUFFICIENT_STANDBY)"),
        ("INF", "Health check cleared: MDS_ALL_DOWN (was: 1 filesystem is offline)"),
        # the failed daemon respawns (B8) and boots as a standby
        ("INF", "Health check cleared: MDS_INSUFFICIENT_STANDBY (was: insufficient standby MDS "
                "daemons available)"),
        ("INF", f"daemon mds.{spare} is now active in filesystem cephfs as rank 0"),
        ("INF", "Health check cleared: FS_DEGRADED (was: 1 filesystem is degraded)"),
        ("INF", "Cluster is now healthy"),
    ]


def _two_filesystems() -> Cluster:
    c = Cluster()
    c.new_fs()
    c.new_fs("other")
    c.add("a")
    c.add("b")
    c.until(lambda: c.all_active() and c.all_active("other"))
    c.advance(10)
    c.clog.clear()
    return c


def test_health_update_is_logged_when_the_summary_changes() -> None:
    c = _two_filesystems()
    assert c.cmd("fs", "fail", "cephfs")[0] == 0
    c.advance(6)  # more than mon_health_log_update_period (5 s)
    assert c.cmd("fs", "fail", "other")[0] == 0
    assert ("WRN", "Health check update: 2 filesystems are degraded (FS_DEGRADED)") in c.clog
    assert ("ERR", "Health check update: 2 filesystems are offline (MDS_ALL_DOWN)") in c.clog
    # Within the period, a summary change at the same severity is not logged (Ceph's
    # health_check_log_times).
    c = _two_filesystems()
    assert c.cmd("fs", "fail", "cephfs")[0] == 0
    c.advance(1)
    assert c.cmd("fs", "fail", "other")[0] == 0
    assert not [m for _, m in c.clog if m.startswith("Health check update")]
