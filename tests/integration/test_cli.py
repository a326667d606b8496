"""The `mdsemu` command line as users and scripts see it: exit status = errno with Ceph's
"Error EXXX: ..." on stderr, parseable JSON, options anywhere, a clean one-line error when the
monitor is unreachable or ceph.conf is bad, and vstart/vstop.

Read-only commands share one cluster (module scope): none of them changes the maps.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.cluster import (
    MDSEMU,
    Cluster,
    active,
    info_by_name,
    pid_alive,
    pids_mentioning,
    read_pid,
    run_cli,
)

pytestmark = [pytest.mark.processes, pytest.mark.timeout(60)]


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {stderr!r}"
    assert "Traceback" not in stderr
    return lines[0]


# -- errors from the monitor: exit status = errno -------------------------------------------
def test_fs_get_unknown_fs_is_enoent(shared_cluster):
    res = shared_cluster.cli("fs", "get", "nosuchfs")
    assert res.returncode == errno.ENOENT
    assert one_line_error(res.stderr).startswith("Error ENOENT: ")
    assert "nosuchfs" in res.stderr
    assert res.stdout == ""


@pytest.mark.parametrize("words", [
    ["fs", "set", "cephfs", "max_mds", "notanumber"],
    ["frobnicate"],
    ["fs", "get"],
    ["fs", "set", "cephfs", "no_such_variable", "1"],
])
def test_malformed_commands_are_einval(shared_cluster, words):
    before = shared_cluster.fs_dump()["filesystems"][0]["mdsmap"]
    res = shared_cluster.cli(*words)
    assert res.returncode == errno.EINVAL, res.stderr
    assert one_line_error(res.stderr).startswith("Error EINVAL: ")
    after = shared_cluster.fs_dump()["filesystems"][0]["mdsmap"]
    assert after["max_mds"] == 1 and after["epoch"] == before["epoch"]  # nothing changed


def test_issue9_read_only_commands_as_ceph_prints_them(shared_cluster):
    res = shared_cluster.cli("fs", "status", "nosuchfs")  # O5: the mgr's EINVAL
    assert res.returncode == errno.EINVAL and res.stdout == ""
    assert one_line_error(res.stderr) == "Error EINVAL: Invalid filesystem: nosuchfs"
    res = shared_cluster.cli("fs", "status")
    assert res.returncode == 0 and "\n\nSTANDBY MDS\n" in res.stdout
    res = shared_cluster.cli("fs", "lsflags", "cephfs")
    assert (res.returncode, res.stdout) == (0, " joinable allow_snaps allow_multimds_snaps\n")
    res = shared_cluster.cli("mds", "ok-to-stop", "b")  # A8: a standby
    assert (res.returncode, res.stderr) == (0, "should be safe to stop [b]\n")
    res = shared_cluster.cli("mds", "ok-to-stop", "a")  # the only active, one standby left
    assert (res.returncode, res.stderr) == (0, "should be safe to stop [a]\n")
    res = shared_cluster.cli("fs", "dump", "999999")  # never reached: ENOENT, no message
    assert res.returncode == errno.ENOENT and one_line_error(res.stderr) == "Error ENOENT: "


def test_success_is_exit_zero(shared_cluster):
    res = shared_cluster.cli("fs", "get", "cephfs")
    assert res.returncode == 0 and "Traceback" not in res.stderr
    assert "cephfs" in res.stdout


# -- output formats -------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "json-pretty"])
@pytest.mark.parametrize("words", [
    ["fs", "dump"], ["fs", "ls"], ["fs", "get", "cephfs"], ["fs", "status"], ["mds", "stat"],
    ["health"], ["health", "detail"], ["status"], ["osd", "blocklist", "ls"],
])
def test_json_formats_parse(shared_cluster, fmt, words):
    res = shared_cluster.cli(*words, fmt=fmt)
    assert res.returncode == 0, res.stderr
    value = json.loads(res.stdout)
    assert value is not None
    if fmt == "json-pretty":
        assert not value or "\n    " in res.stdout  # indented
    else:
        assert res.stdout.count("\n") <= 1


def test_fs_dump_json_has_cephs_layout(shared_cluster):
    dump = shared_cluster.fs_dump()
    assert {"epoch", "default_fscid", "compat", "feature_flags", "standbys",
            "filesystems"} <= set(dump)
    fs = dump["filesystems"][0]
    assert fs["id"] == 1 and fs["mdsmap"]["fs_name"] == "cephfs"
    assert {"in", "up", "failed", "stopped", "damaged", "info", "max_mds",
            "flags_state"} <= set(fs["mdsmap"])
    assert active(dump)["name"] == "a"
    assert [s["name"] for s in dump["standbys"]] == ["b"]


def test_health_json_has_cephs_layout(shared_cluster):
    h = shared_cluster.health()
    assert h["status"] == "HEALTH_OK"
    assert h["checks"] == {}


@pytest.mark.parametrize("argv", [
    ["fs", "dump", "-c", "{conf}", "-f", "json"],
    ["-c", "{conf}", "-f", "json", "fs", "dump"],
    ["fs", "-f", "json", "dump", "-c", "{conf}"],
    ["--conf", "{conf}", "fs", "dump", "--format", "json"],
    ["fs", "dump", "--conf={conf}", "--format=json"],
])
def test_options_before_or_after_the_command_words(shared_cluster, argv):
    conf = str(shared_cluster.conf_path)
    res = run_cli([a.format(conf=conf) for a in argv])
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["epoch"] == shared_cluster.epoch()


def test_ceph_conf_from_the_environment(shared_cluster):
    env = dict(os.environ, CEPH_CONF=str(shared_cluster.conf_path))
    res = run_cli(["mds", "stat"], env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("cephfs:1 {0=a=up:active}")


# -- no monitor, bad configuration ----------------------------------------------------------
@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that refuses connections for as long as the test runs (bound,
    never listening, so nobody else can take it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.mark.parametrize("words", [["fs", "dump"], ["health"], ["mds", "fail", "0"], ["-w"]])
def test_unreachable_mon_is_a_one_line_error(tmp_path, closed_port, words):
    conf = tmp_path / "ceph.conf"
    conf.write_text(f"[global]\nmon_host = 127.0.0.1:{closed_port}\n")
    res = run_cli(["-c", str(conf), "--connect-timeout", "1", *words], timeout=20)
    assert res.returncode != 0
    line = one_line_error(res.stderr)
    assert f"127.0.0.1:{closed_port}" in line
    assert "connect" in line or "reach" in line
    assert res.stdout == ""


def test_stopped_mon_is_a_one_line_error(cluster_factory):
    """A monitor that accepts TCP connections but never answers (kill -STOP): the connect
    timeout still bounds the command."""
    c = cluster_factory()
    c.start(mds=(), fs=None)
    c.mon.kill(signal.SIGSTOP)
    try:
        res = c.cli("--connect-timeout", "1", "mds", "stat", timeout=20)
        assert res.returncode == errno.ETIMEDOUT
        assert "no answer" in one_line_error(res.stderr)
    finally:
        c.mon.kill(signal.SIGCONT)
    assert c.cli("mds", "stat").returncode == 0


FAKE_MON = """
import sys, trio
from common import messages as m
from common.net import Connection

async def handle(stream):
    conn = Connection(stream)
    await conn.recv()
    await conn.send(m.HelloOk(global_id=1, fsid="fake", mon="mon.a"))
    await conn.recv()  # the command
    if sys.argv[1] == "close":
        await stream.aclose()
    else:
        await trio.sleep_forever()

async def main():
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    print(listeners[0].socket.getsockname()[1], flush=True)
    await trio.serve_listeners(handle, listeners)

trio.run(main)
"""


@pytest.mark.parametrize("behaviour", ["close", "hang"])
def test_mon_lost_mid_command_is_a_one_line_error(tmp_path, behaviour):
    """A monitor that says hello and then closes the connection (or never answers) while a
    command is in flight: one line, ETIMEDOUT, no traceback."""
    fake = subprocess.Popen([sys.executable, "-c", FAKE_MON, behaviour], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        port = int(fake.stdout.readline())
        conf = tmp_path / "ceph.conf"
        conf.write_text(f"[global]\nmon_host = 127.0.0.1:{port}\nmon_client_timeout = 1\n")
        res = run_cli(["-c", str(conf), "--connect-timeout", "1", "fs", "dump"], timeout=20)
        assert res.returncode == errno.ETIMEDOUT
        line = one_line_error(res.stderr)
        assert ("lost the connection" if behaviour == "close" else "no reply") in line
    finally:
        fake.kill()
        fake.wait()
        fake.stdout.close()


def test_bad_ceph_conf_names_file_and_line(tmp_path):
    conf = tmp_path / "ceph.conf"
    conf.write_text("[global]\nmon_host = 127.0.0.1:1\nthis line is not an option\n")
    res = run_cli(["-c", str(conf), "fs", "dump"])
    assert res.returncode == errno.EINVAL
    line = one_line_error(res.stderr)
    assert f"{conf}:3" in line


def test_missing_ceph_conf_names_the_file(tmp_path):
    conf = tmp_path / "nonexistent.conf"
    res = run_cli(["-c", str(conf), "fs", "dump"])
    assert res.returncode != 0
    assert str(conf) in one_line_error(res.stderr)


# -- vstart / vstop -------------------------------------------------------------------------
def _vstart_pids(d) -> dict[str, int]:
    return {f.stem: read_pid(f) for f in (d / "run").glob("*.pid")}


def test_vstart_then_vstop_leaves_no_process(cluster_factory):
    c: Cluster = cluster_factory()
    res = c.vstart("--mds", "2")
    assert "cluster is up" in res.stdout
    pids = _vstart_pids(c.dir)
    assert set(pids) == {"mon.a", "osd.0", "mds.a", "mds.b"}
    assert all(pid_alive(p) for p in pids.values())
    dump = c.fs_dump()
    assert active(dump) is not None and len(dump["standbys"]) == 1

    # vstop copes with a stopped daemon too, even one the mon has dropped meanwhile: on
    # SIGTERM + SIGCONT it must exit, not respawn as a new standby.
    standby = dump["standbys"][0]["name"]
    c.mds(standby).kill(signal.SIGSTOP)
    c.wait_map(lambda d: info_by_name(d, standby) is None, 10,
               f"the mon to drop the stopped mds.{standby}")
    res = run_cli(["vstop", "-d", str(c.dir)], timeout=30)
    assert res.returncode == 0, res.stderr
    assert not [n for n, p in pids.items() if pid_alive(p)]
    assert pids_mentioning(f"{c.dir}{os.sep}") == []
    for name in ("a", "b"):  # a clean stop, not a respawn
        assert "respawn!" not in c.log(f"mds.{name}"), f"mds.{name} respawned during vstop"
        assert "shutting down on signal" in c.log(f"mds.{name}")
    assert _vstart_pids(c.dir) == {}


def test_vstart_twice_on_one_dir_is_eexist(cluster_factory):
    c: Cluster = cluster_factory()
    c.vstart("--mds", "1")
    pids = _vstart_pids(c.dir)
    res = run_cli(["vstart", "-d", str(c.dir), "--profile", "fast", "--mds", "1"])
    assert res.returncode == errno.EEXIST
    assert "already running" in one_line_error(res.stderr)
    assert _vstart_pids(c.dir) == pids  # the first cluster is untouched and still serves
    assert all(pid_alive(p) for p in pids.values())
    assert active(c.fs_dump()) is not None


def test_watch_follows_the_cluster_log(cluster_factory):
    """`mdsemu -w`: the status, then the cluster log as it is written (Ceph's wording, with
    [WRN] for the replacement); Ctrl-C ends it quietly."""
    c: Cluster = cluster_factory().start(("a", "b"))
    out = c.dir / "watch.txt"
    with open(out, "w") as f:
        watch = subprocess.Popen(MDSEMU + ["-c", str(c.conf_path), "-w"], stdout=f,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        c.wait_for(lambda: "cluster:" in out.read_text() or "health:" in out.read_text(), 10,
                   "the status at the top of `mdsemu -w`")
        c.mds("a").kill(signal.SIGKILL)
        c.wait_for(lambda: "daemon mds.b is now active in filesystem cephfs as rank 0" in
                   out.read_text(), 10, "the failover in -w")
        # Health changes are logged as Ceph logs them (Monitor::log_health)
        cleared = "[INF] Health check cleared: FS_DEGRADED (was: 1 filesystem is degraded)"
        c.wait_for(lambda: cleared in out.read_text(), 10, "FS_DEGRADED cleared in -w")
        text = out.read_text()
        assert "[WRN] Replacing daemon mds.a as rank 0 with standby daemon mds.b" in text
        assert "[INF] daemon mds.b is now active in filesystem cephfs as rank 0" in text
        assert "[WRN] Health check failed: 1 filesystem is degraded (FS_DEGRADED)" in text
        assert text.index("Health check failed: 1 filesystem is degraded") < text.index(
            "daemon mds.b is now active") < text.index(cleared)
        last = c.cli("log", "last", "50", check=True).stdout
        assert "[WRN] Health check failed: 1 filesystem is degraded (FS_DEGRADED)" in last
        assert cleared in last
        watch.send_signal(signal.SIGINT)
        assert watch.wait(10) == 0
        assert "Traceback" not in out.read_text()
    finally:
        watch.kill()
        watch.wait()


def test_daemon_command_goes_through_the_admin_socket(shared_cluster):
    """`mdsemu daemon mds.b ...` (Ceph's `ceph daemon`): no monitor in the way."""
    res = shared_cluster.cli("daemon", "mds.b", "status", fmt="json")
    assert res.returncode == 0, res.stderr
    status = json.loads(res.stdout)
    assert status["state"] == "up:standby" and status["whoami"] == -1
    asok = shared_cluster.dir / "run" / "mds.b.asok"
    res = shared_cluster.cli("daemon", str(asok), "config", "get", "mds_beacon_grace",
                             fmt="json")
    assert res.returncode == 0 and json.loads(res.stdout) == {"mds_beacon_grace": "1.0"}
    res = shared_cluster.cli("daemon", "mds.nosuch", "status")
    assert res.returncode == errno.ECONNREFUSED and "admin socket" in res.stderr
