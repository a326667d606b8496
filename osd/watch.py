"""Watch/notify bookkeeping of the osd, sans-IO (Ceph's Watch and Notify in the OSD).

A client watches an object (`watch`, with a cookie it chose and a timeout). `notify` on the
object is delivered to every watcher; it completes when each has acknowledged (`ack`) or when
its timeout passes (`finish`), and reports the acks (watcher, cookie, reply payload) and the
watchers that timed out, as `rados_notify2` does. A watcher whose connection closes keeps its
watch for its timeout (it may come back, as a librados client re-establishes its watch);
`expire` then drops it. Time arrives as `now`; the trio shell delivers and waits.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

Obj = tuple[int, str]  # (pool, store key of the object)
WatcherId = tuple[int, int]  # (connection id, cookie)


@dataclass
class Watch:
    obj: Obj
    entity: str  # e.g. "client.4123"
    timeout: float
    connected: bool = True
    since: float = 0.0  # when the connection went away


@dataclass
class Notify:
    id: int
    obj: Obj
    deadline: float
    pending: dict[WatcherId, str]  # watcher -> entity
    acks: list = field(default_factory=list)  # [entity, cookie, payload]
    timeouts: list = field(default_factory=list)  # [entity, cookie]

    @property
    def done(self) -> bool:
        return not self.pending


class Watches:
    def __init__(self) -> None:
        self.watches: dict[WatcherId, Watch] = {}
        self.notifies: dict[int, Notify] = {}
        self._ids = itertools.count(1)

    def watch(self, obj: Obj, conn: int, cookie: int, entity: str, timeout: float) -> None:
        """Add (or renew) a watch; a cookie seen again on a new connection is a reconnect."""
        for wid in [w for w in self.watches if w[1] == cookie and self.watches[w].obj == obj
                    and self.watches[w].entity == entity and not self.watches[w].connected]:
            self._drop(wid)
        self.watches[(conn, cookie)] = Watch(obj, entity, timeout)

    def unwatch(self, conn: int, cookie: int) -> bool:
        return self._drop((conn, cookie))

    def watchers(self, obj: Obj) -> list[tuple[str, int]]:
        """(entity, cookie) of every watch on `obj` (`rados listwatchers`)."""
        return sorted((w.entity, wid[1]) for wid, w in self.watches.items() if w.obj == obj)

    def disconnect(self, conn: int, now: float) -> None:
        """The connection closed: its watches wait `timeout` for the client to come back."""
        for wid, w in self.watches.items():
            if wid[0] == conn and w.connected:
                w.connected, w.since = False, now

    def notify(self, obj: Obj, timeout: float, now: float) -> tuple[int, list[WatcherId]]:
        """Start a notify; returns its id and the connected watchers to deliver it to. The
        disconnected ones can only time out (or go away)."""
        pending = {wid: w.entity for wid, w in self.watches.items() if w.obj == obj}
        n = Notify(next(self._ids), obj, now + timeout, pending)
        self.notifies[n.id] = n
        return n.id, [wid for wid in pending if self.watches[wid].connected]

    def ack(self, notify_id: int, conn: int, cookie: int, payload: bytes) -> bool:
        """A watcher's acknowledgement; True if it completed the notify."""
        n = self.notifies.get(notify_id)
        entity = n.pending.pop((conn, cookie), None) if n else None
        if entity is None:
            return False  # late, unknown or repeated: ignored
        n.acks.append([entity, cookie, payload])
        return n.done

    def finish(self, notify_id: int) -> Notify | None:
        """End a notify (all acked, or its timeout passed): the rest count as timeouts."""
        n = self.notifies.pop(notify_id, None)
        if n is not None:
            n.timeouts.extend([entity, wid[1]] for wid, entity in sorted(n.pending.items()))
            n.pending.clear()
        return n

    def expire(self, now: float) -> list[int]:
        """Drop disconnected watches past their timeout; ids of notifies this completed."""
        gone = [wid for wid, w in self.watches.items()
                if not w.connected and now - w.since >= w.timeout]
        completed: list[int] = []
        for wid in gone:
            self._drop(wid)
        for n in self.notifies.values():
            if any(wid in n.pending for wid in gone):
                for wid in gone:
                    n.pending.pop(wid, None)
                if n.done:
                    completed.append(n.id)
        return completed

    def _drop(self, wid: WatcherId) -> bool:
        return self.watches.pop(wid, None) is not None
