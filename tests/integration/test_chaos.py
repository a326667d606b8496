"""Fault injection and the thrasher with real processes (fast profile, grace 1 s).

What users see: `mdsemu fs dump -f json`, the daemons' pids and logs, `mdsemu thrash`'s exit
status and report.json."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import pytest

from client import nemesis
from tests.integration.cluster import (
    MDSEMU,
    active,
    clean_env,
    info_by_name,
    pids_mentioning,
    proc_state,
    run_cli,
    wait_for,
)

pytestmark = [pytest.mark.processes]

WAIT = 15.0


@pytest.mark.timeout(90)
def test_ms_blackhole_mon_fails_the_active_over_and_clearing_it_brings_it_back(cluster):
    """`config set mds.X ms_blackhole_mon true` at run time: the active's beacons vanish while
    its process runs on (not stopped, same pid); the mon replaces it after the grace. Clearing
    the option (`config rm` on the mon, which can no longer tell it; `daemon mds.X config set`
    through the admin socket) lets it hear the map: it respawns in place as a standby."""
    c = cluster
    old = active(c.fs_dump())
    name, pid = old["name"], c.pid_of(old["name"])
    c.cli("config", "set", f"mds.{name}", "ms_blackhole_mon", "true", check=True)
    replaced = c.wait_map(lambda d: active(d) and active(d)["gid"] != old["gid"], WAIT,
                          "a standby to replace the blackholed active")
    assert info_by_name(replaced, name) is None
    assert c.mds(name).alive() and proc_state(pid) != "T"  # running, just unheard
    assert f"marking {old['gid']} {old['addr']} mds.0.{old['incarnation']} up:active laggy" \
        in c.mon.log()

    c.cli("config", "rm", f"mds.{name}", "ms_blackhole_mon", check=True)
    c.cli("daemon", f"mds.{name}", "config", "set", "ms_blackhole_mon", "false", check=True)
    back = c.wait_map(lambda d: (i := info_by_name(d, name)) and i["state"] == "up:standby",
                      WAIT, f"mds.{name} to come back as a standby")
    assert info_by_name(back, name)["gid"] != old["gid"]
    assert c.pid_of(name) == pid and "respawn" in c.mds(name).log()
    assert active(c.fs_dump())["gid"] == active(replaced)["gid"]


# A seed whose 20 faults use every kind (max_mds and the partitions included) in about 31 s
# of schedule (no max_mds change among its last faults, nor right before a restart of the
# monitor or the osd: its recovery is then seen before the final heal).
SEED, FAULTS = 5256, 20
THRASH = ["--delay", "1", "--max-revive-delay", "1.5", "--thrash-max-mds", "0.1"]


@pytest.mark.timeout(200)
def test_seeded_thrash_of_every_kind_recovers_loses_nothing_and_draws_the_timeline(
        cluster_factory, tmp_path):
    """`mdsemu thrash` on a vstart cluster with standby-replay (issue 13 item 5): the seeded
    schedule is printed first, 20 faults of every kind (kill -9, SIGSTOP below and beyond the
    grace, clean restarts, mds fail, max_mds, mon/osd restarts, osd pause, blackhole, socket
    failures, delays, one-way and two-way partitions of an active and the monitor, clients
    cut off from an active) are applied and healed, the cluster is HEALTH_OK within the bound and
    verify finds nothing lost: exit 0. report.json lists every fault with its target and
    recovery time; timeline.html has a lane per daemon and a marker per fault."""
    c = cluster_factory()
    c.vstart("--mds", "3", "--standby-replay")
    report = tmp_path / "report"
    res = run_cli(["-c", str(c.conf_path), "thrash", "--seed", str(SEED), "--faults",
                   str(FAULTS), *THRASH, "--clients", "2", "--report", str(report),
                   "--recovery-timeout", "30"], timeout=170)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"mdsemu thrash: seed {SEED}, {FAULTS} faults")
    schedule = lines[1:FAULTS + 1]
    # printed first, and the seeded schedule itself (fast profile: grace 1 s; 2 ranks possible)
    expected = nemesis.schedule(nemesis.Options(
        seed=SEED, faults=FAULTS, delay=1, max_revive_delay=1.5, thrash_max_mds=0.1,
        grace=1.0, ranks=2))
    assert schedule == [f.line() for f in expected]
    doc = json.loads((report / "report.json").read_text())
    assert doc["seed"] == SEED and doc["exit_status"] == 0
    faults = doc["faults"]
    assert [f["index"] for f in faults] == list(range(FAULTS))
    assert [f["kind"] for f in faults] == [f.kind for f in expected]
    assert {f["kind"] for f in faults} == set(nemesis.KINDS) | {nemesis.MAX_MDS}
    for f in faults:
        assert f["target"] and f["applied_at"] >= f["at"] - 0.01, f
        assert f["recovered_after"] is not None and f["recovered_after"] < 30, f
        assert f["clients_unanswered"] is not None and f["clients_unanswered"] < 30, f
    answered = [f["clients_answered_after"] for f in faults
                if f["clients_answered_after"] is not None]  # None: the load ended first
    assert len(answered) >= FAULTS // 2 and max(answered) < 30
    assert doc["recovery"]["seconds"] is not None
    assert doc["verify"]["violations"] == [] and doc["verify"]["acknowledged"] > 100
    assert sum(t["count"] for t in doc["totals"].values()) == FAULTS
    assert c.health()["status"] == "HEALTH_OK"
    page = (report / "timeline.html").read_text()
    labels = re.findall(r'text-anchor="end" font-size="12">([^<]+)<', page)
    assert labels == ["health", "clients", "faults", "mds.a", "mds.b", "mds.c", "mon.a",
                      "osd.0"]
    assert page.count("<title>fault ") == 2 * FAULTS and "<script" not in page
    assert "<title>mds.a: up:active " in page or "<title>mds.b: up:active " in page
    assert "<title>health: HEALTH_WARN " in page  # a failover is seen in the health band
    assert "and timeline.html" in lines[-1]
    assert lines[-2].startswith(f"  load: {doc['verify']['ops']} operations, "
                                f"{doc['verify']['acknowledged']} acknowledged; the longest")


@pytest.mark.timeout(60)
def test_client_side_options_from_ceph_conf(cluster_factory):
    """`[client] ms_blackhole_mds = true`: a filesystem client's messages to the MDS vanish
    (the session is never opened), so the command times out cleanly; the monitor side of
    the same client is untouched."""
    c = cluster_factory(conf={"client": {"ms_blackhole_mds": "true"}}).start(("a",))
    res = c.cli("client", "--timeout", "2", "mkdir", "/x", timeout=30)
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    assert "mdsemu client:" in res.stderr
    assert c.fs_dump()["epoch"] > 0  # the CLI still talks to the mon


def _thrash(c, report, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        MDSEMU + ["-c", str(c.conf_path), "thrash", "--seed", "5", "--delay", "0",
                  "--report", str(report), *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=clean_env())


def _stopped(c) -> list[str]:
    return [n for n in ("a", "b") if proc_state(c.pid_of(n)) == "T"]


@pytest.mark.timeout(90)
def test_ctrl_c_heals_every_fault_and_exits_130(cluster_factory, tmp_path):
    """Ctrl-C (SIGINT) in the middle of a long SIGSTOP: the thrasher resumes the daemon, stops
    its load and exits 130, as Jepsen's final generator heals before it gives up; its report
    says what ran, as a partial run."""
    c = cluster_factory()
    c.vstart("--mds", "2")
    p = _thrash(c, tmp_path / "r", "--faults", "3", "--thrash-weights", "stop_long=1")
    try:
        wait_for(lambda: _stopped(c), 30, "a daemon stopped by the thrasher")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130, out[-2000:] + err[-2000:]
    assert "interrupted; every fault healed" in err
    assert _stopped(c) == []
    load = f"{tmp_path / 'r'}/history.jsonl"
    assert pids_mentioning(load) == []  # the load went with it
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert (doc["exit_status"], doc["partial"], doc["verify"]) == (130, True,
                                                                   {"error": "interrupted"})
    assert 1 <= len(doc["faults"]) <= 3 and doc["faults"][0]["kind"] == "stop_long"
    assert all(f["healed_at"] is not None for f in doc["faults"])  # the heal on the way out
    assert "<svg" in (tmp_path / "r" / "timeline.html").read_text()


@pytest.mark.timeout(90)
def test_a_load_that_dies_stops_the_faults_heals_and_exits_2(cluster_factory, tmp_path):
    """The client load killed mid-run: the thrasher notices within seconds, heals, says why
    and exits 2 (nothing could be checked), rather than thrash on without a load."""
    c = cluster_factory()
    c.vstart("--mds", "2")
    p = _thrash(c, tmp_path / "r", "--faults", "200", "--thrash-weights", "stop_short=1")
    load = f"{tmp_path / 'r'}/history.jsonl"
    try:
        pids = wait_for(lambda: pids_mentioning(load), 30, "the client load")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 2, out[-2000:] + err[-2000:]
    assert "the client load died: exit status -9" in err
    assert _stopped(c) == []
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert doc["exit_status"] == 2 and "the client load died" in doc["verify"]["error"]
    assert len(doc["faults"]) < 200
