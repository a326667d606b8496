"""Where the NFS heads run (issue 11 item 7): each head reports to the monitor, and `mdsemu nfs
cluster ls|info` shows them as Ceph's mgr nfs module does (cluster id = the RADOS_KV
namespace, `backend` entries with hostname, ip and port, no virtual IP); an unknown cluster
is ENOENT "cluster does not exist"."""

from __future__ import annotations

import json
import socket
import subprocess

import pytest

from tests.integration.cluster import wait_for
from tests.integration.test_nfs_heads import DB, GRACE, Heads

pytestmark = [pytest.mark.processes, pytest.mark.timeout(120)]


def test_heads_show_in_nfs_cluster_ls_and_info(cluster_factory):
    c = cluster_factory()
    c.vstart("--mds", "1")
    res = subprocess.run([*GRACE, "-c", str(c.conf_path), *DB, "add", "a", "b"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    h = Heads(c)
    try:
        assert c.cli("nfs", "cluster", "ls", check=True).stdout == "[]\n"
        h.start("a")
        h.start("b")
        expected = {"ganesha": {"virtual_ip": None, "backend": [
            {"hostname": socket.gethostname(), "ip": "127.0.0.1", "port": port}
            for port in sorted(h.ports.values())]}}  # one host: sorted by port here

        def info():
            out = json.loads(c.cli("nfs", "cluster", "info", "ganesha").stdout or "{}")
            if "ganesha" in out:
                out["ganesha"]["backend"].sort(key=lambda b: b["port"])
            return out

        wait_for(lambda: info() == expected, 30, "both heads in nfs cluster info", info)
        assert json.loads(c.cli("nfs", "cluster", "ls", check=True).stdout) == ["ganesha"]
        assert json.loads(c.cli("nfs", "cluster", "info", check=True).stdout).keys() == \
            {"ganesha"}
        res = c.cli("nfs", "cluster", "info", "nope")
        assert (res.returncode, res.stderr.strip()) == (2, "Error ENOENT: cluster does not exist")
    finally:
        h.stop_all()
