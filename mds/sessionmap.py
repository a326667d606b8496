"""Client sessions of one rank, sans-IO (ref C1–C7).

A session is opened by a client (journaled as an ESession, so a new holder of the rank knows
it after replay), renewed every `session_timeout`/3 and closed by the client or by eviction.
This module decides; the daemon sends, journals and blocklists.

- C1/C2, reconnect: every open session the rank replayed must reconnect within
  `mds_reconnect_timeout`; the window extends while a missing client was seen recently;
  after it, the missing ones are evicted.
- C5/C6, idle sessions on an active rank: not renewed within `session_timeout`, a session goes
  stale (unless `mds_defer_session_stale` keeps it open, as it does for a session with nothing
  to revoke: one holding no file locks); not renewed within `session_autoclose`, it is
  evicted. A session that asked for its own "timeout" (an NFS head: Ganesha asks 300 s) is
  evicted after that long instead of going stale, and is kept through a reconnect it missed
  (C2), to be reclaimed or to time out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mds.events import result_of

OPEN = "open"
STALE = "stale"


@dataclass
class Session:
    client: str  # "client.<global id>"
    addr: str  # the client's instance, what a blocklist entry names ("ip:0/nonce")
    opened: float  # monotonic
    last_renew: float = 0.0
    last_seen: float = 0.0
    state: str = OPEN
    requests: int = 0
    metadata: dict = field(default_factory=dict)
    conn: object = None  # the daemon's connection to it, if any

    @property
    def num(self) -> int:
        tail = self.client.split(".", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    @property
    def human_name(self) -> str:
        """How Ceph's cluster log names a session: "<hostname> (<id>)", or the bare id for a
        client that sent no hostname (Ceph's Session::get_human_name and operator<<)."""
        host = self.metadata.get("hostname")
        return f"{host} ({self.num})" if isinstance(host, str) and host else str(self.num)

    def seen(self, now: float) -> None:
        self.last_seen = max(self.last_seen, now)

    def renewed(self, now: float) -> None:
        self.last_renew = now
        self.seen(now)
        self.state = OPEN


@dataclass(frozen=True)
class Evict:
    session: Session
    message: str  # the cluster-log line


class SessionMap:
    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.gather: set[str] = set()  # C1: replayed sessions not yet reconnected
        self.reconnect_start: float | None = None
        self.last_reconnect_start: float | None = None  # kept after reconnect (a denial says it)
        self.last_cleared_laggy: float = 0.0
        self.laggy_clients: list[Session] = []  # due for eviction, spared: the osd is laggy

    def get(self, client: str) -> Session | None:
        return self.sessions.get(client)

    def by_num(self, num: int) -> Session | None:
        return next((s for s in self.sessions.values() if s.num == num), None)

    def load(self, table: dict[str, dict], now: float) -> None:
        """The sessions a rank's journal and sessionmap object hold (replay)."""
        for client, d in table.items():
            if client not in self.sessions:
                self.sessions[client] = Session(client, d.get("addr", ""), now, now, 0.0,
                                                metadata=dict(d.get("metadata", {})))

    def add(self, client: str, addr: str, metadata: dict, now: float) -> Session:
        s = self.sessions.get(client)
        if s is None:
            s = self.sessions[client] = Session(client, addr, now, metadata=metadata)
        s.addr, s.metadata = addr, metadata
        s.renewed(now)
        return s

    def remove(self, client: str) -> None:
        self.sessions.pop(client, None)
        self.gather.discard(client)
        self.laggy_clients = [s for s in self.laggy_clients if s.client != client]

    # -- C1-C3: reconnect
    def start_reconnect(self, now: float, blocklisted: set[str]) -> list[Session]:
        """Enter reconnect: sessions of blocklisted clients are dropped at once (returned);
        every other one must reconnect."""
        dropped = [s for s in self.sessions.values() if s.addr in blocklisted]
        for s in dropped:
            self.remove(s.client)
        self.reconnect_start = now
        self.gather = set(self.sessions)
        if self.gather:  # Ceph's reconnect_start moves only when there is someone to wait for
            self.last_reconnect_start = now
        for s in self.sessions.values():
            s.last_renew = now
        return dropped

    def reconnected(self, client: str, now: float) -> bool:
        """A reconnect from `client`: True if it was expected."""
        if client not in self.gather:
            return False
        self.gather.discard(client)
        self.sessions[client].renewed(now)
        return True

    def denied_reconnect(self, client: str, addr: str, state: str, now: float,
                         timeout: float, started: float) -> str:
        """The cluster-log line for a reconnect outside up:reconnect (Ceph's
        Server::handle_client_reconnect): the source instance, and the time since this
        daemon's reconnect phase began (since it started, if it never had one)."""
        since = now - (self.last_reconnect_start if self.last_reconnect_start is not None
                       else started)
        return (f"denied reconnect attempt (mds is {state}) from {client} v1:{addr} "
                f"after {since:g} (allowed interval {timeout:g})")

    def reconnect_done(self) -> bool:
        return not self.gather

    def reconnect_tick(self, now: float, timeout: float) -> tuple[str, list[Evict]]:
        """C2: ("wait"|"extend"|"evict", evictions)."""
        if self.reconnect_start is None or not self.gather:
            return "wait", []
        elapsed = now - self.reconnect_start
        if elapsed < timeout:
            return "wait", []
        missing = [self.sessions[c] for c in sorted(self.gather)]
        if any(now - s.last_seen < timeout / 2 for s in missing if s.last_seen):
            return "extend", []
        # C2: a session with its own "timeout" is kept, to be reclaimed (RECLAIM_RESET by
        # its client's next incarnation) or to time out on the active rank
        kept = [s for s in missing if "timeout" in s.metadata]
        for s in kept:
            self.gather.discard(s.client)
            s.last_renew = now
        return "evict", [Evict(s, f"evicting unresponsive client {s.human_name}, after "
                                  f"waiting {elapsed:g} seconds during MDS startup")
                         for s in missing if s not in kept]  # Server::reconnect_tick

    def last_rank_stopping(self, num_in: int) -> list[Session]:
        """MDSRank::stopping_start: when the last rank stops (`fs set <fs> down true`,
        max_mds 0) its clients are evicted first; with more ranks in, they stay."""
        if num_in != 1:
            return []
        return sorted(self.sessions.values(), key=lambda s: s.num)

    # -- C5/C6: idle sessions
    def idle(self, now: float, session_timeout: float, autoclose: float, defer_stale: bool,
             defer_eviction: bool = False,
             busy: set[str] | frozenset = frozenset()) -> tuple[list[Session], list[Evict]]:
        """Sessions to mark stale and sessions to evict, on an active rank's tick (Ceph's
        Server::find_idle_sessions). A session's own `timeout` (`session config`; 0: never)
        evicts it without going stale, where it would otherwise go stale. With
        `defer_eviction` (the osd is laggy, defer_client_eviction_on_laggy_osds) nobody is
        evicted: those due are kept in `laggy_clients` (MDS_CLIENTS_LAGGY). `busy` are the
        clients holding file locks: Ceph defers only a session holding nothing another client
        may wait for."""
        if now - self.last_cleared_laggy < session_timeout:
            return [], []  # B5: we were laggy ourselves; nobody had a fair chance
        stale, evict = [], []
        for s in self.sessions.values():
            idle = now - max(s.last_renew, s.last_seen)
            if s.state == OPEN:
                if idle >= autoclose:
                    evict.append(_idle_evict(s, now))
                elif idle < session_timeout or (defer_stale and s.client not in busy):
                    continue
                elif "timeout" in s.metadata:
                    own = _strtoul(s.metadata["timeout"])
                    if own and idle >= own:
                        evict.append(_idle_evict(s, now))
                else:
                    stale.append(s)
            elif s.state == STALE and idle >= autoclose:
                evict.append(_idle_evict(s, now))
        for s in stale:
            s.state = STALE
        if defer_eviction and evict:
            self.laggy_clients = [e.session for e in evict]
            return stale, []
        self.laggy_clients = []
        return stale, evict


def _strtoul(value: object) -> int:
    """A session's "timeout" as Ceph reads it (strtoul): its leading digits, else 0. A client
    may send its own in its metadata at session open, so anything may be there."""
    text = str(value).strip()
    digits = text[:len(text) - len(text.lstrip("0123456789"))]
    return int(digits) if digits else 0


def evicting_line(s: Session, blocklist: bool) -> str:
    """The cluster-log line of an eviction by command or by a stopping rank (Ceph's
    MDSRank::evict_client)."""
    how = "Evicting (and blocklisting)" if blocklist else "Evicting"
    return f"{how} client session {s.num} ({s.addr})"


def _idle_evict(s: Session, now: float) -> Evict:
    """Ceph's Server::find_idle_sessions words it with the seconds since the last renewal,
    printed as a C++ stream prints a double (six significant digits)."""
    return Evict(s, f"evicting unresponsive client {s.human_name}, after "
                    f"{now - s.last_renew:g} seconds")


MAX_COMPLETED_PER_CLIENT = 10_000  # a safety net for clients that never say what they have


def split_reqid(reqid: str) -> tuple[str, int]:
    """"client.4123:17" -> ("client.4123", 17)."""
    client, _, tid = reqid.rpartition(":")
    return client, int(tid)


def _resolve(record: dict | None) -> dict | None:
    """A completed request's result: recorded as such, or the journal event it came from
    (events have a type "t"; results never do)."""
    return result_of(record) if record is not None and "t" in record else record


class CompletedRequests:
    """Per client, the results of its requests that it may still resend after a failover
    (Ceph's session completed_requests): a resend is answered from here, not done again. A
    client says with each request the oldest tid it still waits for (`oldest_tid`); what is
    older is dropped. Closing the session drops the client's records."""

    def __init__(self) -> None:
        self.by_client: dict[str, dict[int, dict]] = {}
        self._floor: dict[str, int] = {}  # no record of the client is older: trim is free

    def __len__(self) -> int:
        return sum(len(r) for r in self.by_client.values())

    def get(self, client: str, tid: int) -> dict | None:
        return _resolve(self.by_client.get(client, {}).get(tid))

    def add(self, client: str, tid: int, result: dict, oldest: int = 0) -> None:
        records = self.by_client.setdefault(client, {})
        records[tid] = result
        if tid < self._floor.get(client, 0):
            self._floor[client] = tid
        self.trim(client, oldest)
        while len(records) > MAX_COMPLETED_PER_CLIENT:
            del records[min(records)]

    def trim(self, client: str, oldest: int) -> None:
        records = self.by_client.get(client)
        if records and oldest > self._floor.get(client, 0):  # once per oldest, not per event
            for tid in [t for t in records if t < oldest]:
                del records[tid]
            self._floor[client] = oldest

    def forget(self, client: str) -> None:
        self.by_client.pop(client, None)
        self._floor.pop(client, None)

    def note_event(self, ev: dict) -> None:
        """An EUpdate (journaled or replayed): remember its result, trim by its `oldest`. The
        event itself is kept, its result worked out only if a resend asks for it (replay
        notes 10^5 of them; few are ever asked for)."""
        if ev.get("reqid"):
            client, tid = split_reqid(ev["reqid"])
            self.add(client, tid, ev if "t" in ev else result_of(ev), ev.get("oldest", 0))

    def to_wire(self, client: str) -> dict[str, dict]:
        return {str(t): _resolve(r) for t, r in sorted(self.by_client.get(client, {}).items())}

    def load(self, client: str, wire: dict) -> None:
        self._floor.pop(client, None)
        for tid, result in wire.items():
            self.by_client.setdefault(client, {})[int(tid)] = result
