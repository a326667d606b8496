"""Issue 12 item 2 in containers: compose.yaml's profile `vip`, two mdsemu-keepalived with
NET_ADMIN holding a real address on the compose network (the network's .250), each beside a
stand-in service on port 2049 that answers with its host name. From a third container the VIP
reaches vip-a (priority 100); `kill` vip-a and it reaches vip-b (the backup added the address
and announced it with gratuitous ARP, so the client's ARP cache follows); start vip-a again
and it preempts: vip-b deletes the address and the VIP reaches vip-a again."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from tests.container.conftest import ROOT, Docker

pytestmark = pytest.mark.timeout(900)
SERVICES = ("vip-a", "vip-b", "vip-client")
PROBE = """
import ipaddress, socket
own = socket.gethostbyname(socket.gethostname())
vip = str(ipaddress.IPv4Network(own + "/24", strict=False).network_address + 250)
try:
    with socket.create_connection((vip, 2049), timeout=1) as s:
        print(vip, s.recv(64).decode().strip())
except OSError as e:
    print(vip, "error", e)
"""


class Project:
    def __init__(self, docker: Docker, image: str) -> None:
        self.docker = docker
        self.name = f"mdsemu-vip-{uuid.uuid4().hex[:8]}"
        self.env = {**os.environ, "MDSEMU_IMAGE": image, "MDSEMU_VIP": "auto"}

    def compose(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.docker.compose, "-p", self.name, "-f", str(ROOT / "compose.yaml"),
             "--profile", "vip", *args],
            capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=self.env)

    def container(self, service: str) -> str:
        p = subprocess.run(["docker", "ps", "-a", "-q", "--filter",
                            f"label=com.docker.compose.project={self.name}", "--filter",
                            f"label=com.docker.compose.service={service}"],
                           capture_output=True, text=True, timeout=30)
        return p.stdout.split()[0]

    def reach(self) -> str:
        """`VIP NAME` as the client container sees it (or `VIP error ...`)."""
        p = subprocess.run(["docker", "exec", self.container("vip-client"), "python", "-c",
                            PROBE], capture_output=True, text=True, timeout=30)
        return p.stdout.strip()

    def wait_reach(self, name: str, timeout: float) -> float:
        t0 = time.monotonic()
        seen = ""
        while time.monotonic() - t0 < timeout:
            seen = self.reach()
            if seen.endswith(f" {name}"):
                return time.monotonic() - t0
            time.sleep(0.2)
        pytest.fail(f"the VIP did not reach {name} within {timeout:g}s (last: {seen})\n"
                    + self.compose("logs", "--tail", "20", "vip-a", "vip-b").stdout)

    def logs(self, service: str) -> str:
        p = subprocess.run(["docker", "logs", self.container(service)], capture_output=True,
                           text=True, timeout=30)
        return p.stdout + p.stderr


def test_real_vip_on_the_compose_network_moves_and_comes_back(docker: Docker, image: str):
    pr = Project(docker, image)
    try:
        up = pr.compose("up", "-d", "--no-build", *SERVICES)
        assert up.returncode == 0, up.stderr
        pr.wait_reach("vip-a", 60)
        vip = pr.reach().split()[0]
        assert vip.endswith(".250")
        assert f"added {vip}/32 to eth0" in pr.logs("vip-a")
        assert f"Sending/queueing gratuitous ARPs on eth0 for {vip}" in pr.logs("vip-a")
        assert pr.compose("kill", "vip-a").returncode == 0
        took = pr.wait_reach("vip-b", 30)  # 3 × 0.2 + skew after the last advert, + ARP
        print(f"clients reach vip-b {took:.2f}s after the kill of vip-a")
        assert took < 10, took
        assert f"added {vip}/32 to eth0" in pr.logs("vip-b")
        assert pr.compose("start", "vip-a").returncode == 0
        pr.wait_reach("vip-a", 60)  # priority 100 preempts 90
        assert f"deleted {vip}/32 from eth0" in pr.logs("vip-b")
    finally:
        pr.compose("down", "-v", "--remove-orphans", "-t", "5", timeout=300)
