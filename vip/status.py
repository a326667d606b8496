"""`mdsemu-keepalived --status`: ask a running daemon over its control socket and print."""

from __future__ import annotations

import json
import socket


class Unreachable(Exception):
    pass


def query(path: str, timeout: float = 5.0) -> dict:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(b"status\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as e:
        raise Unreachable(f"cannot reach mdsemu-keepalived at {path}: {e.strerror or e}") \
            from None
    return json.loads(data)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]


def render_plain(st: dict) -> str:
    lines = [f"router_id {st['router_id']}  pid {st['pid']}"]
    rows = [["INSTANCE", "STATE", "VRID", "PRIORITY", "EFFECTIVE", "MASTER", "VIPS"]]
    for entry in st["vrrp"]:
        d, m = entry["data"], entry["mdsemu"]
        master = m["master"] or "-"
        if m["state"] == "MASTER":
            master += " (this node)"
        elif d["master_priority"]:
            master += f" (priority {d['master_priority']})"
        rows.append([d["iname"], m["state"], str(d["vrid"]), str(d["base_priority"]),
                     str(d["effective_priority"]), master,
                     ",".join(d["vips"]) + (" (held)" if d["vipset"] else "")])
    lines += _table(rows)
    if st["scripts"]:
        rows = [["SCRIPT", "STATUS", "WEIGHT", "RISE", "FALL", "LAST EXIT"]]
        for s in st["scripts"]:
            last = "-" if s["last_exit"] is None else str(s["last_exit"])
            rows.append([s["name"], s["status"], str(s["weight"]), str(s["rise"]),
                         str(s["fall"]), last])
        lines += [""] + _table(rows)
    if st["virtual_servers"]:
        rows = [["VIRTUAL SERVER", "REAL SERVER", "LISTENING"]]
        for v in st["virtual_servers"]:
            rows.append([f"{v['vip']}:{v['port']}", v["real_server"],
                         "yes" if v["listening"] else "no"])
        lines += [""] + _table(rows)
    return "\n".join(lines)
