"""Real mdsemu-keepalived processes on loopback for the VIP tests and bench/, and the local services they front.

Each test gets its own 127.A.B.0/24 corner of the loopback net (daemons on .2, .3, .4, VIPs
from .10), a free UDP port for the adverts and free TCP ports, so tests and engineers running
in parallel do not meet. A `Service` is a trivial TCP server in this process that answers every
connection with its name, so a connect to VIP:PORT tells which daemon holds the VIP.

Resource handling: `Nodes.close()` (the `vip_nodes` fixture calls it, also on failure)
SIGKILLs and waits for every daemon it started and stops every service.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from client.fsdump import ClusterError
from client.procs import wait_for
from common.ports import free_tcp_port, free_udp_port
from vip import status as vipstatus

BIN = Path(sys.executable).parent
KEEPALIVED = [str(BIN / "mdsemu-keepalived")]


class Service:
    """A TCP service on 127.0.0.1 that writes its name and closes (an NFS head's stand-in)."""

    def __init__(self, name: str) -> None:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.sendall(f"{name}\n".encode())

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


TIMEOUT = "timeout"


def who(vip: str, port: int, timeout: float = 2.0) -> str | None:
    """The name of the service a new connection to VIP:PORT reaches; None if refused (or
    closed without an answer), TIMEOUT if nothing came back in `timeout` (a loaded machine)."""
    try:
        with socket.create_connection((vip, port), timeout=timeout) as s:
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(64)
                if not chunk:
                    break
                data += chunk
            return data.decode().strip() or None
    except TimeoutError:
        return TIMEOUT
    except OSError:
        return None


class Node:
    def __init__(self, nodes: Nodes, name: str, ip: str) -> None:
        self.nodes, self.name, self.ip = nodes, name, ip
        self.dir = nodes.dir
        self.conf = self.dir / f"{name}.conf"
        self.log = self.dir / f"{name}.log"
        self.sock = str(self.dir / f"{name}.sock")
        self.service = Service(f"head-{name}")
        self.proc: subprocess.Popen | None = None

    def write_conf(self, body: str, globals_extra: str = "") -> None:
        self.conf.write_text(
            "global_defs {\n"
            f"    router_id {self.name}\n    vrrp_version 3\n"
            f"    mdsemu_vrrp_port {self.nodes.vrrp_port}\n"
            f"    mdsemu_control_socket {self.sock}\n{globals_extra}}}\n{body}")

    def start(self) -> Node:
        self.proc = subprocess.Popen(
            [*KEEPALIVED, "-f", str(self.conf), "--log-file", str(self.log),
             "--log-format", "json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.nodes.procs.append(self.proc)
        wait_for(lambda: self.status(), 10, f"{self.name}'s control socket")
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=10)

    def status(self) -> dict:
        return vipstatus.query(self.sock, timeout=2)

    def state(self, instance: str = "VI_1") -> str | None:
        try:
            st = self.status()
        except vipstatus.Unreachable:
            return None
        return next(i["mdsemu"]["state"] for i in st["vrrp"] if i["data"]["iname"] == instance)

    def cli_status(self, fmt: str = "json") -> subprocess.CompletedProcess:
        return subprocess.run([*KEEPALIVED, "-f", str(self.conf), "--status", "--format", fmt],
                              capture_output=True, text=True, timeout=20)

    def records(self) -> list[dict]:
        try:
            lines = self.log.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def events(self) -> list[str]:
        return [r["event"] for r in self.records() if "event" in r]

    def logged_at(self, event: str) -> float:
        """When this daemon last logged `event`: its own timestamp, in epoch seconds."""
        stamps = [r["timestamp"] for r in self.records() if r.get("event") == event]
        if not stamps:
            raise ClusterError(f"{self.name} never logged {event!r}")
        return datetime.fromisoformat(stamps[-1].replace("Z", "+00:00")).timestamp()


class Nodes:
    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.net = f"127.{random.randrange(100, 250)}.{random.randrange(1, 250)}"
        self.procs: list[subprocess.Popen] = []
        self.nodes: list[Node] = []
        self.vrrp_port = free_udp_port(*(self.ip(i) for i in (2, 3, 4)))
        self.port = free_tcp_port(self.ip(10))

    def ip(self, last: int) -> str:
        return f"{self.net}.{last}"

    def node(self, name: str) -> Node:
        n = Node(self, name, self.ip(2 + len(self.nodes)))
        self.nodes.append(n)
        return n

    def holder(self, vip: str) -> str | None:
        return who(vip, self.port)

    def wait_holder(self, vip: str, name: str | None, timeout: float = 10,
                    since: float | None = None) -> float:
        """Poll until a new connection to VIP:PORT reaches `name`'s service; -> seconds since
        `since` (a time.monotonic() value, default now)."""
        t0 = time.monotonic() if since is None else since
        want = None if name is None else f"head-{name}"
        wait_for(lambda: self.holder(vip) == want or None, timeout,
                 f"{vip}:{self.port} to reach {want}", describe=self.describe, interval=0.01)
        return time.monotonic() - t0

    def stays(self, vip: str, name: str, seconds: float) -> None:
        """Every new connection during the next `seconds` reaches `name`'s service."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            got = self.holder(vip)
            if got not in (f"head-{name}", TIMEOUT):
                raise ClusterError(f"{vip}:{self.port} reached {got}, not head-{name}\n"
                                   + self.describe())
            time.sleep(0.02)  # sampling rate of the observation window, not a sync

    def describe(self) -> str:
        return "\n".join(f"{n.name}: {n.events()[-8:]}" for n in self.nodes)

    def close(self) -> None:
        errors = []
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired as e:
                errors.append(str(e))
            if p.stderr:
                p.stderr.close()
        for n in self.nodes:
            n.service.close()
        if errors:
            raise ClusterError("could not reap: " + "; ".join(errors))


def instance(name: str, vrid: int, node: Node, peers: list[Node], prio: int, vip: str,
             adv: float = 0.1, extra: str = "") -> str:
    peer_lines = "\n".join(f"        {p.ip}" for p in peers)
    return (f"vrrp_instance {name} {{\n    priority {prio}\n    advert_int {adv}\n"
            f"    virtual_router_id {vrid}\n    unicast_src_ip {node.ip}\n"
            f"    unicast_peer {{\n{peer_lines}\n    }}\n"
            f"    virtual_ipaddress {{\n        {vip}\n    }}\n{extra}}}\n")


def server(vip: str, port: int, node: Node) -> str:
    return (f"virtual_server {vip} {port} {{\n"
            f"    real_server 127.0.0.1 {node.service.port}\n}}\n")
