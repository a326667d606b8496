"""Issue 12 item 2, a real address: with NET_ADMIN (here: root in a private network namespace
made by `unshare -n`, as in a container with cap_add NET_ADMIN) the master adds the VIP to
its interface and announces it with gratuitous ARP, and deletes it when it stops being master;
the backup then adds it. Skipped when not root or `unshare -n` is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.processes, pytest.mark.timeout(90)]
ROOT = Path(__file__).resolve().parents[2]


def _netns_ok() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _netns_ok(), reason="needs root, unshare -n and ip (NET_ADMIN)")
def test_real_vip_added_announced_and_deleted_in_a_network_namespace(tmp_path):
    res = subprocess.run(["unshare", "-n", sys.executable, "-m",
                          "tests.integration.vip_netns_scenario", str(tmp_path)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.splitlines()[-1])
    assert out["a_took"] is not None  # a (priority 150) added 10.77.0.10/24 to v0
    assert out["garps"] == 5  # vrrp_garp_master_repeat, seen on the veth peer
    assert "added 10.77.0.10/24 to v0" in out["a_log"]
    assert "Sending/queueing gratuitous ARPs on v0 for 10.77.0.10" in out["a_log"]
    assert "deleted 10.77.0.10/24 from v0" in out["a_log"]  # clean stop: off the interface
    assert out["b_took"] is not None and out["b_took"] < 2  # after the skew: 0.08 s
    assert "added 10.77.0.10/24 to v0" in out["b_log"]
    assert out["after_stop"] is False
