"""`mdsemu vstart --nfs N --ingress VIP[:PORT]`: one mdsemu-keepalived per NFS head, as
cephadm's ingress service deploys keepalived in front of NFS (its keepalived.conf template):

- one vrrp_instance VI_0, virtual_router_id 50, the first head MASTER priority 100, the others
  BACKUP priority 90, advert_int 1 (the fast profile: 0.2 s, which needs VRRPv3);
- a vrrp_script checking the local head, `weight -20 interval 2 rise 2 fall 2`, so a master
  whose head is down drops to 80, below a healthy backup's 90, and the backup preempts;
- unicast between the daemons; on loopback each daemon's own address (cephadm's host IP) is
  the next one after the VIP: VIP .10 -> daemons on .11, .12, ...;
- `virtual_server VIP PORT` forwarding to the local head (mdsemu's stand-in for holding the
  address on an interface: docs/keepalived.md).

Files, for the other tools to find (coordinate through these only): DIR/keepalived.<id>.conf,
DIR/run/keepalived.<id>.pid, DIR/run/keepalived.<id>.sock (status), DIR/out/keepalived.<id>.log.
The plain functions here decide; `start` is the thin shell that spawns and waits.
"""

from __future__ import annotations

import glob
import ipaddress
import os
import re
import subprocess
import sys
import time

from common.ports import free_udp_port
from vip import status as vipstatus

DEFAULT_PORT = 2049  # cephadm's ingress frontend_port for NFS
FIRST_VRID = 50  # cephadm's first_virtual_router_id
ADVERT = {"fast": 0.2, "ceph": 1.0}
CHECK = "weight -20\n    interval 2\n    rise 2\n    fall 2"


class IngressError(ValueError):
    errno = 22  # EINVAL


def parse_vip(text: str) -> tuple[str, int]:
    """`VIP[:PORT]` -> (vip, port); loopback only here (containers: docs/keepalived.md)."""
    host, _, port_s = text.partition(":")
    try:
        addr = ipaddress.IPv4Address(host)
    except ValueError:
        raise IngressError(f"--ingress: '{host}' is not an IPv4 address") from None
    if not addr.is_loopback:
        raise IngressError(f"--ingress: {host} is not in 127.0.0.0/8 (on one machine the VIP "
                           "is a loopback address)")
    try:
        port = int(port_s) if port_s else DEFAULT_PORT
    except ValueError:
        raise IngressError(f"--ingress: bad port '{port_s}'") from None
    if not 0 < port < 65536:
        raise IngressError(f"--ingress: port {port} is out of range (1 to 65535)")
    return str(addr), port


def daemon_ips(vip: str, n: int) -> list[str]:
    """The addresses of the n keepalived daemons: the ones after the VIP in its /24."""
    base = ipaddress.IPv4Address(vip)
    if int(base) % 256 + n > 254:
        raise IngressError(f"--ingress: no room after {vip} for {n} daemon addresses "
                           "(they take the next ones in its /24)")
    return [str(base + 1 + i) for i in range(n)]


def render_conf(node: str, index: int, ips: list[str], vip: str, port: int, head_port: int,
                vrrp_port: int, sock: str, profile: str, check: list[str]) -> str:
    """keepalived.conf for the daemon in front of head `node` (the index-th)."""
    advert = ADVERT.get(profile, ADVERT["ceph"])
    version = "    vrrp_version 3\n" if advert < 1 else ""
    peers = "".join(f"        {ip}\n" for ip in ips if ip != ips[index])
    script = " ".join(check + ["127.0.0.1", str(head_port)])
    return (
        "global_defs {\n"
        f"    router_id {node}\n{version}"
        f"    mdsemu_vrrp_port {vrrp_port}\n"
        f"    mdsemu_control_socket {sock}\n"
        "}\n\n"
        "vrrp_script check_backend {\n"
        f'    script "{script}"\n'
        f"    {CHECK}\n"
        "}\n\n"
        "vrrp_instance VI_0 {\n"
        f"    state {'MASTER' if index == 0 else 'BACKUP'}\n"
        f"    priority {100 if index == 0 else 90}\n"
        f"    advert_int {advert:g}\n"
        f"    virtual_router_id {FIRST_VRID}\n"
        f"    unicast_src_ip {ips[index]}\n"
        f"    unicast_peer {{\n{peers}    }}\n"
        f"    virtual_ipaddress {{\n        {vip}\n    }}\n"
        "    track_script {\n        check_backend\n    }\n"
        "}\n\n"
        f"virtual_server {vip} {port} {{\n"
        f"    real_server 127.0.0.1 {head_port}\n"
        "}\n"
    )


def head_port(ganesha_conf: str) -> int:
    """NFS_Port of a head's ganesha.<id>.conf, as nfs/vstart.py writes it."""
    with open(ganesha_conf) as f:
        m = re.search(r"\bNFS_Port\s*=\s*(\d+)", f.read())
    if m is None:
        raise IngressError(f"{ganesha_conf}: no NFS_Port")
    return int(m.group(1))


def read_ingress(d: str) -> dict | None:
    """{"virtual_ip", "port", "daemons"} of a vstart ingress in DIR, from its conf files; None
    when there is none (for `nfs cluster info` and the live view)."""
    confs = sorted(glob.glob(os.path.join(d, "keepalived.*.conf")))
    if not confs:
        return None
    with open(confs[0]) as f:
        m = re.search(r"^virtual_server\s+(\S+)\s+(\d+)", f.read(), re.M)
    if m is None:
        return None
    names = [os.path.basename(c)[len("keepalived."):-len(".conf")] for c in confs]
    return {"virtual_ip": m.group(1), "port": int(m.group(2)), "daemons": names}


def start(d: str, nodes: list[str], vip_spec: str, profile: str, timeout: float) -> int:
    """Start the daemons in front of the heads `nodes`; 0 once the first (priority 100)
    holds the VIP (another may hold it for a moment before it preempts), else an errno after
    a message on stderr."""
    try:
        vip, port = parse_vip(vip_spec)
        ips = daemon_ips(vip, len(nodes))
        ports = [head_port(os.path.join(d, f"ganesha.{n}.conf")) for n in nodes]
        vrrp_port = free_udp_port(*ips)
    except (IngressError, OSError) as e:
        print(f"vstart: {e}", file=sys.stderr)
        return IngressError.errno
    check = [sys.executable, "-m", "vip.check"]
    socks = []
    for i, node in enumerate(nodes):
        name = f"keepalived.{node}"
        conf = os.path.join(d, f"{name}.conf")
        sock = os.path.join(d, "run", f"{name}.sock")
        socks.append(sock)
        with open(conf, "w") as f:
            f.write(render_conf(node, i, ips, vip, port, ports[i], vrrp_port, sock, profile,
                                check))
        pid_file = os.path.join(d, "run", f"{name}.pid")
        with open(os.path.join(d, "out", f"{name}.log"), "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "vip", "-f", conf, "-p", pid_file,
                 "--log-file", os.path.join(d, "out", f"{name}.log"), "--log-format", "json"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        with open(pid_file, "w") as f:
            f.write(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = _holder(nodes, socks)
        if holder == nodes[0]:
            print(f"vstart: ingress {vip}:{port} -> nfs.{holder} (keepalived "
                  f"{', '.join(nodes)}; {d}/keepalived.*.conf)")
            return 0
        time.sleep(0.2)
    print(f"vstart: no keepalived took {vip} within {timeout:g}s; see "
          f"{d}/out/keepalived.*.log", file=sys.stderr)
    return 110  # ETIMEDOUT


def _holder(nodes: list[str], socks: list[str]) -> str | None:
    for node, sock in zip(nodes, socks, strict=True):
        try:
            st = vipstatus.query(sock, timeout=1)
        except (vipstatus.Unreachable, ValueError):
            continue
        if any(v["listening"] for v in st["virtual_servers"]):
            return node
    return None
