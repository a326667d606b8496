"""The NFS heads the monitor knows of, sans-IO, and `nfs cluster ls|info` (issue 11 item 7).

Ceph learns its NFS daemons from the orchestrator (cephadm's service `nfs.<cluster_id>`); the
mgr `nfs` module (src/pybind/mgr/nfs/cluster.py, `list_nfs_cluster`, `show_nfs_cluster_info`)
prints them. mdsemu has no orchestrator: each head (nfs/daemon.py) sends an `nfs_report`
every REPORT_INTERVAL seconds and the monitor keeps the latest, like the mgr's service map,
which forgets a daemon silent for `mgr_service_beacon_grace` (60 s). The cluster id is the
head's RADOS_KV namespace, as cephadm makes them one. Nothing here is persisted: the heads
report again after a monitor restart.

The ingress: Ceph's mgr reads cephadm's `ingress.nfs.<cluster_id>` service (its virtual_ip,
and its ports: frontend_port, then monitor_port). Here a head started with `--ingress
VIP:PORT` (vstart --ingress, compose.yaml) reports the ingress in front of it, and `info`
shows what the cluster's live heads report.
"""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass, field

from mon.cmdbase import Context, Result, _err

REPORT_INTERVAL = 5.0
SERVICE_GRACE = 60.0  # mgr_service_beacon_grace


@dataclass
class Head:
    cluster_id: str
    nodeid: str
    hostname: str
    ip: str
    port: int
    last_seen: float
    grace: dict = field(default_factory=dict)  # {cur, rec, flags: {nodeid: "NE"}} as read
    ingress: dict = field(default_factory=dict)  # {virtual_ip, port[, monitor_port]}


class NFSServices:
    def __init__(self, grace_period: float = SERVICE_GRACE) -> None:
        self.grace_period = grace_period
        self.heads: dict[tuple[str, str], Head] = {}

    def report(self, cluster_id: str, nodeid: str, hostname: str, ip: str, port: int,
               grace: dict, now: float, ingress: dict | None = None) -> None:
        self.heads[(cluster_id, nodeid)] = Head(cluster_id, nodeid, hostname, ip, port, now,
                                                dict(grace), dict(ingress or {}))

    def live(self, now: float) -> list[Head]:
        """The heads heard from within the grace, dropping the others."""
        for key, h in list(self.heads.items()):
            if now - h.last_seen > self.grace_period:
                del self.heads[key]
        return sorted(self.heads.values(), key=lambda h: (h.cluster_id, h.nodeid))

    def clusters(self, now: float) -> list[str]:
        return sorted({h.cluster_id for h in self.live(now)})

    def info(self, cluster_id: str, now: float) -> dict:
        """One cluster as `show_nfs_cluster_info` shows it: `virtual_ip` (null without an
        ingress), the backends sorted by hostname (then nodeid, which cephadm puts in the
        daemon name), each with its hostname, ip and port; with an ingress, then `port` (its
        frontend port) and `monitor_port` when it has one (Ceph: the ingress service's
        ports[0] and ports[1], haproxy's monitor; mdsemu's ingress has no haproxy)."""
        backends = [h for h in self.live(now) if h.cluster_id == cluster_id]
        backends.sort(key=lambda h: (h.hostname, h.nodeid))
        out: dict = {"virtual_ip": None,
                     "backend": [{"hostname": h.hostname, "ip": h.ip, "port": h.port}
                                 for h in backends]}
        ingress = next((h.ingress for h in sorted(backends, key=lambda h: h.nodeid)
                        if h.ingress.get("virtual_ip")), None)
        if ingress is not None:
            out["virtual_ip"] = str(ingress["virtual_ip"]).split("/")[0]
            for key in ("port", "monitor_port"):
                if isinstance(ingress.get(key), int):
                    out[key] = ingress[key]
        return out


def nfs_cluster(c: Context) -> Result:
    """`nfs cluster ls` and `nfs cluster info [<cluster_id>]` (the mgr nfs module)."""
    services: NFSServices | None = c.extra.get("nfs")
    if services is None:
        services = NFSServices()
    words = c.args[2:]
    if words == ["ls"]:
        ids = services.clusters(c.now)
        return 0, "", c.out(ids) if c.json else _pretty(ids)
    if words and words[0] == "info" and len(words) <= 2:
        known = services.clusters(c.now)
        if len(words) == 2 and words[1] not in known:
            raise _err(errno.ENOENT, "cluster does not exist")
        ids = words[1:] or known
        out = {i: services.info(i, c.now) for i in ids}
        return 0, "", c.out(out) if c.json else _pretty(out)
    raise _err(errno.EINVAL, "invalid command; usage: nfs cluster ls | nfs cluster info "
                             "[<cluster_id>]")


def _pretty(obj) -> str:
    """The mgr module's object_format.Responder answers JSON in every format."""
    return json.dumps(obj, indent=4) + "\n"
