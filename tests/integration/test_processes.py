"""Failover with real processes: kill -9, SIGSTOP/SIGCONT, SIGTERM, mon restarts, `mds fail`,
standby-replay, max_mds changes and several file systems, with the fast profile (grace 1 s).

Each test asserts on what users see: `mdsemu fs dump -f json`, `mdsemu health detail -f json`,
exit statuses, pids and the daemons' logs. Polling uses the same monitor commands from the
test process (cheap); the final word is the real CLI. Every map a test polls is checked for
split brain (no two daemons holding one rank), and tests that take ranks away re-check every
epoch committed during the test (`fs dump <epoch>`).
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.integration.cluster import (
    active,
    all_active,
    follower,
    holder,
    info_by_gid,
    info_by_name,
    mdsmap,
    proc_state,
    standby_names,
)

pytestmark = [pytest.mark.processes, pytest.mark.timeout(60)]

WAIT = 10.0  # generous next to a 1 s grace: failures should say what was last seen


def test_kill9_of_active_promotes_a_standby(cluster_factory):
    """vstart (as in the README), kill -9 the active: a former standby is up:active for rank 0,
    the dead daemon is out of the map and its address is blocklisted."""
    c = cluster_factory()
    c.vstart("--mds", "3")
    before = c.fs_dump()
    old = active(before)
    assert old is not None, "vstart returned before rank 0 was active"
    standbys = standby_names(before)
    assert len(standbys) == 2
    first = before["epoch"]

    c.mds(old["name"]).kill(signal.SIGKILL)
    c.mds(old["name"]).wait_exit()
    c.wait_map(lambda d: active(d) and active(d)["gid"] != old["gid"], WAIT,
               "a standby to become up:active for rank 0")

    after = c.fs_dump()  # what users see
    new = active(after)
    assert new["name"] in standbys
    assert info_by_gid(after, old["gid"]) is None
    assert info_by_name(after, old["name"]) is None
    assert mdsmap(after)["in"] == [0] and mdsmap(after)["failed"] == []
    assert standby_names(after) == standbys - {new["name"]}
    blocklist = c.cli_json("osd", "blocklist", "ls")
    assert old["addr"] in [e["addr"] for e in blocklist]
    c.check_history(first)


def test_sigstop_active_is_replaced_and_respawns_as_standby_after_sigcont(cluster):
    """SIGSTOP: laggy, then replaced. SIGCONT: the same process (same pid) comes back as a
    standby with a new gid. No epoch ever shows two daemons holding rank 0, and the old gid
    never reappears once replaced."""
    c = cluster
    before = c.fs_dump()
    old = active(before)
    name, pid = old["name"], c.pid_of(old["name"])
    first = before["epoch"]

    c.mds(name).kill(signal.SIGSTOP)
    try:
        c.wait_for(lambda: proc_state(pid) == "T", WAIT, f"mds.{name} to be stopped")
        replaced = c.wait_map(lambda d: active(d) and active(d)["gid"] != old["gid"], WAIT,
                              "a standby to replace the stopped active")
        assert info_by_gid(replaced, old["gid"]) is None
        assert c.mds(name).alive()  # still there, frozen: nobody restarted it
    finally:
        c.mds(name).kill(signal.SIGCONT)

    back = c.wait_map(
        lambda d: (i := info_by_name(d, name)) and i["gid"] != old["gid"]
        and i["state"] == "up:standby", WAIT, f"mds.{name} to come back as a standby")
    new_gid = info_by_name(back, name)["gid"]

    after = c.fs_dump()
    assert info_by_name(after, name)["gid"] == new_gid != old["gid"]
    assert name in standby_names(after)
    assert active(after)["gid"] == active(replaced)["gid"]
    assert c.pid_of(name) == pid and c.mds(name).alive()  # respawned in place
    meta = c.cli_json("mds", "metadata", name)
    assert meta["pid"] == pid and meta["gid"] == new_gid
    assert "respawn" in c.mds(name).log()

    # Every committed map since the SIGSTOP: one holder per rank (check_map), the old gid
    # laggy at most until its replacement, and never back after it.
    history = c.check_history(first)
    replaced_at = min(d["epoch"] for d in history
                      if (h := holder(d)) is not None and h["gid"] != old["gid"])
    for d in history:
        if d["epoch"] >= replaced_at:
            assert info_by_gid(d, old["gid"]) is None, f"old gid back at epoch {d['epoch']}"
    # The mon saw it go silent: laggy, then replaced (in one proposal, as Ceph does).
    mon_log = c.mon.log()
    assert f" marking {old['gid']} {old['addr']} mds.0.{old['incarnation']} up:active laggy" \
        in mon_log
    assert f"Replacing daemon mds.{name} as rank 0 with standby daemon " \
        f"mds.{active(replaced)['name']}" in mon_log


def test_standby_replay_follower_takes_over(cluster):
    """allow_standby_replay: a follower appears for rank 0; kill -9 the active and the
    follower's gid (same process, no respawn) becomes up:active; the spare standby then
    becomes the new follower."""
    c = cluster
    c.cli("fs", "set", "cephfs", "allow_standby_replay", "true", check=True)
    dump = c.wait_map(lambda d: follower(d) is not None, WAIT, "a standby-replay follower")
    first = dump["epoch"]
    seen = c.fs_dump()
    f = follower(seen)
    assert f is not None and f["state"] == "up:standby-replay" and f["rank"] == 0
    assert mdsmap(seen)["flags_state"]["allow_standby_replay"] is True
    old = active(seen)

    c.mds(old["name"]).kill(signal.SIGKILL)
    c.mds(old["name"]).wait_exit()
    c.wait_map(lambda d: active(d) and active(d)["gid"] == f["gid"], WAIT,
               "the follower to take rank 0")
    c.wait_map(lambda d: follower(d) is not None, WAIT, "the spare standby to follow rank 0")

    after = c.fs_dump()
    assert active(after)["gid"] == f["gid"] and active(after)["name"] == f["name"]
    spare = follower(after)
    assert spare["name"] not in (old["name"], f["name"])
    assert after["standbys"] == []
    c.check_history(first)


def test_insufficient_standby_raised_and_cleared(cluster_factory):
    """standby_count_wanted 2 with one standby: MDS_INSUFFICIENT_STANDBY; one more mds:
    cleared; kill -9 a standby: raised again."""
    c = cluster_factory().start(("a", "b"))
    code = "MDS_INSUFFICIENT_STANDBY"
    assert c.health()["status"] == "HEALTH_OK"

    c.cli("fs", "set", "cephfs", "standby_count_wanted", "2", check=True)
    c.wait_for(lambda: code in c.health_codes(), WAIT, f"{code} to be raised")
    h = c.health()
    assert h["status"] == "HEALTH_WARN"
    check = h["checks"][code]
    assert check["severity"] == "HEALTH_WARN"
    assert check["summary"]["message"] == "insufficient standby MDS daemons available"
    assert [d["message"] for d in check["detail"]] == ["have 1; want 1 more"]
    plain = c.cli("health", "detail", check=True).stdout
    assert plain.startswith("HEALTH_WARN") and code in plain

    c.start_mds("c")
    c.wait_for(lambda: code not in c.health_codes(), WAIT, f"{code} to clear")
    assert c.health()["status"] == "HEALTH_OK"
    assert len(c.fs_dump()["standbys"]) == 2

    standby = sorted(standby_names(c.dump()))[0]
    c.mds(standby).kill(signal.SIGKILL)
    c.wait_for(lambda: code in c.health_codes(), WAIT, f"{code} to be raised again")
    h = c.health()
    assert code in h["checks"]
    assert h["checks"][code]["detail"][0]["message"] == "have 1; want 1 more"
    assert info_by_name(c.fs_dump(), standby) is None


def _contiguous(d: dict) -> bool:
    m = mdsmap(d)
    return sorted(m["in"]) == list(range(len(m["in"])))


def test_max_mds_grow_and_shrink_without_rank_holes(cluster_factory):
    """max_mds 1 -> 2 -> 3 with enough standbys, then 3 -> 1: ranks are always 0..n-1, the
    shrunk ranks end in `stopped`, and their daemons come back as standbys."""
    c = cluster_factory().start(("a", "b", "c", "d"))
    first = c.epoch()
    for n in (2, 3):
        c.cli("fs", "set", "cephfs", "max_mds", str(n), check=True)
        c.wait_map(lambda d, n=n: _contiguous(d) and mdsmap(d)["max_mds"] == n
                   and all_active(d), WAIT, f"{n} active ranks")
        dump = c.fs_dump()
        m = mdsmap(dump)
        assert m["max_mds"] == n and sorted(m["in"]) == list(range(n))
        assert len(m["up"]) == n and m["failed"] == []
        assert len(dump["standbys"]) == 4 - n
    holders = {r: holder(dump, "cephfs", r)["name"] for r in (0, 1, 2)}

    c.cli("fs", "set", "cephfs", "max_mds", "1", check=True)
    c.wait_map(lambda d: _contiguous(d) and mdsmap(d)["in"] == [0] and all_active(d)
               and len(d["standbys"]) == 3, 2 * WAIT, "the shrink to one rank")
    dump = c.fs_dump()
    m = mdsmap(dump)
    assert m["max_mds"] == 1 and m["in"] == [0] and list(m["up"]) == ["mds_0"]
    assert {1, 2} <= set(m["stopped"])
    assert holder(dump)["name"] == holders[0]  # rank 0 was never touched
    assert standby_names(dump) == {holders[1], holders[2]} | ({"a", "b", "c", "d"}
                                                               - set(holders.values()))
    for d in c.check_history(first):
        assert _contiguous(d), f"rank hole at epoch {d['epoch']}: in={mdsmap(d)['in']}"


def test_two_filesystems_share_the_standbys(cluster_factory):
    """Two file systems, two standbys: kill the active of each in turn; each gets one."""
    c = cluster_factory().start(("a",))
    c.cli("fs", "new", "second", "second_metadata", "second_data", check=True)
    for name in ("b", "c", "d"):
        c.start_mds(name, wait=False)
    c.wait_map(lambda d: active(d, "cephfs") and active(d, "second")
               and len(d["standbys"]) == 2, WAIT, "both file systems active, two standbys")
    dump = c.fs_dump()
    first = dump["epoch"]
    assert sorted(f["mdsmap"]["fs_name"] for f in dump["filesystems"]) == ["cephfs", "second"]
    standbys = standby_names(dump)

    for fs in ("cephfs", "second"):
        old = active(dump, fs)
        c.mds(old["name"]).kill(signal.SIGKILL)
        dump = c.wait_map(lambda d, fs=fs, old=old: active(d, fs)
                          and active(d, fs)["gid"] != old["gid"], WAIT,
                          f"a standby to take {fs}:0")
        new = active(c.fs_dump(), fs)
        assert new["name"] in standbys
        standbys.discard(new["name"])
    dump = c.fs_dump()
    assert standby_names(dump) == set() and standbys == set()
    assert active(dump, "cephfs")["name"] != active(dump, "second")["name"]
    c.check_history(first)


def test_restarted_mon_keeps_the_map_and_gives_a_fresh_grace(cluster):
    """kill -9 the mon, keep it down for 3.5 x grace, start it again: same fs, same ranks
    (same gids), epoch the same or later; nobody is failed for having been silent while the
    mon was away."""
    c = cluster
    before = c.fs_dump()
    gids = sorted(i["gid"] for i in before["standbys"])
    rank0 = active(before)
    mon_log_len = len(c.mon.log())

    c.restart_mon(signal.SIGKILL, down_for=3.5 * c.grace)

    after = c.fs_dump()
    assert after["epoch"] >= before["epoch"]
    assert [f["mdsmap"]["fs_name"] for f in after["filesystems"]] == ["cephfs"]
    assert mdsmap(after)["in"] == [0] and mdsmap(after)["up"] == mdsmap(before)["up"]
    # The daemons reconnect with their gids; for longer than grace + mon_down_grace nothing
    # is failed, replaced or re-booted.
    def same(d: dict) -> bool:
        return (active(d) is not None and active(d)["gid"] == rank0["gid"]
                and sorted(i["gid"] for i in d["standbys"]) == gids)

    c.holds_for(same, 4 * c.grace, "the map from before the restart")
    for name in ("a", "b", "c"):
        c.wait_for(lambda name=name: "reconnected to the monitor" in c.mds(name).log(), WAIT,
                   f"mds.{name} to reconnect")
    c.holds_for(same, 2 * c.grace, "the map after every daemon reconnected")
    new_log = c.mon.log()[mon_log_len:]
    assert "mon store loaded" in new_log
    for bad in ("laggy", "Replacing daemon", "is removed because", "mds boot"):
        assert bad not in new_log, f"{bad!r} in the log of the restarted mon"
    assert c.health()["status"] == "HEALTH_OK"


def test_sigterm_is_a_clean_shutdown(cluster):
    """SIGTERM of the active: it says down:dne, exits 0 (no respawn), and the mon fails it at
    once rather than after the grace ('laggy', 'Replacing'). Like Ceph, the cluster log says
    nothing of the shutdown itself (M7), only of the standby taking the rank."""
    c = cluster
    before = c.fs_dump()
    old = active(before)
    name = old["name"]

    c.mds(name).kill(signal.SIGTERM)
    assert c.mds(name).wait_exit(WAIT) == 0
    dump = c.wait_map(lambda d: active(d) and active(d)["gid"] != old["gid"], WAIT,
                      "a standby to take rank 0")
    assert info_by_name(dump, name) is None

    mon_log = c.mon.log()
    assert "down:dne from mds, failing it" in mon_log
    assert "is shutting down" not in mon_log
    assert f"Standby daemon mds.{active(dump)['name']} assigned to filesystem" in mon_log
    assert f"Replacing daemon mds.{name}" not in mon_log
    assert f"marking {old['gid']} " not in mon_log  # " marking <gid> <addr> ... laggy"
    mds_log = c.mds(name).log()
    assert "shutting down on signal" in mds_log and "respawn!" not in mds_log

    # A standby goes the same way.
    standby = sorted(standby_names(dump))[0]
    c.mds(standby).kill(signal.SIGTERM)
    assert c.mds(standby).wait_exit(WAIT) == 0
    after = c.fs_dump()
    assert info_by_name(after, standby) is None and info_by_name(after, name) is None
    assert f"mds.{standby} is removed because" not in c.mon.log()
    c.check_history(before["epoch"])


@pytest.mark.parametrize("form", ["gid", "name", "0", "1:0", "cephfs:0"])
def test_mds_fail_forms_cause_a_failover(cluster_factory, form):
    """`mdsemu mds fail <gid|name|rank|fscid:rank|fs:rank>`: the holder of rank 0 is failed,
    a standby takes over, and the failed daemon respawns (same pid) as a standby."""
    c = cluster_factory().start(("a", "b"))
    dump = c.fs_dump()
    old = active(dump)
    pid = c.pid_of(old["name"])
    arg = {"gid": str(old["gid"]), "name": old["name"]}.get(form, form)

    res = c.cli("mds", "fail", arg)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    c.wait_map(lambda d: active(d) and active(d)["gid"] != old["gid"]
               and (i := info_by_name(d, old["name"])) and i["state"] == "up:standby"
               and i["gid"] != old["gid"], WAIT, f"failover after `mds fail {arg}`")

    after = c.fs_dump()
    assert active(after)["name"] != old["name"]
    assert info_by_gid(after, old["gid"]) is None
    assert c.pid_of(old["name"]) == pid and c.mds(old["name"]).alive()
    assert f"daemon mds.{old['name']} marked failed by client.admin" in c.mon.log()
    c.check_history(dump["epoch"])


def test_T0_mds_fail_with_ceph_timings_gives_a_new_holder_at_once(cluster_factory):
    """T0 with the ceph profile (5 s mon tick): the monitor ticks right after committing
    `mds fail` (Ceph's on_active), so the standby holds rank 0 well under a second later."""
    c = cluster_factory(profile="ceph").start(("a", "b"))
    before = c.dump()
    old = active(before)
    t0 = time.monotonic()
    rc, outs, _ = c.query("mds", "fail", old["name"])
    assert rc == 0, outs
    new = holder(c.dump())
    took = time.monotonic() - t0
    assert new is not None and new["name"] != old["name"], new
    assert took < 0.5, f"the new holder came {took:.2f}s after `mds fail`"
    c.wait_map(lambda d: active(d) and active(d)["name"] == new["name"], WAIT,
               "the new holder to become active")
    c.check_history(before["epoch"])


def test_mds_fail_of_unknown_daemon_changes_nothing(cluster_factory):
    c = cluster_factory().start(("a",))
    epoch = c.epoch()
    res = c.cli("mds", "fail", "nosuchdaemon")
    assert res.returncode == 0
    assert "does not exist" in res.stderr
    assert c.fs_dump()["epoch"] == epoch


def test_legacy_standby_replay_options_from_conf(cluster_factory):
    """Seed 001: `mds_standby_replay = true` and `mds_standby_for_name = a` in [mds.b] make
    mds.b follow mds.a's rank without the fs flag, and take it over when mds.a dies."""
    c = cluster_factory(conf={"mds.b": {"mds standby replay": "true",
                                        "mds standby for name": "a"}})
    c.start(("a", "b", "c"))
    dump = c.wait_map(lambda d: follower(d) is not None, WAIT, "mds.b to follow rank 0")
    assert follower(dump)["name"] == "b"
    assert mdsmap(dump)["flags_state"]["allow_standby_replay"] is False
    first = dump["epoch"]
    c.mds("a").kill(signal.SIGKILL)
    c.wait_map(lambda d: active(d) and active(d)["name"] == "b", WAIT, "mds.b to take rank 0")
    after = c.fs_dump()
    assert active(after)["gid"] == follower(dump)["gid"]
    assert standby_names(after) == {"c"}
    c.check_history(first)


def test_health_and_dump_agree_after_failover(cluster):
    """`health detail -f json` has Ceph's layout and `fs status -f json` names the same
    active as `fs dump` after a failover."""
    c = cluster
    old = c.active_name()
    c.mds(old).kill(signal.SIGKILL)
    c.wait_map(lambda d: active(d) and active(d)["name"] != old, WAIT, "a failover")
    dump = c.fs_dump()
    h = c.health()
    assert set(h) >= {"status", "checks"} and h["status"] == "HEALTH_OK"
    status = json.loads(c.cli("fs", "status", fmt="json", check=True).stdout)
    assert json.dumps(status).count(active(dump)["name"]) >= 1
