"""Admin commands against the monitor core: rc, messages, map effects (A1–A9, F5, F7, X7, C7)."""

from __future__ import annotations

import errno

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
    assert rc == -errno.EEXIST
    assert outs.startswith("Filesystem 'other' is already using one of the specified RADOS pools.")
    assert c.cmd("fs", "new", "other", "other_metadata", "cephfs_data")[0] == -errno.EEXIST
    assert c.cmd("fs", "new", "other", "p", "p")[0] == -errno.EINVAL
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
    ("max_mds", "two", -errno.EINVAL, "max_mds must be an integer, got 'two'"),
    ("session_timeout", "10", -errno.ERANGE, "session_timeout must be at least 30s"),
    ("session_autoclose", "29", -errno.ERANGE, "session_autoclose must be at least 30s"),
    ("standby_count_wanted", "-1", -errno.EINVAL, "standby_count_wanted must be non-negative"),
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
                     ("standby_count_wanted", "3"), ("max_file_size", "4096")):
        assert c.cmd("fs", "set", "cephfs", var, val) == (0, "", "")
    mdsmap = c.json("fs", "get", "cephfs")["mdsmap"]
    assert (mdsmap["session_timeout"], mdsmap["session_autoclose"],
            mdsmap["standby_count_wanted"], mdsmap["max_file_size"]) == (30, 600, 3, 4096)
    assert mdsmap["modified"] != mdsmap["created"] or c.t == 0
    assert c.cmd("fs", "set", "nosuch", "max_mds", "1") == (
        -errno.ENOENT, "Filesystem not found: 'nosuch'", "")


def test_fs_rm_needs_fs_fail_and_confirmation() -> None:
    c = healthy("a", "b")
    rc, outs, _ = c.cmd("fs", "rm", "cephfs")
    assert rc == -errno.EPERM and outs.startswith("this is a DESTRUCTIVE operation")
    assert c.cmd("fs", "rm", "cephfs", "--yes-i-really-mean-it") == (
        -errno.EINVAL, "all MDS daemons must be inactive/failed before removing filesystem. "
        "See `ceph fs fail`.", "")
    c.cmd("fs", "fail", "cephfs")
    assert c.cmd("fs", "rm", "cephfs", "--yes-i-really-mean-it") == (0, "", "")
    assert c.mon.fsmap.filesystems == {} and c.mon.fsmap.legacy_client_fscid == -1
    assert c.cmd("fs", "ls") == (0, "", "No filesystems enabled")
    assert c.cmd("fs", "rm", "cephfs", "--yes-i-really-mean-it") == (
        0, "filesystem 'cephfs' does not exist", "")
    c.advance(30)
    assert sorted(c.standbys()) == ["a", "b"] and c.health() == set()


def test_mds_rmfailed() -> None:
    c = healthy("a", "b", "c", max_mds=2)
    for name in ("a", "b", "c"):
        c.kill(name)
    c.cmd("mds", "fail", c.standbys()[0])  # no replacement, so a failed rank stays failed
    rc, outs, _ = c.cmd("mds", "rmfailed", "cephfs:1")
    assert rc == -errno.EPERM and outs.startswith("WARNING: this can make your filesystem")
    epoch = c.mon.fsmap.epoch
    assert c.cmd("mds", "rmfailed", "cephfs:1", "--yes-i-really-mean-it")[0] == 0  # not failed
    assert c.fs().in_ == {0, 1} and c.mon.fsmap.epoch == epoch
    c.cmd("mds", "fail", "cephfs:1")
    assert c.cmd("mds", "rmfailed", "cephfs:1", "--yes-i-really-mean-it") == (
        0, "removed failed mds.1:1", "")
    assert c.fs().in_ == {0} and c.fs().failed == set()
    assert c.cmd("mds", "rmfailed", "nofs:1", "--yes-i-really-mean-it")[0] == -errno.EINVAL


def test_mds_freeze() -> None:
    c = healthy("a", "b")
    holder = c.holder()
    assert c.cmd("mds", "freeze", holder, "true") == (0, "", "")
    assert " frozen " in c.cmd("fs", "get", "cephfs")[2]
    assert c.cmd("mds", "freeze", holder, "perhaps")[0] == -errno.EINVAL
    assert c.cmd("mds", "freeze", "nosuch", "true")[0] == -errno.ENOENT


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
        "bal_rank_mask", "standby_count_wanted"]
    assert m["up"] == {"mds_0": c.daemons[c.holder()].gid} and m["in"] == [0]
    assert m["flags_state"]["allow_standby_replay"] and m["flags_state"]["joinable"]
    info = m["info"][f"gid_{c.daemons[c.follower()].gid}"]
    assert list(info) == ["gid", "name", "rank", "incarnation", "state", "state_seq", "addr",
                          "addrs", "join_fscid", "export_targets", "features", "flags",
                          "compat"]
    assert (info["state"], info["rank"], info["incarnation"]) == ("up:standby-replay", 0, 0)
    assert c.cmd("fs", "dump", "999") == (-errno.ENOENT, "mds map 999 not found", "")
    rc, outs, text = c.cmd("fs", "dump")
    assert text.startswith(f"e{c.mon.fsmap.epoch}\n") and "Standby daemons:" in text


def test_unknown_commands_and_formats() -> None:
    c = Cluster()
    assert c.cmd("fs", "frobnicate")[0] == -errno.EINVAL
    assert c.cmd("nonsense")[0] == -errno.EINVAL
    assert commands.run(c.mon, ["fs", "ls"], "xml")[0] == -errno.EINVAL
    assert commands.run(c.mon, ["fs", 3], "plain")[0] == -errno.EINVAL


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
    assert commands.run(mon, ["fs", "new", "cephfs", "meta", "data"])[0] == 0
    rc, outs, out = commands.run(mon, ["osd", "dump"], "json")
    d = json.loads(out)
    assert rc == 0 and [p["pool_name"] for p in d["pools"]] == ["meta", "data"]
    assert commands.run(mon, ["osd", "pool", "ls"])[2] == "meta\ndata"
    assert commands.run(mon, ["osd", "pool", "frob"])[0] == -22
