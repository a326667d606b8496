"""`python -m vip.compose`: mdsemu-keepalived in a container of compose.yaml (profile `vip`),
holding a real VIP on the compose network (needs cap_add NET_ADMIN).

Variables:
    MDSEMU_VIP            the VIP, default `auto`: this container's /24 with host part .250
    MDSEMU_VIP_PEERS      the other keepalived containers' host names, comma separated
    MDSEMU_VIP_PRIORITY   default 100
    MDSEMU_VIP_ADVERT     advert_int, default 1 (VRRPv3 below 1 s)
    MDSEMU_VIP_ECHO_PORT  if set, a stand-in service on 0.0.0.0:PORT that answers every
                          connection with this container's host name (a head's stand-in, so
                          a client can tell who holds the VIP)

It writes /etc/keepalived/keepalived.conf (cephadm's layout: state BACKUP, unicast to the
peers, `VIP dev IFACE` on the interface that has this container's address) and runs the
daemon in this process, as the container's main program.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import socketserver
import sys
import threading
import time


def render(name: str, own_ip: str, peers: list[str], vip: str, dev: str, priority: int,
           advert: float) -> str:
    version = "    vrrp_version 3\n" if advert < 1 else ""
    peer_lines = "".join(f"        {p}\n" for p in peers)
    return (f"global_defs {{\n    router_id {name}\n{version}"
            "    mdsemu_control_socket /run/keepalived.sock\n}\n\n"
            "vrrp_instance VI_0 {\n    state BACKUP\n"
            f"    interface {dev}\n    priority {priority}\n    advert_int {advert:g}\n"
            f"    virtual_router_id 50\n    unicast_src_ip {own_ip}\n"
            f"    unicast_peer {{\n{peer_lines}    }}\n"
            f"    virtual_ipaddress {{\n        {vip} dev {dev}\n    }}\n}}\n")


def auto_vip(own_ip: str) -> str:
    return str(ipaddress.IPv4Network(f"{own_ip}/24", strict=False).network_address + 250)


def _iface_of(ip: str) -> str:
    """The interface holding `ip` (from /proc/net/fib_trie is awkward: ask each by ioctl)."""
    import fcntl
    import struct

    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                res = fcntl.ioctl(s.fileno(), 0x8915,  # SIOCGIFADDR
                                  struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            if socket.inet_ntoa(res[20:24]) == ip:
                return name
    return "eth0"


def _echo(port: int, name: str) -> None:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(f"{name}\n".encode())

    server = socketserver.ThreadingTCPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()


def _resolve(host: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.gethostbyname(host)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def main() -> None:
    name = socket.gethostname()
    own_ip = _resolve(name)
    peers = [_resolve(p) for p in os.environ.get("MDSEMU_VIP_PEERS", "").split(",") if p]
    vip = os.environ.get("MDSEMU_VIP", "auto")
    vip = auto_vip(own_ip) if vip == "auto" else vip
    text = render(name, own_ip, peers, vip, _iface_of(own_ip),
                  int(os.environ.get("MDSEMU_VIP_PRIORITY", "100")),
                  float(os.environ.get("MDSEMU_VIP_ADVERT", "1")))
    os.makedirs("/etc/keepalived", exist_ok=True)
    path = "/etc/keepalived/keepalived.conf"
    with open(path, "w") as f:
        f.write(text)
    if os.environ.get("MDSEMU_VIP_ECHO_PORT"):
        _echo(int(os.environ["MDSEMU_VIP_ECHO_PORT"]), name)
    from vip.__main__ import main as keepalived

    keepalived(["-f", path, "--log-format", "json"])


if __name__ == "__main__":
    sys.exit(main())
