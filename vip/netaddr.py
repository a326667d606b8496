"""Holding a real VIP, as keepalived does with NET_ADMIN: add the address to an interface
(rtnetlink RTM_NEWADDR, what `ip addr add VIP/N dev IFACE` sends), announce it with gratuitous
ARP (vrrp_garp_master_repeat 5 requests with sender = target = VIP, broadcast), and delete it
(RTM_DELADDR) on leaving MASTER. No iproute2 or arping needed in the image.

`addr_msg`, `ack_errno` and `garp_frame` build and read the bytes (tested with plain values);
`add`, `delete` and `send_garp` are the thin socket shells.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct

RTM_NEWADDR, RTM_DELADDR = 20, 21
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLMSG_ERROR = 2
IFA_ADDRESS, IFA_LOCAL = 1, 2
RT_SCOPE_UNIVERSE = 0
ETH_P_ARP = 0x0806
GARP_REPEAT = 5  # keepalived's vrrp_garp_master_repeat default


def addr_msg(cmd: int, ifindex: int, ip: str, prefixlen: int, seq: int) -> bytes:
    """An rtnetlink request adding (RTM_NEWADDR) or deleting (RTM_DELADDR) ip/prefixlen."""
    packed = ipaddress.IPv4Address(ip).packed
    attrs = b"".join(struct.pack("=HH", 8, kind) + packed for kind in (IFA_LOCAL, IFA_ADDRESS))
    body = struct.pack("=BBBBI", socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, ifindex)
    flags = NLM_F_REQUEST | NLM_F_ACK
    if cmd == RTM_NEWADDR:
        flags |= NLM_F_CREATE | NLM_F_EXCL
    payload = body + attrs
    return struct.pack("=IHHII", 16 + len(payload), cmd, flags, seq, 0) + payload


def ack_errno(data: bytes) -> int:
    """0 for a positive acknowledgement, else the errno the kernel answered."""
    if len(data) < 20:
        raise ValueError("short netlink reply")
    _length, kind, _flags, _seq, _pid = struct.unpack_from("=IHHII", data)
    if kind != NLMSG_ERROR:
        raise ValueError(f"unexpected netlink message type {kind}")
    (code,) = struct.unpack_from("=i", data, 16)
    return -code


def garp_frame(mac: bytes, ip: str) -> bytes:
    """A gratuitous ARP request: broadcast, sender and target protocol address the VIP."""
    packed = ipaddress.IPv4Address(ip).packed
    eth = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + packed + b"\x00" * 6 + packed
    return eth + arp


def _request(msg: bytes) -> int:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        s.settimeout(5)
        s.bind((0, 0))
        s.send(msg)
        return ack_errno(s.recv(65536))


def add(ip: str, prefixlen: int, dev: str) -> None:
    """Add ip/prefixlen to dev; an address that is already there is fine."""
    code = _request(addr_msg(RTM_NEWADDR, socket.if_nametoindex(dev), ip, prefixlen,
                             os.getpid() & 0xFFFF))
    if code not in (0, errno.EEXIST):
        raise OSError(code, f"adding {ip}/{prefixlen} to {dev}: {os.strerror(code)}")


def delete(ip: str, prefixlen: int, dev: str) -> None:
    """Delete ip/prefixlen from dev; an address that is not there is fine."""
    code = _request(addr_msg(RTM_DELADDR, socket.if_nametoindex(dev), ip, prefixlen,
                             os.getpid() & 0xFFFF))
    if code not in (0, errno.EADDRNOTAVAIL, errno.ENODEV):
        raise OSError(code, f"deleting {ip}/{prefixlen} from {dev}: {os.strerror(code)}")


def send_garp(ip: str, dev: str, count: int = GARP_REPEAT) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as s:
        s.bind((dev, ETH_P_ARP))
        mac = s.getsockname()[4]  # the interface's hardware address
        frame = garp_frame(mac, ip)
        for _ in range(count):
            s.send(frame)
