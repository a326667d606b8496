"""common.ports: the free ports local clusters and the VIP setups bind (real sockets)."""

from __future__ import annotations

import socket

import pytest

from common.ports import NoFreePort, free_tcp_port, free_udp_port


def test_a_udp_port_free_on_every_address_can_be_bound_on_each():
    hosts = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
    port = free_udp_port(*hosts)
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in hosts]
    try:
        for s, h in zip(socks, hosts, strict=True):
            s.bind((h, port))
    finally:
        for s in socks:
            s.close()


def test_no_free_udp_port_is_an_oserror_naming_the_addresses():
    with pytest.raises(NoFreePort, match="127.0.0.1, 127.0.0.1") as e:
        free_udp_port("127.0.0.1", "127.0.0.1", attempts=3)  # the same address twice: never
    assert isinstance(e.value, OSError)


def test_a_tcp_port_can_be_listened_on():
    port = free_tcp_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
