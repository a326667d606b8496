"""Advertisement bytes: the VRRP header of RFC 5798 §5.1, carried in a UDP datagram.

Real VRRP is IP protocol 112 sent to 224.0.0.18 (or unicast with `unicast_peer`); mdsemu sends
the same header over UDP unicast between the peers, so no raw socket (and no root) is needed.

    0                   1                   2                   3
   |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
   |(rsvd) |     Max Adver Int     |          Checksum             |
   |                       IPv4 Address(es)                        |

Version 3 carries the interval in centiseconds (12 bits); version 2 keeps RFC 3768's layout
in spirit: whole seconds in the same field. The checksum is the Internet checksum of the
header (no pseudo-header: UDP has its own).
"""

from __future__ import annotations

import ipaddress
import struct

from vip.vrrp import Advert

TYPE_ADVERTISEMENT = 1
_HEAD = struct.Struct("!BBBBHH")


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def encode(version: int, vrid: int, priority: int, adver_int: float, vips: list[str]) -> bytes:
    interval = round(adver_int * 100) if version == 3 else round(adver_int)
    addrs = b"".join(ipaddress.IPv4Address(a).packed for a in vips)
    head = _HEAD.pack((version << 4) | TYPE_ADVERTISEMENT, vrid, priority, len(vips),
                      interval & 0x0FFF, 0)
    csum = _checksum(head + addrs)
    return head[:6] + struct.pack("!H", csum) + addrs


def decode(data: bytes, src: str) -> tuple[int, Advert]:
    """-> (version, Advert); ValueError with a reason for anything that is not one."""
    if len(data) < _HEAD.size:
        raise ValueError(f"packet too short ({len(data)} bytes)")
    ver_type, vrid, priority, count, interval, _ = _HEAD.unpack_from(data)
    version, kind = ver_type >> 4, ver_type & 0x0F
    if version not in (2, 3):
        raise ValueError(f"invalid version {version}")
    if kind != TYPE_ADVERTISEMENT:
        raise ValueError(f"invalid type {kind}")
    if len(data) != _HEAD.size + 4 * count:
        raise ValueError(f"length {len(data)} does not match {count} addresses")
    if _checksum(data) != 0:
        raise ValueError("invalid checksum")
    interval &= 0x0FFF
    adver_int = interval / 100 if version == 3 else float(interval)
    return version, Advert(src=src, vrid=vrid, priority=priority, adver_int=adver_int)
