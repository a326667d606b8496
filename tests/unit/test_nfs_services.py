"""The NFS heads the monitor knows of (mon/nfs_services.py) and `nfs cluster ls|info` in the
layout of Ceph's mgr nfs module (cluster.py show_nfs_cluster_info; ClusterNotFound is ENOENT
"cluster does not exist"), with plain numbers for time (issue 11 item 7)."""

from __future__ import annotations

import errno
import json

from common.config import Config
from mon import commands
from mon.mds_monitor import MDSMonitor
from mon.nfs_services import SERVICE_GRACE, NFSServices


def cmd(svc: NFSServices, args: list[str], now: float, fmt: str = "plain"):
    m = MDSMonitor(Config("mon.a"))
    return commands.run(m, args, fmt, now=now, extra={"nfs": svc}).reply


def test_heads_report_and_show_as_the_mgr_nfs_module_does():
    svc = NFSServices()
    svc.report("ganesha", "b", "host1", "127.0.0.1", 2050, {"cur": 3, "rec": 0}, now=1.0)
    svc.report("ganesha", "a", "host1", "127.0.0.1", 2049, {}, now=2.0)
    svc.report("other", "x", "host2", "10.0.0.2", 2049, {}, now=2.0)
    assert cmd(svc, ["nfs", "cluster", "ls"], 3.0) == (0, "", '[\n    "ganesha",\n    "other"\n]\n')
    assert cmd(svc, ["nfs", "cluster", "ls"], 3.0, "json")[2] == '["ganesha","other"]'
    rc, _, out = cmd(svc, ["nfs", "cluster", "info", "ganesha"], 3.0)
    assert rc == 0 and out.startswith('{\n    "ganesha": {\n        "virtual_ip": null,')
    assert json.loads(out) == {"ganesha": {"virtual_ip": None, "backend": [
        {"hostname": "host1", "ip": "127.0.0.1", "port": 2049},
        {"hostname": "host1", "ip": "127.0.0.1", "port": 2050}]}}
    assert set(json.loads(cmd(svc, ["nfs", "cluster", "info"], 3.0, "json")[2])) == \
        {"ganesha", "other"}


def test_an_unknown_cluster_and_bad_usage_are_refused():
    svc = NFSServices()
    assert cmd(svc, ["nfs", "cluster", "info", "nope"], 0.0) == \
        (-errno.ENOENT, "cluster does not exist", "")
    assert cmd(svc, ["nfs", "cluster", "ls"], 0.0) == (0, "", "[]\n")
    assert cmd(svc, ["nfs", "cluster", "frob"], 0.0)[0] == -errno.EINVAL


def test_a_silent_head_is_forgotten_after_the_service_grace():
    svc = NFSServices()
    svc.report("ganesha", "a", "h", "127.0.0.1", 2049, {}, now=0.0)
    assert svc.clusters(SERVICE_GRACE) == ["ganesha"]
    assert svc.clusters(SERVICE_GRACE + 0.1) == []
