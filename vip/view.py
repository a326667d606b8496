"""Who holds each VIP, for the live view (`mdsemu demo`): one line per VIP from the status
of every mdsemu-keepalived whose control socket is DIR/run/keepalived.<id>.sock (vstart's
ingress). `rows` decides from plain status dicts; `collect` only reads the sockets."""

from __future__ import annotations

import glob
import os

from vip import status as vipstatus


def collect(d: str) -> dict[str, dict | None]:
    """{daemon id: its status, or None when it does not answer} for DIR's keepalived daemons."""
    out: dict[str, dict | None] = {}
    for sock in sorted(glob.glob(os.path.join(d, "run", "keepalived.*.sock"))):
        name = os.path.basename(sock)[len("keepalived."):-len(".sock")]
        try:
            out[name] = vipstatus.query(sock, timeout=1)
        except (vipstatus.Unreachable, ValueError):
            out[name] = None
    return out


def rows(statuses: dict[str, dict | None]) -> list[str]:
    """`VIP:PORT  held by ID (ADDR, priority P)  ID STATE P, ...` per VIP, sorted; a VIP that
    no daemon holds says `held by nobody`; a daemon that does not answer shows `down`."""
    vips: dict[str, set[int]] = {}
    holder: dict[str, str] = {}
    states: dict[str, list[str]] = {}
    for name, st in statuses.items():
        if st is None:
            continue
        for vs in st["virtual_servers"]:
            vips.setdefault(vs["vip"], set()).add(vs["port"])
        for entry in st["vrrp"]:
            data, extra = entry["data"], entry["mdsemu"]
            for vip in data["vips"]:
                vips.setdefault(vip, set())
                states.setdefault(vip, []).append(
                    f"{name} {extra['state']} {data['effective_priority']}")
                if data["vipset"]:
                    holder[vip] = (f"{name} ({extra['unicast_src_ip']}, priority "
                                   f"{data['effective_priority']})")
    down = [f"{name} down" for name, st in statuses.items() if st is None]
    lines = []
    for vip in sorted(vips):
        ports = ",".join(str(p) for p in sorted(vips[vip]))
        where = f"{vip}:{ports}" if ports else vip
        lines.append(f"{where}  held by {holder.get(vip, 'nobody')}  "
                     f"[{', '.join(states.get(vip, []) + down)}]")
    if not lines and down:
        lines.append(f"no VIP known [{', '.join(down)}]")
    return lines
