"""compose.yaml's NFS ingress (issue 12 items 2 and 3): keepalived-a and keepalived-b, one
mdsemu-keepalived in each NFS head's network namespace with cephadm's defaults, hold a real
address on the compose network (the network's .240). From another container (the monitor's)
an NFS client mounts VIP:2049 and reaches nfs-a (priority 100); `kill` the nfs-a container
and keepalived-b adds the VIP to nfs-b's interface, announces it with gratuitous ARP, and the
client's next mount through the VIP is served by nfs-b, the one head left. `nfs cluster
info` shows the VIP and port 2049. Then nfs-a starts again, keepalived-a is restarted into
its new network namespace, and it takes the VIP back (priority 100 preempts 90)."""

from __future__ import annotations

import json
import time

import pytest

from tests.container.conftest import Docker
from tests.container.test_compose import Cluster, docker_cmd

pytestmark = [pytest.mark.containers, pytest.mark.timeout(900)]
SERVICES = ("mon", "osd", "setup", "mds-a", "nfs-a", "nfs-b", "keepalived-a", "keepalived-b")
# One NFS mount through the VIP and a readdir, from the mon container: `ok`, or the error.
PROBE = """
import sys, trio
from nfs.client import NFSClient
async def main():
    async with NFSClient.connect(sys.argv[1], timeout=2) as c:
        await c.mount(sys.argv[2])
        await c.call("reclaim_complete")
        await c.call("readdir", path="/")
try:
    trio.run(main)
    print("ok")
except BaseException as e:
    print("error", type(e).__name__, e)
"""


def _mount(c: Cluster, vip: str, owner: str) -> str:
    p = docker_cmd("exec", c.container("mon"), "python", "-c", PROBE, f"{vip}:2049", owner,
                   check=False, timeout=30)
    return p.stdout.strip() or p.stderr.strip()


def _info(c: Cluster) -> dict | None:
    p = c.mdsemu("nfs", "cluster", "info", "ganesha", via="mon")
    try:
        info = json.loads(p.stdout)["ganesha"]
    except (ValueError, KeyError):
        return None
    return info if len(info["backend"]) == 2 and info["virtual_ip"] else None


def test_nfs_through_a_real_vip_moves_to_the_other_head(docker: Docker, image: str):
    c = Cluster(docker, image)
    try:
        c.compose("up", "-d", "--no-build", *SERVICES, timeout=300)
        info = c.wait("both heads and the VIP in nfs cluster info", lambda: _info(c), 180,
                      services=("setup", "nfs-a", "nfs-b"))
        vip = info["virtual_ip"]
        net = c.inspect("nfs-a")["NetworkSettings"]["Networks"]
        own = next(iter(net.values()))["IPAddress"]
        assert vip == own.rsplit(".", 1)[0] + ".240", (vip, own)
        assert (list(info), info["port"]) == (["virtual_ip", "backend", "port"], 2049)
        n = iter(range(1000))
        c.wait("an NFS mount through the VIP", lambda: _mount(c, vip, f"c{next(n)}") == "ok",
               60, services=("keepalived-a", "keepalived-b", "nfs-a"))
        log_a = c.logs("keepalived-a")
        assert "(VI_0) Entering MASTER STATE" in log_a
        assert f"added {vip}/32 to eth0" in log_a
        assert f"Sending/queueing gratuitous ARPs on eth0 for {vip}" in log_a
        # keepalived-b may have been master before keepalived-a's first advertisement (it
        # starts first when compose says so, and takes the VIP after Master_Down_Interval);
        # then it gave it back on a's higher priority, as keepalived does: it holds none now
        log_b = c.logs("keepalived-b")
        assert log_b.count(f"added {vip}/32") == log_b.count(f"deleted {vip}/32"), log_b

        c.compose("kill", "nfs-a")
        t0 = time.monotonic()
        c.wait("an NFS mount through the VIP, served by nfs-b",
               lambda: _mount(c, vip, f"c{next(n)}") == "ok", 60,
               services=("keepalived-a", "keepalived-b", "nfs-b"))
        took = time.monotonic() - t0
        # Master_Down_Interval 3 × 1 + (256 − 90)/256 = 3.65 s (VRRPv2), plus a docker exec
        print(f"an NFS client mounts through the VIP again {took:.2f}s after the kill of nfs-a")
        log_b = c.logs("keepalived-b")
        assert "(VI_0) Receive advertisement timeout" in log_b
        assert f"added {vip}/32 to eth0" in log_b

        c.compose("start", "nfs-a")
        c.compose("restart", "-t", "5", "keepalived-a")
        c.wait("keepalived-b to give the VIP back", lambda: (
            (lb := c.logs("keepalived-b")).count(f"added {vip}/32")
            == lb.count(f"deleted {vip}/32")), 60,
            services=("keepalived-a", "keepalived-b"))
        c.wait("an NFS mount through the VIP after nfs-a's return",
               lambda: _mount(c, vip, f"c{next(n)}") == "ok", 60,
               services=("keepalived-a", "nfs-a"))
    finally:
        c.compose("down", "-v", "--remove-orphans", "-t", "5", timeout=300, check=False)
