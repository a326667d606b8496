"""The checker of an NFS load history, sans-IO (`mdsemu nfs-client verify`): events in, a
verdict out. `nfs/load.py` writes the history, one JSON object per line; times are the
client's (seconds), `sent` when a request left, `t` when its reply came back.

Events (`ev`):
  mount   {client, server, boot, lease}      a client id from incarnation `boot` of `server`
  grant   {client, server, boot, path, type, offset, length, reclaim, sent, t}   LOCK granted
  release {client, path, t}                  LOCKU about to be sent: the client stops relying
  lost    {client, path, t, reason}          the client learned that its lock is gone
  grace   {client, server, boot, in_grace, sent, t}   what the server said of its grace period

A client holds a lock from the reply that granted it until it releases it or learns that it
is lost: until then it may act on it, so that is the interval that must not overlap another
client's conflicting lock (same path, overlapping range, one of them a write). A reclaim
(`grant` with `reclaim`) continues the hold. The rules checked:
  conflict    two clients held conflicting locks at the same time
  unresolved  a lock held when its server restarted (the client saw a new `boot`) was neither
              reclaimed nor reported lost to its client
  grace       a new (non-reclaim) lock was granted while its server was known to be in a grace
              period: a grace observation before the request and one after the reply, same
              incarnation, and none saying "not in grace" in between
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

TO_EOF = 0xFFFFFFFFFFFFFFFF
WRITES = ("write", "writew")


class HistoryError(ValueError):
    """A history that cannot be checked (a bad event)."""


@dataclass
class Hold:
    client: str
    server: str
    path: str
    type: str
    offset: int
    length: int
    start: float
    boot: int
    end: float = math.inf
    restarted: bool = False  # its server restarted while it was held
    resolved: str = ""  # "reclaimed" or "lost" after a restart

    @property
    def stop(self) -> int:
        return TO_EOF if self.length == TO_EOF else self.offset + self.length

    def conflicts(self, other: Hold) -> bool:
        return (self.client != other.client and self.path == other.path
                and (self.type in WRITES or other.type in WRITES)
                and self.offset < other.stop and other.offset < self.stop
                and self.start < other.end and other.start < self.end)

    def describe(self) -> str:
        rng = "EOF" if self.length == TO_EOF else str(self.stop)
        end = "end" if self.end == math.inf else f"{self.end:.3f}"
        return (f"{self.client} {self.type} [{self.offset}, {rng}) via {self.server} "
                f"from {self.start:.3f} to {end}")


@dataclass
class Verdict:
    events: int = 0
    clients: int = 0
    grants: int = 0
    reclaims: int = 0
    lost: int = 0
    restarts: int = 0
    conflicts: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    grace: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.conflicts or self.unresolved or self.grace)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "events": self.events, "clients": self.clients,
                "grants": self.grants, "reclaims": self.reclaims, "lost": self.lost,
                "restarts": self.restarts, "conflicts": self.conflicts,
                "unresolved": self.unresolved, "grace": self.grace}


def _need(ev: dict, *keys: str) -> None:
    missing = [k for k in keys if k not in ev]
    if missing:
        raise HistoryError(f"event {ev!r} lacks {', '.join(missing)}")


def verify(events: list[dict]) -> Verdict:
    v = Verdict(events=len(events))
    for ev in events:
        if not isinstance(ev, dict):
            raise HistoryError(f"event {ev!r} is not an object")
        _need(ev, "ev", "client", "t")
        if not isinstance(ev["t"], (int, float)) or isinstance(ev["t"], bool):
            raise HistoryError(f"event {ev!r}: t is not a number")
    order = sorted(range(len(events)), key=lambda i: (float(events[i]["t"]), i))
    holds: list[Hold] = []
    held: dict[tuple[str, str], Hold] = {}  # (client, path) -> the hold in progress
    boots: dict[tuple[str, str], int] = {}  # (client, server) -> incarnation last seen
    grants: list[dict] = []
    grace: dict[str, list[dict]] = {}  # server -> observations
    clients = set()
    for i in order:
        ev = events[i]
        kind, client, t = ev["ev"], ev["client"], float(ev["t"])
        clients.add(client)
        if kind == "mount":
            _need(ev, "server", "boot")
            key = (client, ev["server"])
            if key in boots and boots[key] != ev["boot"]:
                v.restarts += 1
                for h in held.values():
                    if h.client == client and h.server == ev["server"] and h.boot != ev["boot"]:
                        h.restarted, h.resolved = True, ""
            boots[key] = ev["boot"]
        elif kind == "grant":
            _need(ev, "server", "boot", "path", "type", "offset", "length")
            h = held.get((client, ev["path"]))
            if ev.get("reclaim"):
                v.reclaims += 1
                if h is not None:
                    h.resolved, h.boot, h.server = "reclaimed", ev["boot"], ev["server"]
                    continue
                v.unresolved.append(f"{client} reclaimed {ev['path']} at {t:.3f}, a lock it "
                                    f"did not hold")
            v.grants += 1
            if h is not None:  # a new lock on the file replaces the old one
                h.end = t
            grants.append(ev)
            h = Hold(client, ev["server"], ev["path"], ev["type"], int(ev["offset"]),
                     int(ev["length"]), t, ev["boot"])
            holds.append(h)
            held[(client, ev["path"])] = h
        elif kind in ("release", "lost"):
            _need(ev, "path")
            h = held.pop((client, ev["path"]), None)
            if h is None:
                continue
            h.end = t
            if kind == "lost":
                v.lost += 1
                h.resolved = h.resolved or "lost"
            if h.restarted and not h.resolved:
                v.unresolved.append(f"{h.describe()}: its server restarted and the client "
                                    f"released it without reclaiming it or learning it was lost")
        elif kind == "grace":
            _need(ev, "server", "boot", "in_grace", "sent")
            grace.setdefault(ev["server"], []).append(ev)
    for h in held.values():
        if h.restarted and not h.resolved:
            v.unresolved.append(f"{h.describe()}: its server restarted and it was neither "
                                f"reclaimed nor reported lost")
    v.clients = len(clients)
    v.conflicts = _conflicts(holds)
    v.grace = [_grace_grant(g, grace.get(g["server"], [])) for g in grants]
    v.grace = [x for x in v.grace if x]
    return v


def _conflicts(holds: list[Hold]) -> list[str]:
    out = []
    by_path: dict[str, list[Hold]] = {}
    for h in holds:
        by_path.setdefault(h.path, []).append(h)
    for path, hs in sorted(by_path.items()):
        hs.sort(key=lambda h: h.start)
        for i, a in enumerate(hs):
            for b in hs[i + 1:]:
                if b.start >= a.end:
                    break
                if a.conflicts(b):
                    out.append(f"{path}: {a.describe()} / {b.describe()}")
    return out


def _grace_grant(g: dict, obs: list[dict]) -> str:
    """The grant made while its server was surely in grace, described; "" if not."""
    sent, t = float(g["sent"]), float(g["t"])
    same = [o for o in obs if o["boot"] == g["boot"]]
    before = [o for o in same if float(o["t"]) <= sent]
    after = [o for o in same if float(o["sent"]) >= t]
    if not before or not after:
        return ""
    b = max(before, key=lambda o: float(o["t"]))
    a = min(after, key=lambda o: float(o["sent"]))
    if not (b["in_grace"] and a["in_grace"]):
        return ""
    if any(not o["in_grace"] and float(o["t"]) >= float(b["t"])
           and float(o["sent"]) <= float(a["sent"]) for o in same):
        return ""
    return (f"{g['client']} was granted {g['type']} {g['path']} by {g['server']} at {t:.3f} "
            f"in a grace period (in grace at {float(b['t']):.3f} and {float(a['sent']):.3f})")


def render(v: Verdict, name: str) -> str:
    lines = [f"{name}: {v.events} events, {v.clients} clients, {v.grants} locks granted, "
             f"{v.reclaims} reclaimed, {v.lost} reported lost, {v.restarts} restarts seen "
             f"by clients"]
    lines += [f"conflict: {c}" for c in v.conflicts]
    lines += [f"unresolved: {u}" for u in v.unresolved]
    lines += [f"grace: {g}" for g in v.grace]
    if v.ok:
        lines.append("OK: no conflicting locks, every lock held across a restart reclaimed or "
                     "reported lost, no new lock in a grace period")
    else:
        lines.append(f"FAILED: {len(v.conflicts)} conflicts, {len(v.unresolved)} unresolved, "
                     f"{len(v.grace)} granted in a grace period")
    return "\n".join(lines)
