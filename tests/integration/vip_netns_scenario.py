"""Run inside a private network namespace (`unshare -n`, root) by test_vip_netns.py: two
mdsemu-keepalived daemons (adverts over loopback) share a real VIP on veth v0; a raw socket
on the peer end v1 sees the gratuitous ARPs. Prints one JSON line of observations.

Every daemon it starts is killed and reaped before it exits; the namespace dies with it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

VIP = "10.77.0.10"
BIN = Path(sys.executable).parent


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def has_vip() -> bool:
    return f"inet {VIP}/24" in sh("ip", "-4", "addr", "show", "dev", "v0")


def wait(pred, timeout: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


def conf(d: Path, name: str, ip: str, peer: str, prio: int) -> Path:
    p = d / f"{name}.conf"
    p.write_text(
        f"global_defs {{\n router_id {name}\n vrrp_version 3\n mdsemu_vrrp_port 11200\n"
        f" mdsemu_control_socket {d / name}.sock\n}}\n"
        f"vrrp_instance VI_1 {{\n state BACKUP\n interface v0\n priority {prio}\n"
        f" advert_int 0.2\n virtual_router_id 51\n unicast_src_ip {ip}\n"
        f" unicast_peer {{\n  {peer}\n }}\n virtual_ipaddress {{\n  {VIP}/24\n }}\n}}\n")
    return p


def main(d: Path) -> None:
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    for dev in ("v0", "v1"):
        sh("ip", "link", "set", dev, "up")
    sh("ip", "addr", "add", "10.77.0.1/24", "dev", "v0")
    arp = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    arp.bind(("v1", 0x0806))
    arp.settimeout(0.1)
    procs = {}
    out: dict = {}
    try:
        for name, ip, peer, prio in (("a", "127.0.0.2", "127.0.0.3", 150),
                                     ("b", "127.0.0.3", "127.0.0.2", 100)):
            procs[name] = subprocess.Popen(
                [str(BIN / "mdsemu-keepalived"), "-f", str(conf(d, name, ip, peer, prio)),
                 "--log-file", str(d / f"{name}.log"), "--log-format", "json"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if name == "a":
                out["a_took"] = wait(has_vip, 10)
        garps = []
        end = time.monotonic() + 1
        while time.monotonic() < end:
            try:
                frame = arp.recv(100)
            except TimeoutError:
                continue
            if frame[12:14] == b"\x08\x06" and frame[28:32] == frame[38:42] == \
                    socket.inet_aton(VIP):
                garps.append(frame[6:12].hex())
        out["garps"] = len(garps)
        procs["a"].send_signal(signal.SIGTERM)  # clean stop: a deletes it, b adds it
        procs["a"].wait(10)
        out["a_log"] = [json.loads(line)["event"] for line in (d / "a.log").read_text()
                        .splitlines()]
        out["b_took"] = wait(has_vip, 10)
        out["b_log"] = [json.loads(line)["event"] for line in (d / "b.log").read_text()
                        .splitlines()]
        procs["b"].send_signal(signal.SIGTERM)
        procs["b"].wait(10)
        out["after_stop"] = has_vip()
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    print(json.dumps(out))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
