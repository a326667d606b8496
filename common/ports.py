"""Free ports for local clusters (vstart, the integration tests, bench/): a TCP port on one
address, and a UDP port free on every one of several addresses at once (keepalived's VRRP
adverts: each node binds the same port on its own address). The port is free when asked;
the caller binds it soon after.
"""

from __future__ import annotations

import socket


class NoFreePort(OSError):
    pass


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_udp_port(*hosts: str, attempts: int = 50) -> int:
    """A UDP port the kernel gives on `hosts[0]` that is also free on every other host."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
            try:
                for h in hosts[1:]:
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as t:
                        t.bind((h, port))
            except OSError:
                continue
            return port
    raise NoFreePort(f"no UDP port free on all of {', '.join(hosts)}")
