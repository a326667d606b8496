"""The NFS heads the monitor knows of, sans-IO, and `nfs cluster ls|info` (issue 11 item 7).

Ceph learns its NFS daemons from the orchestrator (cephadm's service `nfs.<cluster_id>`); the
mgr `nfs` module (src/pybind/mgr/nfs/cluster.py, `list_nfs_cluster`, `show_nfs_cluster_info`)
prints them. mdsemu has no orchestrator: each head (nfs/daemon.py) sends an `nfs_report`
every REPORT_INTERVAL seconds and the monitor keeps the latest, like the mgr's service map,
which forgets a daemon silent for `mgr_service_beacon_grace` (60 s). The cluster id is the
head's RADOS_KV namespace, as cephadm makes them one. Nothing here is persisted: the heads
report again after a monitor restart.
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


class NFSServices:
    def __init__(self, grace_period: float = SERVICE_GRACE) -> None:
        self.grace_period = grace_period
        self.heads: dict[tuple[str, str], Head] = {}

    def report(self, cluster_id: str, nodeid: str, hostname: str, ip: str, port: int,
               grace: dict, now: float) -> None:
        self.heads[(cluster_id, nodeid)] = Head(cluster_id, nodeid, hostname, ip, port, now,
                                                dict(grace))

    def live(self, now: float) -> list[Head]:
        """The heads heard from within the grace, dropping the others."""
        for key, h in list(self.heads.items()):
            if now - h.last_seen > self.grace_period:
                del self.heads[key]
        return sorted(self.heads.values(), key=lambda h: (h.cluster_id, h.nodeid))

    def clusters(self, now: float) -> list[str]:
        return sorted({h.cluster_id for h in self.live(now)})

    def info(self, cluster_id: str, now: float) -> dict:
        """One cluster as `show_nfs_cluster_info` shows it without an ingress: no virtual
        IP, the backends sorted by hostname (then nodeid, which cephadm puts in the daemon
        name), each with its hostname, ip and port."""
        backends = [h for h in self.live(now) if h.cluster_id == cluster_id]
        backends.sort(key=lambda h: (h.hostname, h.nodeid))
        return {"virtual_ip": None,
                "backend": [{"hostname": h.hostname, "ip": h.ip, "port": h.port}
                            for h in backends]}


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
