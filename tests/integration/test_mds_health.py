"""Health the active MDS reports about itself, with real processes (fast profile:
osd_op_complaint_time 2 s; ref H8, Ceph's Beacon::notify_health)."""

from __future__ import annotations

import errno
import re
import signal
import subprocess

import pytest

from tests.integration.cluster import MDSEMU, Cluster, active
from tests.integration.test_metadata import _raw_sessions, ls

pytestmark = [pytest.mark.processes, pytest.mark.timeout(180)]


def _checks(c: Cluster) -> dict:
    return c.health()["checks"]


def _blocklist(c: Cluster) -> list[str]:
    return [e["addr"] for e in c.cli_json("osd", "blocklist", "ls")]


def test_H8_stalled_osd_raises_slow_metadata_io_and_defers_evictions_not_a_failover(
        cluster_factory):
    # session_autoclose 15 s: the idle client falls due well after the osd ops turn slow,
    # however long the writer process takes to start on a loaded machine
    c = cluster_factory(conf={"global": {"mds_session_autoclose": "15"}},
                        cephx=False).start(("a", "b"))  # raw protocol sessions: auth none
    before = active(c.fs_dump())
    idle = _raw_sessions(before["addr"], 1)  # client.9000: never renews, due at autoclose
    bad = c.cli("tell", "mds.a", "session", "config", "9000", "timeout", "soon")
    assert bad.returncode == errno.EINVAL and "Invalid config for timeout: soon" in bad.stderr
    assert c.cli("tell", "mds.a", "session", "config", "9000", "timeout", "0").returncode == 0
    [session] = c.cli_json("tell", "mds.a", "session", "ls")
    assert session["client_metadata"]["timeout"] == "0"  # (mds_defer_session_stale: no effect)
    osd = c.daemons["osd.0"]
    writer = None
    osd.kill(signal.SIGSTOP)
    try:
        writer = subprocess.Popen(
            MDSEMU + ["-c", str(c.conf_path), "client", "--fs", "cephfs", "--timeout", "90",
                      "mkdir", "/stalled"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        check = c.wait_for(lambda: _checks(c).get("MDS_SLOW_METADATA_IO"), 30,
                           "MDS_SLOW_METADATA_IO")
        assert check["severity"] == "HEALTH_WARN"
        assert check["summary"]["message"] == "1 MDSs report slow metadata IOs"
        assert re.fullmatch(r"mds\.a\(mds\.0\): \d+ slow metadata IOs are blocked > 2 secs, "
                            r"oldest blocked for \d+ secs", check["detail"][0]["message"])
        # client.9000 is past session_autoclose, but the osd is laggy: it is spared
        laggy = c.wait_for(lambda: _checks(c).get("MDS_CLIENTS_LAGGY"), 30, "MDS_CLIENTS_LAGGY")
        assert laggy["summary"]["message"] == "1 client(s) laggy due to laggy OSDs"
        assert laggy["detail"] == [{"message": "mds.a(mds.0): Client 9000 is laggy; not "
                                               "evicted because some OSD(s) is/are laggy"}]
        assert "127.0.0.1:0/9000" not in _blocklist(c)
        # beacons kept flowing: the same daemon holds the rank, never laggy
        now = active(c.fs_dump())
        assert now is not None and now["gid"] == before["gid"] and not now.get("laggy_since")
        assert writer.poll() is None  # its write waits for the journal
    finally:
        osd.kill(signal.SIGCONT)
        for s in idle:
            s.close()
    out, err = writer.communicate(timeout=90)
    assert writer.returncode == 0, err[-2000:]
    c.wait_for(lambda: "MDS_SLOW_METADATA_IO" not in _checks(c), 30, "the check to clear")
    c.wait_for(lambda: "127.0.0.1:0/9000" in _blocklist(c), 30, "the deferred eviction")
    c.wait_for(lambda: "MDS_CLIENTS_LAGGY" not in _checks(c), 30, "MDS_CLIENTS_LAGGY to clear")
    assert active(c.fs_dump())["gid"] == before["gid"]
    assert "stalled" in ls(c, "/")
    # the mon logged both ends of the check as Ceph's HealthMonitor does
    clog = c.cli("log", "last", "200", check=True).stdout
    assert ("Health check failed: 1 MDSs report slow metadata IOs (MDS_SLOW_METADATA_IO)"
            in clog)
    assert ("Health check cleared: MDS_SLOW_METADATA_IO (was: 1 MDSs report slow metadata IOs)"
            in clog)
