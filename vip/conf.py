"""keepalived.conf, for the part mdsemu-keepalived supports (keepalived.conf(5)).

Syntax as keepalived reads it: `keyword args…` one per line, blocks in braces (the brace may
stand on the keyword's line or the next), `!` and `#` start comments, double quotes group
words. What is not supported is said clearly:
- a keyword whose behaviour we would silently get wrong (sync groups, track_interface, …) is
  an error naming file, line and keyword (exit status EINVAL);
- a keyword that does not matter here (interface, authentication, smtp settings, …) is a
  warning and is ignored;
- an unknown keyword is a warning, "Unknown keyword 'x'", as keepalived logs it.

mdsemu's own keywords (documented in docs/keepalived.md): in `global_defs`,
`mdsemu_vrrp_port PORT` (UDP port of the adverts, default 11200) and
`mdsemu_control_socket PATH` (the status socket, default CONF.sock); `virtual_server VIP PORT
{ real_server IP PORT }` names the local TCP service the master fronts on VIP:PORT.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from dataclasses import dataclass, field

from vip.track import ScriptConfig
from vip.vrrp import BACKUP, MASTER, PRIO_OWNER, InstanceConfig

DEFAULT_VRRP_PORT = 11200


class ConfigError(Exception):
    """A keepalived.conf we will not run; str() names file, line and keyword. `errno` is the
    exit status: EINVAL, or the OS error of a file that cannot be read (ENOENT, EACCES)."""

    def __init__(self, message: str, code: int = errno.EINVAL) -> None:
        super().__init__(message)
        self.errno = code


@dataclass
class Node:
    key: str
    args: list[str]
    line: int
    children: list[Node] | None = None


@dataclass
class InstanceSpec:
    cfg: InstanceConfig
    peers: list[str]
    vips: list[str]
    notify: dict[str, str] = field(default_factory=dict)  # master/backup/fault/stop/"" → cmd
    devs: dict[str, tuple[str, int]] = field(default_factory=dict)  # real VIP → (dev, plen)


@dataclass(frozen=True)
class VirtualServer:
    vip: str
    port: int
    real_ip: str
    real_port: int


@dataclass
class Config:
    path: str
    router_id: str
    vrrp_port: int
    control_socket: str
    scripts: dict[str, ScriptConfig]
    instances: list[InstanceSpec]
    servers: list[VirtualServer]
    warnings: list[str]


# keywords we know but do not emulate in a way that would matter: warned about and ignored
IGNORED = {
    "global_defs": {"notification_email", "notification_email_from", "smtp_server",
                    "smtp_connect_timeout", "enable_script_security", "script_user",
                    "vrrp_skip_check_adv_addr", "vrrp_strict", "vrrp_garp_interval",
                    "vrrp_gna_interval", "vrrp_garp_master_delay", "vrrp_garp_master_repeat",
                    "max_auto_priority", "dynamic_interfaces"},
    "vrrp_instance": {"interface", "authentication", "garp_master_delay", "garp_master_repeat",
                      "dont_track_primary", "smtp_alert", "mcast_src_ip", "accept",
                      "no_accept", "native_ipv6", "use_vmac", "vmac_xmit_base"},
    "vrrp_script": {"user"},
    "virtual_server": {"delay_loop", "lb_algo", "lb_kind", "persistence_timeout",
                       "sorry_server", "quorum", "hysteresis"},
}
# keywords whose behaviour would be missing: refused
UNSUPPORTED = {"vrrp_sync_group", "virtual_server_group", "track_file", "track_process",
               "vrrp_track_process", "track_interface", "track_bfd", "static_ipaddress",
               "static_routes", "static_rules", "virtual_ipaddress_excluded", "virtual_routes",
               "virtual_rules", "include", "bfd_instance", "notify_fifo", "vrrp_notify_fifo",
               "lower_prio_no_advert", "higher_prio_send_advert"}


# -- tokens and blocks ------------------------------------------------------------------------

def _tokens(text: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        i, n = 0, len(raw)
        while i < n:
            c = raw[i]
            if c.isspace():
                i += 1
            elif c in "!#":
                break
            elif c in "{}":
                out.append((c, lineno))
                i += 1
            elif c == '"':
                j = raw.find('"', i + 1)
                j = n if j < 0 else j
                out.append((raw[i + 1:j], lineno))
                i = j + 1
            else:
                j = i
                while j < n and not raw[j].isspace() and raw[j] not in '{}"!#':
                    j += 1
                out.append((raw[i:j], lineno))
                i = j
    return out


def parse_blocks(text: str, path: str) -> list[Node]:
    toks = _tokens(text)
    pos = 0

    def block(depth: int) -> list[Node]:
        nonlocal pos
        nodes: list[Node] = []
        while pos < len(toks):
            tok, line = toks[pos]
            if tok == "}":
                if depth == 0:
                    raise ConfigError(f"{path}:{line}: unexpected '}}'")
                pos += 1
                return nodes
            if tok == "{":
                if not nodes or nodes[-1].children is not None:
                    raise ConfigError(f"{path}:{line}: unexpected '{{'")
                pos += 1
                nodes[-1].children = block(depth + 1)
                continue
            node = Node(tok, [], line)
            pos += 1
            while pos < len(toks) and toks[pos][1] == line and toks[pos][0] not in "{}":
                node.args.append(toks[pos][0])
                pos += 1
            nodes.append(node)
        if depth:
            raise ConfigError(f"{path}: missing '}}' at end of file")
        return nodes

    return block(0)


# -- values ---------------------------------------------------------------------------------

class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path
        self.warnings: list[str] = []

    def err(self, node: Node, msg: str) -> ConfigError:
        return ConfigError(f"{self.path}:{node.line}: {node.key}: {msg}")

    def warn(self, node: Node, msg: str) -> None:
        self.warnings.append(f"{self.path}:{node.line}: {msg}")

    def arg(self, node: Node, n: int = 1) -> str:
        if len(node.args) < n:
            raise self.err(node, "missing value")
        return node.args[n - 1]

    def number(self, node: Node, lo: float, hi: float, integer: bool = True) -> float:
        word = self.arg(node)
        try:
            value = int(word) if integer else float(word)
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise self.err(node, f"'{word}' is not {kind}") from None
        if not lo <= value <= hi:
            raise self.err(node, f"{word} is out of range [{lo:g}..{hi:g}]")
        return value

    def ipv4(self, node: Node, word: str) -> str:
        try:
            return str(ipaddress.IPv4Address(word.split("/")[0]))
        except ValueError:
            raise self.err(node, f"'{word}' is not an IPv4 address") from None

    def block(self, node: Node) -> list[Node]:
        if node.children is None:
            raise self.err(node, "expects a block { … }")
        return node.children

    def other(self, section: str, node: Node) -> None:
        if node.key in UNSUPPORTED:
            raise self.err(node, "not supported by mdsemu-keepalived")
        if node.key in IGNORED.get(section, ()):
            self.warn(node, f"{node.key} is ignored by mdsemu-keepalived")
        else:
            self.warn(node, f"Unknown keyword '{node.key}'")


def load(path: str) -> Config:
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}", e.errno or errno.EIO) from None
    return parse(text, path)


def parse(text: str, path: str = "keepalived.conf") -> Config:
    r = _Reader(path)
    router_id, version, port = os.uname().nodename, 2, DEFAULT_VRRP_PORT
    control = f"{path}.sock"
    scripts: dict[str, ScriptConfig] = {}
    raw_instances: list[Node] = []
    servers: list[VirtualServer] = []
    for node in parse_blocks(text, path):
        if node.key == "global_defs":
            for n in r.block(node):
                if n.key == "router_id":
                    router_id = r.arg(n)
                elif n.key == "vrrp_version":
                    version = int(r.number(n, 2, 3))
                elif n.key == "mdsemu_vrrp_port":
                    port = int(r.number(n, 1, 65535))
                elif n.key == "mdsemu_control_socket":
                    control = r.arg(n)
                else:
                    r.other("global_defs", n)
        elif node.key == "vrrp_script":
            name = r.arg(node)
            scripts[name] = _script(r, node, name)
        elif node.key == "vrrp_instance":
            r.arg(node)
            raw_instances.append(node)
        elif node.key == "virtual_server":
            servers.append(_server(r, node))
        else:
            r.other("top", node)
    instances = [_instance(r, n, version, scripts) for n in raw_instances]
    _check(r, instances, servers, raw_instances)
    return Config(path, router_id, port, control, scripts, instances, servers, r.warnings)


def _script(r: _Reader, node: Node, name: str) -> ScriptConfig:
    kw: dict = {}
    for n in r.block(node):
        if n.key == "script":
            kw["script"] = " ".join(n.args) if n.args else r.arg(n)
        elif n.key in ("interval", "timeout"):
            kw[n.key] = r.number(n, 0.001, 86400, integer=False)
        elif n.key == "weight":
            kw["weight"] = int(r.number(n, -253, 253))
            if len(n.args) > 1:
                raise r.err(n, f"'{n.args[1]}' is not supported")
        elif n.key in ("rise", "fall"):
            kw[n.key] = int(r.number(n, 1, 1000))
        elif n.key == "init_fail":
            kw["init_fail"] = True
        else:
            r.other("vrrp_script", n)
    if "script" not in kw:
        raise r.err(node, f"{name}: no script specified")
    return ScriptConfig(name=name, **kw)


def _items(r: _Reader, node: Node) -> list[Node]:
    """The lines of a list block such as `unicast_peer { … }`, as nodes of their own."""
    return r.block(node)


def _instance(r: _Reader, node: Node, version: int,
              scripts: dict[str, ScriptConfig]) -> InstanceSpec:
    name = node.args[0]
    kw: dict = {"name": name, "version": version}
    peers: list[str] = []
    vips: list[str] = []
    track: dict[str, int] = {}
    notify: dict[str, str] = {}
    adver_node = None
    real: dict[str, tuple[Node, tuple[str | None, int]]] = {}
    iface: tuple[Node, str, int] | None = None  # node, name, where its warning would go
    for n in r.block(node):
        k = n.key
        if k == "state":
            word = r.arg(n).upper()
            if word not in (MASTER, BACKUP):
                raise r.err(n, f"'{r.arg(n)}' must be MASTER or BACKUP")
            kw["initial_state"] = word
        elif k == "virtual_router_id":
            kw["vrid"] = int(r.number(n, 1, 255))
        elif k == "priority":
            kw["priority"] = int(r.number(n, 1, PRIO_OWNER))
        elif k == "advert_int":
            kw["adver_int"] = r.number(n, 0.01, 255, integer=False)
            adver_node = n
        elif k == "version":
            kw["version"] = int(r.number(n, 2, 3))
        elif k == "nopreempt":
            kw["nopreempt"] = True
        elif k == "preempt":
            kw["nopreempt"] = False
        elif k == "preempt_delay":
            kw["preempt_delay"] = r.number(n, 0, 1000, integer=False)
        elif k == "unicast_src_ip":
            kw["src_ip"] = r.ipv4(n, r.arg(n))
        elif k == "unicast_peer":
            peers += [r.ipv4(item, item.key) for item in _items(r, n)]
        elif k == "virtual_ipaddress":
            for item in _items(r, n):
                addr = r.ipv4(item, item.key)
                if ipaddress.IPv4Address(addr).is_loopback:  # held by listening on it
                    if item.args:
                        r.warn(item, f"'{' '.join(item.args)}' after {addr} is ignored")
                else:  # a real address: added to an interface (needs NET_ADMIN)
                    real[addr] = (item, _real_vip(r, item))
                vips.append(addr)
        elif k == "interface":
            iface = (n, r.arg(n), len(r.warnings))
        elif k == "track_script":
            for item in _items(r, n):
                if item.key not in scripts:
                    raise r.err(item, f"script '{item.key}' is not defined (no vrrp_script)")
                weight = scripts[item.key].weight
                if item.args[:1] == ["weight"]:
                    weight = int(r.number(Node("weight", item.args[1:], item.line),
                                          -253, 253))
                elif item.args:
                    raise r.err(item, f"'{' '.join(item.args)}' is not supported")
                track[item.key] = weight
        elif k in ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify"):
            notify[k.removeprefix("notify").lstrip("_")] = " ".join(n.args) or r.arg(n)
        else:
            r.other("vrrp_instance", n)
    if "vrid" not in kw:
        raise r.err(node, f"{name}: virtual_router_id is required")
    if "src_ip" not in kw:
        raise r.err(node, f"{name}: unicast_src_ip is required (adverts are UDP unicast)")
    if not peers:
        raise r.err(node, f"{name}: unicast_peer is required (no multicast here)")
    if kw["version"] == 2 and "adver_int" in kw and kw["adver_int"] != int(kw["adver_int"]):
        rounded = max(1, round(kw["adver_int"]))
        r.warn(adver_node, f"({name}) VRRPv2 advert_int {kw['adver_int']:g} is not a whole "
               f"number of seconds - rounding to {rounded} (use vrrp_version 3)")
        kw["adver_int"] = float(rounded)
    if kw.get("nopreempt") and kw.get("initial_state") == MASTER:
        r.warn(node, f"({name}) Warning - nopreempt will not work with initial state MASTER"
               " - clearing")
        kw["nopreempt"] = False
    devs: dict[str, tuple[str, int]] = {}
    for addr, (item, (dev, plen)) in real.items():
        dev = dev or (iface[1] if iface else None)
        if dev is None:
            raise r.err(Node("virtual_ipaddress", [], item.line),
                        f"{item.key}: a VIP outside 127.0.0.0/8 is added to an interface: "
                        "give 'dev IFACE' or the instance's 'interface'")
        devs[addr] = (dev, plen)
    if iface is not None and not real:  # loopback VIPs only: the interface is unused
        r.other("vrrp_instance", iface[0])
        r.warnings.insert(iface[2], r.warnings.pop())  # in line order
    return InstanceSpec(InstanceConfig(track=track, **kw), peers, vips, notify, devs)


def _real_vip(r: _Reader, item: Node) -> tuple[str | None, int]:
    """`A.B.C.D[/N] [dev IFACE]` → (dev or None, prefix length, default 32 as keepalived)."""
    _, slash, plen_s = item.key.partition("/")
    plen = int(r.number(Node("prefix", [plen_s], item.line), 0, 32)) if slash else 32
    args = list(item.args)
    dev = None
    if args[:1] == ["dev"] and len(args) >= 2:
        dev = args[1]
        args = args[2:]
    if args:
        r.warn(item, f"'{' '.join(args)}' after {item.key} is ignored")
    return dev, plen


def _server(r: _Reader, node: Node) -> VirtualServer:
    if len(node.args) != 2:
        raise r.err(node, "expects 'virtual_server VIP PORT'")
    vip = r.ipv4(node, node.args[0])
    port = int(r.number(Node(node.key, [node.args[1]], node.line), 1, 65535))
    real: tuple[str, int] | None = None
    for n in r.block(node):
        if n.key == "real_server":
            if real is not None:
                raise r.err(n, "only one real_server per virtual_server is supported")
            if len(n.args) != 2:
                raise r.err(n, "expects 'real_server IP PORT'")
            real = (r.ipv4(n, n.args[0]),
                    int(r.number(Node(n.key, [n.args[1]], n.line), 1, 65535)))
            if n.children:
                r.warn(n, "the real_server block (health checks) is ignored; "
                       "use a vrrp_script")
        elif n.key == "protocol":
            if r.arg(n).upper() != "TCP":
                raise r.err(n, f"'{r.arg(n)}': only TCP is forwarded")
        else:
            r.other("virtual_server", n)
    if real is None:
        raise r.err(node, f"{vip} {port}: a real_server is required")
    return VirtualServer(vip, port, *real)


def _check(r: _Reader, instances: list[InstanceSpec], servers: list[VirtualServer],
           nodes: list[Node]) -> None:
    seen: dict[int, str] = {}
    for spec, node in zip(instances, nodes, strict=True):
        if spec.cfg.vrid in seen:
            raise r.err(node, f"virtual_router_id {spec.cfg.vrid} is used by "
                        f"{seen[spec.cfg.vrid]} too")
        seen[spec.cfg.vrid] = spec.cfg.name
    held = {v for spec in instances for v in spec.vips}
    for s in servers:
        if s.vip not in held:
            raise ConfigError(f"{r.path}: virtual_server {s.vip} {s.port}: {s.vip} is not a "
                              "virtual_ipaddress of any vrrp_instance")
