"""The NFS heads the monitor knows of (mon/nfs_services.py) and `nfs cluster ls|info` in the
layout of Ceph's mgr nfs module (cluster.py show_nfs_cluster_info; ClusterNotFound is ENOENT
"cluster does not exist"), with plain numbers for time (issue 11 item 7)."""

from __future__ import annotations

import errno
import json

import pytest

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


def test_an_ingress_reported_by_the_heads_shows_its_virtual_ip_and_port():
    # Ceph (cluster.py): virtual_ip from the ingress service, then `port` (its frontend port)
    # and `monitor_port` only when the service has a second port (haproxy's monitor)
    svc = NFSServices()
    ingress = {"virtual_ip": "127.0.0.10", "port": 2049}
    svc.report("ganesha", "b", "h", "127.0.0.1", 4002, {}, now=1.0, ingress=ingress)
    svc.report("ganesha", "a", "h", "127.0.0.1", 4001, {}, now=1.0, ingress=ingress)
    svc.report("other", "x", "h", "127.0.0.1", 4003, {}, now=1.0)
    rc, _, out = cmd(svc, ["nfs", "cluster", "info"], 2.0)
    assert rc == 0
    assert out.startswith('{\n    "ganesha": {\n        "virtual_ip": "127.0.0.10",\n'
                          '        "backend": [')
    info = json.loads(out)
    assert info["ganesha"] == {"virtual_ip": "127.0.0.10", "port": 2049, "backend": [
        {"hostname": "h", "ip": "127.0.0.1", "port": 4001},
        {"hostname": "h", "ip": "127.0.0.1", "port": 4002}]}
    assert list(info["ganesha"]) == ["virtual_ip", "backend", "port"]
    assert info["other"] == {"virtual_ip": None, "backend": [
        {"hostname": "h", "ip": "127.0.0.1", "port": 4003}]}
    # a monitor port, when an ingress has one, comes after `port`; a prefix is dropped
    svc.report("ganesha", "a", "h", "127.0.0.1", 4001, {}, now=3.0,
               ingress={"virtual_ip": "10.0.0.250/24", "port": 2049, "monitor_port": 9049})
    info = json.loads(cmd(svc, ["nfs", "cluster", "info", "ganesha"], 3.0, "json")[2])
    assert list(info["ganesha"].items())[2:] == [("port", 2049), ("monitor_port", 9049)]
    assert info["ganesha"]["virtual_ip"] == "10.0.0.250"
    # the ingress goes with the heads that report it
    assert "port" not in svc.info("ganesha", 1.0 + SERVICE_GRACE + 1.0 + 3.0)


def test_a_heads_ingress_option():
    from nfs.daemon import _ingress

    assert _ingress("") == {}
    assert _ingress("127.0.0.10") == {"virtual_ip": "127.0.0.10", "port": 2049}
    assert _ingress("172.19.0.240:12049") == {"virtual_ip": "172.19.0.240", "port": 12049}
    for bad in ("nope", "127.0.0.10:0", "127.0.0.10:x", "127.0.0.10:70000"):
        with pytest.raises(ValueError):
            _ingress(bad)
