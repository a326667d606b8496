"""Admin commands against the monitor core: rc, messages, map effects (A1–A9, F5, F7, X7, C7)."""

from __future__ import annotations

import errno
import json

import pytest

from common import states
from mon import commands
from tests.unit.monsim import WALL0, Cluster, healthy

NOT_FOUND = "MDS named '{}' does not exist, is not up or you lack the permission to see."


def _fail_forms(c: Cluster) -> dict[str, str]:
    holder = c.holder()
    return {
        "gid": str(c.daemons[holder].gid),
        "name": holder,
        "rank": "0",
        "fscid:rank": f"{c.fs().fscid}:0",
        "fs_name:rank": "cephfs:0",
    }


@pytest.mark.parametrize("form", ["gid", "name", "rank", "fscid:rank", "fs_name:rank"])
def test_A1_five_forms_of_mds_fail(form: str) -> None:
    c = healthy("a", "b", "c")
    holder = c.holder()
    gid, addr = c.daemons[holder].gid, c.daemons[holder].addr
    epoch = c.mon.fsmap.epoch
    rc, outs, outb = c.cmd("mds", "fail", _fail_forms(c)[form])
    assert (rc, outs, outb) == (0, f"failed mds gid {gid}", "")
    assert c.take_clog()[0] == f"daemon mds.{holder} marked failed by client.admin"
    assert c.mon.osdmap.is_blocklisted(addr) and not c.mon.fsmap.gid_exists(gid)
    assert c.mon.fsmap.epoch > epoch
    c.until(c.all_active, within=10)  # A1: the next tick promotes a replacement


def test_A1_not_found_is_rc_0() -> None:
    c = healthy("a", "b")
    epoch = c.mon.fsmap.epoch
    for who in ("nosuch", "99999", "cephfs:5", "7", "nofs:0", "-1"):
        assert c.cmd("mds", "fail", who) == (0, NOT_FOUND.format(who), "")
    assert c.mon.fsmap.epoch == epoch and not c.take_clog()


def test_A1_bare_rank_without_a_filesystem() -> None:
    c = Cluster()
    c.add("a")
    assert c.cmd("mds", "fail", "0") == (0, NOT_FOUND.format("0"), "")  # "No filesystem"
    gid = c.daemons["a"].gid
    assert c.cmd("mds", "fail", str(gid)) == (0, f"failed mds gid {gid}", "")


def test_A1_mds_fail_twice_is_idempotent() -> None:
    c = healthy("a", "b")
    c.kill("a")
    c.kill("b")
    gid = str(c.daemons["a"].gid)
    assert c.cmd("mds", "fail", gid) == (0, f"failed mds gid {gid}", "")
    epoch = c.mon.fsmap.epoch
    assert c.cmd("mds", "fail", gid) == (0, NOT_FOUND.format(gid), "")
    assert c.mon.fsmap.epoch == epoch


def test_A1_failing_standbys_and_followers_does_not_fence() -> None:
    c = healthy("a", "b", "c", standby_replay=True)
    follower, standby = c.follower(), c.standbys()[0]
    assert c.cmd("mds", "fail", follower)[0] == 0
    assert c.cmd("mds", "fail", standby)[0] == 0
    assert not c.mon.osdmap.blocklist
    assert c.daemons[follower].respawns == c.daemons[standby].respawns == 1
    assert c.fs().failed == set()


def test_A1_fail_a_creating_daemon_forgets_the_rank() -> None:
    c = Cluster()
    c.new_fs()
    c.add("a", hold={states.CREATING})
    c.tick()
    c.add("b")
    addr = c.daemons["a"].addr
    assert c.state("a") == "up:creating"
    c.kill("a")
    assert c.cmd("mds", "fail", "a")[0] == 0
    assert c.mon.osdmap.is_blocklisted(addr)
    # F2: the rank is forgotten rather than failed, so the tick after the commit (T0) creates
    # it anew with b, at once
    assert c.ranks() == {0: ("b", "up:active")} and not c.fs().failed
    assert c.daemons["b"].history[-2:] == ["up:creating", "up:active"]


def test_F7_fs_fail() -> None:
    c = healthy("a", "b", "c", "d", "e", max_mds=2, standby_replay=True)
    holders = [c.holder(0), c.holder(1)]
    addrs = [c.daemons[n].addr for n in holders]
    follower_addrs = [f.addr for f in c.fs().followers()]
    rc, outs, _ = c.cmd("fs", "fail", "cephfs")
    assert (rc, outs) == (0, "cephfs marked not joinable; MDS cannot join the cluster. "
                             "All MDS ranks marked failed.")
    fs = c.fs()
    assert fs.failed == {0, 1} and not fs.up and not fs.mds_info and not fs.joinable
    assert all(c.mon.osdmap.is_blocklisted(a) for a in addrs)
    assert not any(c.mon.osdmap.is_blocklisted(a) for a in follower_addrs)
    c.advance(60)
    assert c.fs().failed == {0, 1} and len(c.standbys()) == 5  # nothing promoted
    assert {"MDS_ALL_DOWN", "FS_DEGRADED"} <= c.health()
    # fs set joinable true brings it back.
    assert c.cmd("fs", "set", "cephfs", "joinable", "true")[0] == 0
    c.until(lambda: c.all_active() and len(c.fs().followers()) == 2, within=15)
    assert c.health() == set()


def test_F7_fs_fail_twice_and_unknown_fs() -> None:
    c = healthy("a", "b")
    assert c.cmd("fs", "fail", "cephfs")[0] == 0
    assert c.cmd("fs", "fail", "cephfs")[0] == 0
    assert c.fs().failed == {0} and not c.fs().joinable
    assert c.cmd("fs", "fail", "nosuch") == (-errno.ENOENT, "Filesystem not found: 'nosuch'", "")


def test_fs_new_errors() -> None:
    c = Cluster()
    c.new_fs()
    epoch = c.mon.fsmap.epoch
    same = c.cmd("fs", "new", "cephfs", "cephfs_metadata", "cephfs_data")
    assert same == (0, "filesystem 'cephfs' already exists", "")
    assert c.cmd("fs", "new", "cephfs", "m2", "d2") == (
        -errno.EINVAL, "filesystem already exists with name 'cephfs'", "")
    rc, outs, _ = c.cmd("fs", "new", "other", "cephfs_metadata", "other_data")
    assert rc == -errno.EINVAL  # FsNewHandler: EINVAL, not EEXIST
    assert outs.startswith("Filesystem 'other' is already using one of the specified RADOS pools.")
    assert c.cmd("fs", "new", "other", "other_metadata", "cephfs_data")[0] == -errno.EINVAL
    # the pools swapped: each is in use by cephfs in the other role (_check_pool)
    assert c.cmd("fs", "new", "other", "cephfs_data", "other_data") == (
        -errno.EINVAL, "RADOS pool 'cephfs_data' is already used by filesystem 'cephfs' as a "
        "'data' pool for application 'cephfs'", "")
    assert c.cmd("fs", "new", "other", "p", "p") == (
        -errno.EINVAL, "metadata and data pools must be different", "")
    assert c.cmd("fs", "new", "other")[0] == -errno.EINVAL
    assert c.mon.fsmap.epoch == epoch
    assert c.cmd("fs", "flag", "set", "enable_multiple", "false")[0] == 0
    rc, outs, _ = c.cmd("fs", "new", "other", "other_metadata", "other_data")
    assert rc == -errno.EINVAL and outs.startswith("Creation of multiple filesystems is disabled.")
    assert c.cmd("fs", "flag", "set", "enable_multiple", "true")[0] == 0
    rc, outs, _ = c.cmd("fs", "new", "other", "other_metadata", "other_data")
    assert (rc, outs) == (0, "new fs with metadata pool 3 and data pool 4")
    assert [f["name"] for f in c.json("fs", "ls")] == ["cephfs", "other"]


def test_fs_new_promotes_standbys_at_once() -> None:
    c = Cluster()
    c.add("a")
    c.new_fs()
    assert c.ranks() == {0: ("a", "up:active")}  # creating, then it asked for active
    assert c.daemons["a"].history == ["up:boot", "up:standby", "up:creating", "up:active"]


def test_fs_new_recover() -> None:
    c = Cluster()
    c.add("a")
    c.new_fs("cephfs", "--recover")
    fs = c.fs()
    assert fs.in_ == {0} and fs.failed == {0} and not fs.joinable and c.standbys() == ["a"]
    c.advance(30)
    assert c.standbys() == ["a"]
    c.cmd("fs", "set", "cephfs", "joinable", "true")
    c.until(c.all_active, within=10)
    assert c.daemons["a"].history == [
        "up:boot", "up:standby", "up:replay", "up:reconnect", "up:rejoin", "up:active"]


@pytest.mark.parametrize(("var", "val", "rc", "msg"), [
    ("max_mds", "0", -errno.EINVAL, "You must specify at least one MDS"),
    ("max_mds", "257", -errno.EINVAL, "may not have more than 256 MDS ranks"),
    ("max_mds", "two", -errno.EINVAL, "Expected option value to be integer, got 'two'"),
    ("session_timeout", "10", -errno.ERANGE, "session_timeout must be at least 30s"),
    ("session_autoclose", "29", -errno.ERANGE, "session_autoclose must be at least 30s"),
    ("standby_count_wanted", "-1", -errno.ERANGE, "standby_count_wanted must be non-negative"),
    ("standby_count_wanted", "x", -errno.EINVAL, "standby_count_wanted requires an integer value"),
    ("max_file_size", "4096", -errno.ERANGE, "max_file_size must at least 65536"),
    ("joinable", "maybe", -errno.EINVAL, "value must be false|no|0 or true|yes|1"),
    ("allow_standby_replay", "2", -errno.EINVAL, "value must be false|no|0 or true|yes|1"),
    ("no_such_var", "1", -errno.EINVAL, "unknown variable no_such_var"),
])
def test_fs_set_validation(var: str, val: str, rc: int, msg: str) -> None:
    c = healthy("a")
    epoch = c.mon.fsmap.epoch
    assert c.cmd("fs", "set", "cephfs", var, val) == (rc, msg, "")
    assert c.mon.fsmap.epoch == epoch


def test_fs_set_values_land_in_the_map() -> None:
    c = healthy("a")
    for var, val in (("session_timeout", "30"), ("session_autoclose", "600"),
                     ("standby_count_wanted", "3"), ("max_file_size", "65536"),
                     ("max_mds", "1"), ("allow_standby_replay", "true")):
        assert c.cmd("fs", "set", "cephfs", var, val) == (0, "", "")
    mdsmap = c.json("fs", "get", "cephfs")["mdsmap"]
    assert (mdsmap["session_timeout"], mdsmap["session_autoclose"],
            mdsmap["standby_count_wanted"], mdsmap["max_file_size"]) == (30, 600, 3, 65536)
    assert mdsmap["modified"] != mdsmap["created"] or c.t == 0
    assert c.cmd("fs", "set", "nosuch", "max_mds", "1") == (
        -errno.ENOENT, "Filesystem not found: 'nosuch'", "")


def test_fs_rm_needs_fs_fail_and_confirmation() -> None:
    c = healthy("a", "b")
    busy = (-errno.EINVAL, "all MDS daemons must be inactive/failed before removing "
            "filesystem. See `ceph fs fail`.", "")
    assert c.cmd("fs", "rm", "cephfs") == busy  # up daemons are checked before the flag
    assert c.cmd("fs", "rm", "cephfs", "--yes-i-really-mean-it") == busy
    c.cmd("fs", "fail", "cephfs")
    rc, outs, _ = c.cmd("fs", "rm", "cephfs")
    assert rc == -errno.EPERM and outs.startswith("this is a DESTRUCTIVE operation")
    assert c.cmd("fs", "rm", "cephfs", "--yes-i-really-mean-it") == (0, "", "")
    assert c.mon.fsmap.filesystems == {} and c.mon.fsmap.legacy_client_fscid == -1
    assert c.cmd("fs", "ls") == (0, "", "No filesystems enabled")
    assert c.cmd("fs", "rm", "cephfs", "--yes-i-really-mean-it") == (
        0, "filesystem 'cephfs' does not exist", "")
    c.advance(30)
    assert sorted(c.standbys()) == ["a", "b"] and c.health() == set()


def test_A6_mds_rmfailed_leaves_the_rank_in() -> None:
    c = healthy("a", "b", "c", max_mds=2)
    for name in ("a", "b", "c"):
        c.kill(name)
    c.cmd("mds", "fail", c.standbys()[0])  # no replacement, so a failed rank stays failed
    rc, outs, _ = c.cmd("mds", "rmfailed", "cephfs:1")
    assert rc == -errno.EPERM and outs.startswith("WARNING: this can make your filesystem")
    c.cmd("mds", "fail", "cephfs:1")
    assert c.fs().failed == {1}
    assert c.cmd("mds", "rmfailed", "cephfs:1", "--yes-i-really-mean-it") == (
        0, "removed failed mds.1:1", "")
    assert c.fs().in_ == {0, 1} and c.fs().failed == set() and 1 not in c.fs().up
    assert c.json("fs", "get", "cephfs")["mdsmap"]["in"] == [0, 1]
    assert c.cmd("mds", "rmfailed", "nofs:1", "--yes-i-really-mean-it") == (
        -errno.EINVAL, "invalid role 'nofs:1'", "")


def test_A7_mds_freeze_texts_and_errors() -> None:
    c = healthy("a", "b")
    holder = c.holder()
    gid = c.daemons[holder].gid
    assert c.cmd("mds", "freeze", holder, "true") == (0, f"freezing mds.{gid}", "")
    assert " frozen " in c.cmd("fs", "get", "cephfs")[2]
    assert c.cmd("mds", "freeze", "cephfs:0", "false") == (0, f"unfreezing mds.{gid}", "")
    assert " frozen " not in c.cmd("fs", "get", "cephfs")[2]
    assert c.cmd("mds", "freeze", holder, "perhaps") == (
        -errno.EINVAL, "value must be false|no|0 or true|yes|1", "")
    assert c.cmd("mds", "freeze", "nosuch", "true") == (
        -errno.EINVAL, "MDS named 'nosuch' does not exist, or is not up", "")
    assert c.cmd("mds", "freeze", "99999", "true") == (-errno.EINVAL, "", "")


def test_A9_fs_new_logs_each_assignment() -> None:
    c = Cluster()
    c.add("a")
    c.add("b")
    c.take_clog()
    assert c.cmd("fs", "new", "cephfs", "m", "d")[0] == 0
    assert c.take_clog()[0] == f"daemon mds.{c.holder()} assigned to filesystem cephfs as rank 0"


def test_fs_rm_of_a_joinable_fs_without_up_ranks() -> None:
    c = Cluster()
    c.new_fs()  # no daemons: joinable, rank 0 never created
    assert c.fs().joinable and not c.fs().up
    assert c.cmd("fs", "rm", "cephfs", "--yes-i-really-mean-it") == (0, "", "")
    assert c.mon.fsmap.filesystems == {}


@pytest.mark.parametrize(("var", "val", "outs"), [
    ("max_mds", "2", ""),
    ("standby_count_wanted", "1", ""),
    ("allow_standby_replay", "true", ""),
    ("balance_automate", "true", ""),
    ("joinable", "false", "cephfs marked not joinable; MDS cannot join as newly active."),
    ("joinable", "true", "cephfs marked joinable; MDS may join as newly active."),
    ("cluster_down", "false", "cephfs marked joinable; MDS may join as newly active. WARNING: "
     "cluster_down flag is deprecated and will be removed in a future version. Please use "
     '"joinable".'),
    ("down", "true", "cephfs marked down. "),
    ("down", "false", "cephfs marked up, max_mds = 1"),
    ("refuse_client_session", "true", "client(s) blocked from establishing new session(s)"),
    ("refuse_client_session", "false", "client(s) already allowed to establish new session(s)"),
    ("refuse_standby_for_another_fs", "true", "set to refuse standby for another fs"),
    ("refuse_standby_for_another_fs", "false",
     "to use standby for another fs is already allowed"),
    ("balancer", "my_balancer", "setting the metadata load balancer to my_balancer"),
])
def test_fs_set_confirmation_texts(var: str, val: str, outs: str) -> None:
    c = healthy("a")
    assert c.cmd("fs", "set", "cephfs", var, val) == (0, outs, "")


def test_config_set_get_rm_dump() -> None:
    c = healthy("a", "b")
    assert c.cmd("config", "set", "mds", "mds_beacon_grace", "30") == (0, "", "")
    assert c.cmd("config", "set", "mds.a", "mds join fs", "cephfs") == (0, "", "")
    assert c.cmd("config", "get", "mds.a", "mds_beacon_grace") == (0, "", "30")
    assert c.cmd("config", "get", "mds.a", "mds-join-fs") == (0, "", "cephfs")
    assert c.cmd("config", "get", "mds.b", "mds_join_fs") == (0, "", "")
    assert c.json("config", "get", "mds.a") == {"mds_beacon_grace": "30", "mds_join_fs": "cephfs"}
    assert c.json("config", "dump") == [
        {"section": "mds", "name": "mds_beacon_grace", "value": "30", "level": "basic",
         "can_update_at_runtime": True, "mask": ""},
        {"section": "mds.a", "name": "mds_join_fs", "value": "cephfs", "level": "basic",
         "can_update_at_runtime": True, "mask": ""},
    ]
    assert c.cmd("config", "rm", "mds", "mds_beacon_grace") == (0, "", "")
    assert c.cmd("config", "rm", "mds", "mds_beacon_grace") == (0, "", "")
    assert c.cmd("config", "get", "mds.a", "mds_beacon_grace") == (0, "", "15.000000")
    assert [r["name"] for r in c.json("config", "dump")] == ["mds_join_fs"]


@pytest.mark.parametrize("args", [
    ("config", "set", "mds", "no_such_option", "1"),
    ("config", "get", "mds.a", "no_such_option"),
    ("config", "set", "mds", "mds_beacon_grace", "soon"),
    ("config", "set", "martian", "mds_beacon_grace", "3"),
    ("config", "frobnicate"),
])
def test_config_errors_are_einval(args) -> None:
    c = Cluster()
    rc, outs, _ = c.cmd(*args)
    assert rc == -errno.EINVAL and outs
    if "no_such_option" in args:
        assert outs == "unrecognized config option 'no_such_option'"
    assert c.mon.config_db == {}


def test_config_set_on_the_mon_applies_at_once() -> None:
    c = healthy("a", "b")
    assert c.cmd("config", "set", "mon", "mds_beacon_grace", "40") == (0, "", "")
    assert c.opt("mds_beacon_grace") == 40
    holder = c.holder()
    last = c.daemons[holder].last_sent
    c.kill(holder)
    c.until(lambda: c.holder() != holder, within=60)
    assert c.t - last >= 40


def test_osd_blocklist_ls_add_rm() -> None:
    c = Cluster()
    assert c.cmd("osd", "blocklist", "ls") == (0, "listed 0 entries", "")
    rc, outs, _ = c.cmd("osd", "blocklist", "add", "10.1.1.1:0/3", "60")
    assert (rc, outs) == (0, "blocklisting 10.1.1.1:0/3 until 2023-11-14T22:14:20.000000+0000 "
                             "(60 sec)")
    c.cmd("osd", "blocklist", "add", "10.1.1.2:0/4")
    assert c.mon.osdmap.blocklist == {"10.1.1.1:0/3": WALL0 + 60, "10.1.1.2:0/4": WALL0 + 3600}
    rc, outs, outb = c.cmd("osd", "blocklist", "ls")
    assert outs == "listed 2 entries"
    assert outb.splitlines() == ["10.1.1.1:0/3 2023-11-14T22:14:20.000000+0000",
                                 "10.1.1.2:0/4 2023-11-14T23:13:20.000000+0000"]
    assert c.json("osd", "blocklist", "ls")[0] == {
        "addr": "10.1.1.1:0/3", "until": "2023-11-14T22:14:20.000000+0000"}
    assert c.cmd("osd", "blocklist", "rm", "10.1.1.1:0/3") == (0, "un-blocklisting 10.1.1.1:0/3", "")
    assert c.cmd("osd", "blocklist", "rm", "10.1.1.1:0/3") == (
        0, "10.1.1.1:0/3 isn't blocklisted", "")
    assert c.cmd("osd", "blocklist", "add", "10.1.1.3:0/1", "soon")[0] == -errno.EINVAL
    assert c.cmd("osd", "blocklist", "add", "10.1.1.3:0/1", "-5")[0] == -errno.EINVAL
    assert c.cmd("osd", "blocklist", "frob")[0] == -errno.EINVAL
    assert list(c.mon.osdmap.blocklist) == ["10.1.1.2:0/4"]


def test_fs_dump_json_layout() -> None:
    c = healthy("a", "b", "c", standby_replay=True)
    rc, outs, _ = c.cmd("fs", "dump", fmt="json")
    assert outs == f"dumped fsmap epoch {c.mon.fsmap.epoch}"
    d = c.json("fs", "dump")
    assert list(d) == ["epoch", "default_fscid", "compat", "feature_flags", "standbys",
                       "filesystems"]
    assert d["epoch"] == c.mon.fsmap.epoch and d["default_fscid"] == 1
    assert d["feature_flags"] == {"enable_multiple": True, "ever_enabled_multiple": True}
    (standby,) = d["standbys"]
    assert standby["name"] == c.standbys()[0] and standby["state"] == "up:standby"
    assert standby["rank"] == -1 and standby["epoch"] == c.mon.fsmap.standby_epochs[standby["gid"]]
    (fs,) = d["filesystems"]
    assert list(fs) == ["mdsmap", "id"] and fs["id"] == 1
    m = fs["mdsmap"]
    assert list(m) == [
        "epoch", "flags", "flags_state", "ever_allowed_features", "explicitly_allowed_features",
        "created", "modified", "tableserver", "root", "session_timeout", "session_autoclose",
        "required_client_features", "max_file_size", "max_xattr_size", "last_failure",
        "last_failure_osd_epoch", "compat", "max_mds", "in", "up", "failed", "damaged",
        "stopped", "info", "data_pools", "metadata_pool", "enabled", "fs_name", "balancer",
        "bal_rank_mask", "standby_count_wanted", "qdb_leader", "qdb_cluster"]
    assert m["up"] == {"mds_0": c.daemons[c.holder()].gid} and m["in"] == [0]
    assert m["flags_state"]["allow_standby_replay"] and m["flags_state"]["joinable"]
    info = m["info"][f"gid_{c.daemons[c.follower()].gid}"]
    assert list(info) == ["gid", "name", "rank", "incarnation", "state", "state_seq", "addr",
                          "addrs", "join_fscid", "export_targets", "features", "flags",
                          "compat"]
    assert (info["state"], info["rank"], info["incarnation"]) == ("up:standby-replay", 0, 0)
    assert c.cmd("fs", "dump", "999") == (-errno.ENOENT, "", "")  # Ceph gives no message
    rc, outs, text = c.cmd("fs", "dump")
    assert text.startswith(f"e{c.mon.fsmap.epoch}\n") and "Standby daemons:" in text


def test_unknown_commands_and_formats() -> None:
    c = Cluster()
    assert c.cmd("fs", "frobnicate")[0] == -errno.EINVAL
    assert c.cmd("nonsense")[0] == -errno.EINVAL
    assert commands.run(c.mon, ["fs", "ls"], "xml").reply[0] == -errno.EINVAL
    assert commands.run(c.mon, ["fs", 3], "plain").reply[0] == -errno.EINVAL


def test_a_failing_command_leaves_no_pending_proposal(monkeypatch) -> None:
    c = healthy("a", "b")
    epoch = c.mon.fsmap.epoch

    def broken(ctx):
        ctx.mon.pfs.filesystems[1].max_mds = 9
        ctx.mon.clog(ctx.wall, "INF", "half done")
        raise RuntimeError("bug")

    monkeypatch.setitem(commands.COMMANDS, ("fs", "broken"), broken)
    with pytest.raises(RuntimeError):
        c.cmd("fs", "broken")
    assert c.mon.view is c.mon.fsmap and c.mon.fsmap.epoch == epoch
    c.advance(10)
    assert c.fs().max_mds == 1 and "half done" not in c.take_clog()


def test_mds_stat_and_status() -> None:
    c = healthy("a", "b", "c", standby_replay=True)
    assert c.cmd("mds", "stat") == (
        0, "", f"cephfs:1 {{0={c.holder()}=up:active}} 1 up:standby-replay 1 up:standby")
    rc, _, out = c.cmd("status")
    assert rc == 0 and "1/1 daemons up, 1 standby, 1 hot standby" in out


def test_osd_dump_and_pool_ls_show_the_fs_pools():
    import json

    from common.config import Config
    from mon import commands
    from mon.mds_monitor import MDSMonitor

    mon = MDSMonitor(Config("mon.a"))
    assert commands.run(mon, ["fs", "new", "cephfs", "meta", "data"]).reply[0] == 0
    rc, outs, out = commands.run(mon, ["osd", "dump"], "json").reply
    d = json.loads(out)
    assert rc == 0 and [p["pool_name"] for p in d["pools"]] == ["meta", "data"]
    assert commands.run(mon, ["osd", "pool", "ls"]).reply[2] == "meta\ndata"
    assert commands.run(mon, ["osd", "pool", "frob"]).reply[0] == -22


def test_O5_fs_status_of_an_unknown_fs() -> None:
    c = healthy("a", "b")
    assert c.cmd("fs", "status", "nope") == (-errno.EINVAL, "Invalid filesystem: nope", "")
    rc, _, out = c.cmd("fs", "status", "cephfs")
    assert rc == 0 and out.startswith("cephfs - 0 clients\n") and "\n\nSTANDBY MDS\n" in out
    rc, _, out = c.cmd("fs", "status", "nope", fmt="json")  # the mgr checks plain output only
    assert rc == 0 and json.loads(out)["clients"] == []


# -- commands Ceph has that mdsemu lacked (ok-to-stop, lsflags, compat, rename, mds rm)


def test_A8_mds_ok_to_stop() -> None:
    c = healthy("a", "b", "c", max_mds=2)
    holders, (spare,) = [c.holder(0), c.holder(1)], c.standbys()
    epoch = c.mon.fsmap.epoch
    assert c.cmd("mds", "ok-to-stop", holders[0]) == (
        0, f"should be safe to stop [{holders[0]}]", "")
    assert c.cmd("mds", "ok-to-stop", "nosuch", spare) == (
        0, f"should be safe to stop [nosuch,{spare}]", "")
    gids = sorted(c.daemons[n].gid for n in holders)
    assert c.cmd("mds", "ok-to-stop", *holders) == (
        -errno.EBUSY, f"insufficent standby MDS daemons to stop active gids {gids[0]},{gids[1]} "
        "and/or standby gids ", "")
    assert c.cmd("mds", "ok-to-stop", holders[0], spare) == (
        -errno.EBUSY, "insufficent standby MDS daemons to stop active gids "
        f"{c.daemons[holders[0]].gid} and/or standby gids {c.daemons[spare].gid}", "")
    assert c.cmd("mds", "ok-to-stop") == (-errno.EINVAL, "must specify mds id", "")
    assert c.mon.fsmap.epoch == epoch  # a query
    c.kill(spare)
    c.until(lambda: not c.standbys(), within=60)
    c.kill(holders[1])  # dead, so it does not respawn and take the rank back at once (T0)
    c.cmd("mds", "fail", holders[1])
    assert c.fs().failed == {1}
    assert c.cmd("mds", "ok-to-stop", holders[0]) == (
        -errno.EBUSY, "one or more filesystems is currently degraded", "")


def test_A8_ok_to_stop_an_active_with_a_follower() -> None:
    c = healthy("a", "b", standby_replay=True)
    assert not c.standbys()
    holder, follower = c.holder(), c.follower()
    assert c.cmd("mds", "ok-to-stop", holder)[0] == 0  # its follower takes over
    rc, outs, _ = c.cmd("mds", "ok-to-stop", holder, follower)
    assert rc == -errno.EBUSY and outs.startswith("insufficent standby MDS daemons")


def test_fs_lsflags() -> None:
    c = healthy("a")
    assert c.cmd("fs", "lsflags", "cephfs") == (
        0, "", " joinable allow_snaps allow_multimds_snaps")
    c.cmd("fs", "set", "cephfs", "refuse_client_session", "true")
    assert c.json("fs", "lsflags", "cephfs") == {
        "joinable": True, "allow_snaps": True, "allow_multimds_snaps": True,
        "allow_standby_replay": False, "refuse_client_session": True,
        "refuse_standby_for_another_fs": False, "balance_automate": False}
    assert c.cmd("fs", "lsflags", "nope") == (-errno.ENOENT, "filesystem 'nope' not found", "")
    assert c.cmd("fs", "get", "nope") == (-errno.ENOENT, "filesystem 'nope' not found", "")


def test_fs_compat_add_and_rm_incompat() -> None:
    c = healthy("a")
    busy = (-errno.EBUSY, "file system must be failed or down; use `ceph fs fail` to bring down",
            "")
    assert c.cmd("fs", "compat", "cephfs", "rm_incompat", "12") == busy
    c.cmd("fs", "fail", "cephfs")
    assert c.cmd("fs", "compat", "cephfs", "rm_incompat", "12") == (
        0, "removed incompat feature 12", "")
    assert c.cmd("fs", "compat", "cephfs", "rm_incompat", "12") == (
        0, "already removed incompat feature 12", "")
    incompat = c.json("fs", "get", "cephfs")["mdsmap"]["compat"]["incompat"]
    assert "feature_12" not in incompat and "feature_11" in incompat
    assert c.cmd("fs", "compat", "cephfs", "add_incompat", "12", "quiesce subvolumes") == (
        0, 'added incompat feature F(12, "quiesce subvolumes")', "")
    assert c.cmd("fs", "compat", "cephfs", "add_incompat", "12", "quiesce subvolumes") == (
        0, "feature already exists", "")
    assert c.cmd("fs", "compat", "cephfs", "add_incompat", "12", "other") == (
        -errno.EEXIST, "feature with differing name `quiesce subvolumes' exists", "")
    assert c.cmd("fs", "compat", "cephfs", "add_incompat", "13") == (
        -errno.EINVAL, "adding a feature requires a feature string", "")
    assert c.cmd("fs", "compat", "cephfs", "add_compat", "1", "x")[0] == 0
    assert "compat\tcompat={1=x},rocompat={}," in c.cmd("fs", "get", "cephfs")[2]
    assert c.cmd("fs", "compat", "cephfs", "flip", "1") == (
        -errno.EINVAL, "subop `flip' not recognized. Must be one of: add_compat,add_incompat,"
        "rm_compat,rm_incompat", "")
    assert c.cmd("fs", "compat", "cephfs", "rm_incompat", "0") == (
        -errno.EINVAL, "Invalid feature", "")
    assert c.cmd("fs", "compat", "nope", "rm_incompat", "1")[0] == -errno.ENOENT


def test_fs_rename_gates_and_effect() -> None:
    c = healthy("a", "b")
    fscid = c.fs().fscid
    rc, outs, _ = c.cmd("fs", "rename", "cephfs", "newfs")
    assert rc == -errno.EPERM and outs.startswith("this is a potentially disruptive operation")
    yes = "--yes-i-really-mean-it"
    assert c.cmd("fs", "rename", "cephfs", "newfs", yes) == (
        -errno.EPERM, "CephFS 'cephfs' is not offline. Before renaming a CephFS, it must be "
        "marked as down. See `ceph fs fail`.", "")
    c.cmd("fs", "fail", "cephfs")
    assert c.cmd("fs", "rename", "cephfs", "newfs", yes) == (
        -errno.EPERM, "CephFS 'cephfs' doesn't refuse clients. Before renaming a CephFS, flag "
        "'refuse_client_session' must be set. See `ceph fs set`.", "")
    c.cmd("fs", "set", "cephfs", "refuse_client_session", "true")
    assert c.cmd("fs", "rename", "cephfs", "cephfs", yes) == (
        -errno.EINVAL, "Desired file system name 'cephfs' already in use", "")
    assert c.cmd("fs", "rename", "cephfs", "newfs", yes) == (
        0, "File system is renamed. cephx credentials authorized to old file system name need "
        "to be reauthorized to new file system name.", "")
    assert c.mon.fsmap.fs_by_name("newfs").fscid == fscid
    assert c.cmd("fs", "get", "newfs")[2].startswith(f"Filesystem 'newfs' ({fscid})\n")
    assert c.cmd("fs", "rename", "cephfs", "newfs", yes) == (
        0, "File system may already have been renamed. Desired file system 'newfs' exists.", "")
    assert c.cmd("fs", "rename", "gone", "other", yes) == (
        -errno.ENOENT, "File system 'gone' does not exist", "")
    c.cmd("fs", "set", "newfs", "joinable", "true")
    c.until(lambda: c.mon.fsmap.fs_by_name("newfs").ranks_in_state(states.ACTIVE) == [0],
            within=15)  # the renamed fs comes back


def test_F7_fs_fail_refused_while_an_mds_is_behind_on_trimming() -> None:
    c = healthy("a", "b")
    c.daemons[c.holder()].health = [
        {"type": "MDS_TRIM", "severity": "HEALTH_WARN", "message": "Behind on trimming (300/128)"}]
    c.until(lambda: "MDS_TRIM" in c.health(), within=10)
    epoch = c.mon.fsmap.epoch
    rc, outs, _ = c.cmd("fs", "fail", "cephfs")
    assert rc == -errno.EPERM and outs.startswith(
        "MDS has one of two health warnings which could extend recovery: MDS_TRIM or "
        "MDS_CACHE_OVERSIZED.")
    assert outs.endswith("If you wish to proceed, pass --yes-i-really-mean-it")
    assert c.mon.fsmap.epoch == epoch and c.fs().up
    assert c.cmd("fs", "fail", "cephfs", "--yes-i-really-mean-it")[0] == 0
    assert not c.fs().up and not c.fs().joinable


def test_A7_mds_rm() -> None:
    c = healthy("a", "b", "c", standby_replay=True)
    holder, follower, (spare,) = c.holder(), c.follower(), c.standbys()
    hgid, sgid = c.daemons[holder].gid, c.daemons[spare].gid
    assert c.cmd("mds", "rm", str(hgid)) == (
        -errno.EBUSY, f"cannot remove active mds.{holder} rank 0", "")
    assert c.cmd("mds", "rm", str(sgid)) == (0, f"removed mds gid {sgid}", "")
    assert not c.mon.fsmap.gid_exists(sgid) and not c.mon.osdmap.blocklist
    fgid = c.daemons[follower].gid
    assert c.cmd("mds", "rm", str(fgid)) == (0, f"removed mds gid {fgid}", "")
    assert c.fs().up == {0: hgid} and not c.fs().failed
    assert c.cmd("mds", "rm", "99999") == (0, "mds gid 99999 does not exist", "")
    assert c.cmd("mds", "rm", "x") == (-errno.EINVAL, "error parsing 'gid' value 'x'", "")


def test_fs_dump_epoch_history_is_trimmed_to_mon_max_mdsmap_epochs(tmp_path) -> None:
    from common.fsmap import FSMap
    from mon.store import MonStore

    c = Cluster()
    assert c.opt("mon_max_mdsmap_epochs") == 500
    store = MonStore(str(tmp_path), keep_epochs=3)
    try:
        for epoch in range(1, 9):
            store.commit(fsmap=FSMap(epoch=epoch))
        assert [e for e in range(1, 9) if store.fsmap_at(e)] == [5, 6, 7, 8]  # 8 and 3 more
        c.mon.fsmap = store.latest_fsmap()
        for epoch, rc in (("4", -errno.ENOENT), ("5", 0), ("9", -errno.ENOENT)):
            res = commands.run(c.mon, ["fs", "dump", epoch], history=store.fsmap_at).reply
            assert res[:2] == ((rc, f"dumped fsmap epoch {epoch}") if rc == 0 else (rc, ""))
    finally:
        store.close()
