"""`python -m vip.compose`: mdsemu-keepalived in a container of compose.yaml, holding a real
VIP on the compose network (needs cap_add NET_ADMIN). Two uses:

- the NFS ingress (services keepalived-a, keepalived-b): in an NFS head's network namespace
  (`network_mode: service:nfs-a`), cephadm's ingress defaults (vip/ingress.py): the check of
  the local head `weight -20 interval 2 rise 2 fall 2` and a `virtual_server VIP PORT`
  forwarding to the head, which listens on its container's address only;
- profile `vip` (vip-a, vip-b): beside a stand-in service that answers with its host name.

Variables:
    MDSEMU_VIP            the VIP, default `auto`: this container's /24 with host part .250
    MDSEMU_NFS_VIP        instead, with MDSEMU_VIP_HEAD_PORT: `auto` (default) is the /24's
                          .240; `none` runs no ingress (the heads read it too: entrypoint.py)
    MDSEMU_VIP_HEAD_PORT  the local NFS head's port: check it and forward VIP:PORT to it
    MDSEMU_VIP_PEERS      the other keepalived containers' host names, comma separated
    MDSEMU_VIP_PRIORITY   default 100
    MDSEMU_VIP_STATE      MASTER or BACKUP (default)
    MDSEMU_VIP_ADVERT     advert_int, default 1 (VRRPv3 below 1 s)
    MDSEMU_VIP_ECHO_PORT  if set, a stand-in service on 0.0.0.0:PORT that answers every
                          connection with this container's host name (a head's stand-in, so
                          a client can tell who holds the VIP)

It writes /etc/keepalived/keepalived.conf (cephadm's layout: unicast to the peers, `VIP dev
IFACE` on the interface that has this container's address) and runs the daemon in this
process, as the container's main program.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import socketserver
import sys
import threading
import time

from vip.ingress import CHECK, FIRST_VRID

NFS_VIP_HOST = 240  # `auto` for the NFS ingress (the `vip` profile's stand-ins use .250)


def render(name: str, own_ip: str, peers: list[str], vip: str, dev: str, priority: int,
           advert: float, state: str = "BACKUP", head: list[str] | None = None,
           head_port: int = 0) -> str:
    """`head`: the check of the local head (argv, to which its address and port are added)
    as cephadm's check_backend; with it, a virtual_server forwards VIP:head_port to it."""
    version = "    vrrp_version 3\n" if advert < 1 else ""
    peer_lines = "".join(f"        {p}\n" for p in peers)
    script = track = server = ""
    if head:
        cmd = " ".join([*head, own_ip, str(head_port)])
        script = f'vrrp_script check_backend {{\n    script "{cmd}"\n    {CHECK}\n}}\n\n'
        track = "    track_script {\n        check_backend\n    }\n"
        server = (f"\nvirtual_server {vip} {head_port} {{\n"
                  f"    real_server {own_ip} {head_port}\n}}\n")
    return (f"global_defs {{\n    router_id {name}\n{version}"
            "    mdsemu_control_socket /run/keepalived.sock\n}\n\n"
            f"{script}"
            f"vrrp_instance VI_0 {{\n    state {state}\n"
            f"    interface {dev}\n    priority {priority}\n    advert_int {advert:g}\n"
            f"    virtual_router_id {FIRST_VRID}\n    unicast_src_ip {own_ip}\n"
            f"    unicast_peer {{\n{peer_lines}    }}\n"
            f"    virtual_ipaddress {{\n        {vip} dev {dev}\n    }}\n{track}}}\n"
            f"{server}")


def auto_vip(own_ip: str, host: int = 250) -> str:
    return str(ipaddress.IPv4Network(f"{own_ip}/24", strict=False).network_address + host)


def nfs_vip(own_ip: str) -> str | None:
    """The NFS ingress's VIP from MDSEMU_NFS_VIP (`auto`: the /24's .240), None for `none`."""
    v = os.environ.get("MDSEMU_NFS_VIP", "").strip() or "auto"
    if v == "none":
        return None
    return auto_vip(own_ip, NFS_VIP_HOST) if v == "auto" else v.split("/")[0]


def own_address(peers: list[str]) -> str:
    """This network namespace's address: the source of its route to a peer (no packet is
    sent). In `network_mode: service:X` the host name is not X's, so do not resolve it."""
    for peer in peers:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.connect((peer, 9))
                return s.getsockname()[0]
            except OSError:
                continue
    return _resolve(socket.gethostname())


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


def main() -> int:
    name = socket.gethostname()
    peers = [_resolve(p) for p in os.environ.get("MDSEMU_VIP_PEERS", "").split(",") if p]
    own_ip = own_address(peers)
    head_port = int(os.environ.get("MDSEMU_VIP_HEAD_PORT", "0") or 0)
    if head_port:
        vip = nfs_vip(own_ip)
        if vip is None:
            print("vip.compose: MDSEMU_NFS_VIP=none: no ingress", file=sys.stderr)
            return 0
    else:
        vip = os.environ.get("MDSEMU_VIP", "auto")
        vip = auto_vip(own_ip) if vip == "auto" else vip
    text = render(name, own_ip, peers, vip, _iface_of(own_ip),
                  int(os.environ.get("MDSEMU_VIP_PRIORITY", "100")),
                  float(os.environ.get("MDSEMU_VIP_ADVERT", "1")),
                  state=os.environ.get("MDSEMU_VIP_STATE", "BACKUP"),
                  head=[sys.executable, "-m", "vip.check"] if head_port else None,
                  head_port=head_port)
    os.makedirs("/etc/keepalived", exist_ok=True)
    path = "/etc/keepalived/keepalived.conf"
    with open(path, "w") as f:
        f.write(text)
    if os.environ.get("MDSEMU_VIP_ECHO_PORT"):
        _echo(int(os.environ["MDSEMU_VIP_ECHO_PORT"]), name)
    from vip.__main__ import main as keepalived

    keepalived(["-f", path, "--log-format", "json"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
