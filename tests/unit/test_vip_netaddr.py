"""vip/netaddr.py: the rtnetlink and gratuitous ARP bytes (issue 12 item 2, containers)."""

from __future__ import annotations

import socket
import struct

import pytest

from vip import netaddr


def test_rtm_newaddr_is_what_ip_addr_add_sends():
    msg = netaddr.addr_msg(netaddr.RTM_NEWADDR, 7, "10.1.2.3", 24, 9)
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", msg)
    assert (length, kind, seq, pid) == (len(msg), 20, 9, 0)
    assert flags == 0x1 | 0x4 | 0x200 | 0x400  # REQUEST ACK EXCL CREATE
    family, plen, _fl, scope, index = struct.unpack_from("=BBBBI", msg, 16)
    assert (family, plen, scope, index) == (socket.AF_INET, 24, 0, 7)
    assert msg[24:] == (struct.pack("=HH", 8, 2) + bytes([10, 1, 2, 3])
                        + struct.pack("=HH", 8, 1) + bytes([10, 1, 2, 3]))
    delete = netaddr.addr_msg(netaddr.RTM_DELADDR, 7, "10.1.2.3", 24, 9)
    assert struct.unpack_from("=HH", delete, 4) == (21, 0x1 | 0x4)


def test_ack_errno():
    ok = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", 0) + b"\0" * 16
    eexist = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -17) + b"\0" * 16
    assert netaddr.ack_errno(ok) == 0 and netaddr.ack_errno(eexist) == 17
    with pytest.raises(ValueError):
        netaddr.ack_errno(b"\0" * 4)


def test_gratuitous_arp_request():
    mac = bytes.fromhex("02420a000002")
    f = netaddr.garp_frame(mac, "172.20.0.100")
    assert len(f) == 42
    assert f[:6] == b"\xff" * 6 and f[6:12] == mac and f[12:14] == b"\x08\x06"
    assert struct.unpack("!HHBBH", f[14:22]) == (1, 0x0800, 6, 4, 1)  # ARP request
    ip = bytes([172, 20, 0, 100])
    assert f[22:28] == mac and f[28:32] == ip and f[32:38] == b"\0" * 6 and f[38:42] == ip
