"""The monitor's auth database (Ceph's AuthMonitor and KeyServer), sans-IO: every entity's key
and caps, and the rotating secrets of the mds and osd services. The shell persists `to_kv()`
in the monitor store after every change (`dirty`) and sends the daemons their service's
secrets when they rotate.
"""

from __future__ import annotations

from common import caps, cephx, keyring
from common.keyring import Entry

# What `vstart --cephx` and `auth get-or-create` give each kind of daemon (Ceph's vstart.sh).
DAEMON_CAPS = {
    "mds": {"mon": "profile mds", "osd": "allow rwx", "mds": "allow"},
    "osd": {"mon": "profile osd", "osd": "allow *"},
    "mon": {"mon": "allow *"},
}
ADMIN_CAPS = {"mon": "allow *", "osd": "allow *", "mds": "allow *"}


class AuthMonitor:
    def __init__(self, entities: dict[str, Entry] | None = None,
                 rotating: dict[str, cephx.RotatingSecrets] | None = None) -> None:
        self.entities: dict[str, Entry] = entities or {}
        self.rotating = rotating or {s: cephx.RotatingSecrets() for s in cephx.SERVICES}
        self.dirty = False

    # -- persistence
    def to_kv(self) -> dict:
        return {"auth": {e: v.to_wire() for e, v in self.entities.items()},
                "auth_rotating": {s: r.to_wire() for s, r in self.rotating.items()}}

    @classmethod
    def from_kv(cls, auth: dict | None, rotating: dict | None) -> AuthMonitor:
        rot = {s: cephx.RotatingSecrets.from_wire(d) for s, d in (rotating or {}).items()}
        for s in cephx.SERVICES:
            rot.setdefault(s, cephx.RotatingSecrets())
        return cls({e: Entry.from_wire(d) for e, d in (auth or {}).items()}, rot)

    def import_entries(self, entries: dict[str, Entry]) -> None:
        """`auth import` and the monitor's first start (ceph-mon --mkfs --keyring)."""
        for entity, entry in entries.items():
            caps.validate(entry.caps)
            self.entities[entity] = Entry(entry.key, dict(entry.caps))
        self.dirty = True

    # -- lookups
    def secret(self, entity: str) -> bytes | None:
        e = self.entities.get(entity)
        return keyring.secret_of(e.key) if e is not None else None

    def caps_of(self, entity: str, service: str) -> str:
        e = self.entities.get(entity)
        return e.caps.get(service, "") if e is not None else ""

    # -- rotating secrets and tickets
    def tick(self, wall: float, ttl: float) -> list[str]:
        """Rotate what is due; the services whose secrets changed (their daemons are told)."""
        rotated = [s for s, r in self.rotating.items() if r.rotate(wall, ttl)]
        if rotated:
            self.dirty = True
        return rotated

    def tickets(self, services: list, session_key: bytes, entity: str, gid: int,
                wall: float, ttl: float) -> list[dict]:
        self.tick(wall, ttl)
        return [cephx.issue_ticket(s, self.rotating[s], session_key, entity, gid,
                                   self.caps_of(entity, s), wall, ttl)
                for s in services if s in self.rotating]

    def rotating_for(self, service: str, session_key: bytes) -> bytes:
        """A daemon's copy of its service's secrets, sealed with its session key."""
        return cephx.seal(session_key, self.rotating[service].to_wire(), service.encode())


def daemon_service(entity: str) -> str | None:
    """The service whose rotating secrets this entity holds (an MDS or an osd)."""
    kind = entity.split(".", 1)[0]
    return kind if kind in cephx.SERVICES else None
