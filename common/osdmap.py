"""The OSDMap as far as MDS failover needs it: epoch, pools and the blocklist (ref §10).

The monitor is its only writer. Blocklist entries are address instances ("ip:port/nonce")
with a wall-clock expiry, like Ceph's `osd blocklist ls`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field


@dataclass
class Pool:
    id: int
    name: str
    application: str = "cephfs"


@dataclass
class OSDMap:
    epoch: int = 1
    fsid: str = ""
    pools: dict[int, Pool] = field(default_factory=dict)
    pool_max: int = 0
    blocklist: dict[str, float] = field(default_factory=dict)  # addr -> expiry (wall)
    osd_addrs: dict[int, str] = field(default_factory=dict)  # osd id -> "ip:port"

    def copy(self) -> OSDMap:
        return copy.deepcopy(self)

    def pool_by_name(self, name: str) -> Pool | None:
        return next((p for p in self.pools.values() if p.name == name), None)

    def create_pool(self, name: str, application: str = "cephfs") -> Pool:
        self.pool_max += 1
        pool = Pool(self.pool_max, name, application)
        self.pools[pool.id] = pool
        return pool

    def is_blocklisted(self, addr: str) -> bool:
        return addr in self.blocklist

    def pool_names(self) -> dict[int, str]:
        return {p.id: p.name for p in self.pools.values()}

    def to_wire(self) -> dict:
        return {
            "epoch": self.epoch,
            "fsid": self.fsid,
            "pools": [[p.id, p.name, p.application] for p in self.pools.values()],
            "pool_max": self.pool_max,
            "blocklist": sorted(self.blocklist.items()),
            "osd_addrs": sorted(self.osd_addrs.items()),
        }

    @classmethod
    def from_wire(cls, d: dict) -> OSDMap:
        return cls(
            epoch=d["epoch"],
            fsid=d.get("fsid", ""),
            pools={i: Pool(i, n, a) for i, n, a in d.get("pools", [])},
            pool_max=d.get("pool_max", 0),
            blocklist={a: float(t) for a, t in d.get("blocklist", [])},
            osd_addrs={int(i): a for i, a in d.get("osd_addrs", [])},
        )
