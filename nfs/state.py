"""An NFSv4.1 server's state, sans-IO: client ids, sessions and leases, opens, byte-range locks,
and the grace period rules, as NFS-Ganesha applies them (nfs4_op_open.c open4_validate_claim,
nfs4_op_lock.c, nfs4_op_reclaim_complete.c, nfs4_recovery.c). Time arrives as `now`; failures
are NFS4Error with the NFSv4 status name. The gateway's shell does the I/O (CephFS, RADOS).

Grace: while `in_grace`, new state (OPEN CLAIM_NULL, non-reclaim LOCK) is refused with
NFS4ERR_GRACE; reclaims (OPEN CLAIM_PREVIOUS, LOCK reclaim) are allowed only to clients whose
owner was in the previous incarnation's recovery database (`reclaimable`) and only until they
send RECLAIM_COMPLETE; otherwise NFS4ERR_NO_GRACE. A v4.1 client must send RECLAIM_COMPLETE
before any new state, grace or not (NFS4ERR_GRACE). A head enforcing another head's grace
period (`start_grace(reclaimable=None)`) allows no reclaims at all.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from nfs.nfs4 import LOCK_TYPES, TO_EOF, WRITE_LT, WRITEW_LT, NFS4Error


@dataclass
class Client:
    clientid: int
    owner: str  # co_ownerid: what the recovery database records
    verifier: str
    last_renew: float
    allow_reclaim: bool = False
    reclaim_complete: bool = False
    sessions: set[int] = field(default_factory=set)


@dataclass
class Open:
    stateid: int
    clientid: int
    path: str
    reclaimed: bool = False


@dataclass
class Lock:
    stateid: int  # the lock stateid (one per client and file)
    clientid: int
    path: str
    type: int
    offset: int
    length: int  # TO_EOF: to the end

    @property
    def end(self) -> int:
        return TO_EOF if self.length == TO_EOF else self.offset + self.length

    def overlaps(self, offset: int, end: int) -> bool:
        return self.offset < end and offset < self.end

    def conflicts(self, clientid: int, type_: int, offset: int, end: int) -> bool:
        writes = self.type in (WRITE_LT, WRITEW_LT) or type_ in (WRITE_LT, WRITEW_LT)
        return self.clientid != clientid and writes and self.overlaps(offset, end)


class NFSState:
    def __init__(self, lease: float, boot: int = 1) -> None:
        self.lease = lease
        self.boot = boot  # this incarnation: client ids of another one are stale
        self.clients: dict[int, Client] = {}
        self.sessions: dict[int, int] = {}  # sessionid -> clientid
        self.opens: dict[int, Open] = {}
        self.locks: list[Lock] = []
        self.in_grace = False
        self.grace_started = 0.0
        self.reclaimable: set[str] | None = None  # owners that may reclaim; None: nobody
        self._ids = itertools.count(1)
        # (clientid, path) whose locks went with their client (lease expired, rebooted):
        # the shell releases them in CephFS too, then clears this
        self.released: list[tuple[int, str]] = []

    # -- grace
    def start_grace(self, now: float, reclaimable: set[str] | None) -> None:
        """Enter a grace period: `reclaimable` are the owners in the old recovery database
        (a restarted head); None for a head enforcing another's grace period."""
        self.in_grace, self.grace_started = True, now
        self.reclaimable = set(reclaimable) if reclaimable is not None else None
        for c in self.clients.values():
            c.allow_reclaim = self._may_reclaim(c.owner)

    def stop_reclaims(self) -> None:
        """This head lifted its N: it keeps enforcing but allows no more reclaims."""
        self.reclaimable = None
        for c in self.clients.values():
            c.allow_reclaim = False

    def end_grace(self) -> None:
        self.in_grace, self.reclaimable = False, None
        for c in self.clients.values():
            c.allow_reclaim = False

    def reclaims_done(self) -> bool:
        """Early lift (nfs4_recovery.c): every client of the old database that reclaims here
        sent RECLAIM_COMPLETE (trivially true when there were none)."""
        if not self.in_grace or self.reclaimable is None:
            return self.in_grace
        done = {c.owner for c in self.clients.values() if c.allow_reclaim and c.reclaim_complete}
        return self.reclaimable <= done

    def grace_over(self, now: float, grace_period: float, early: bool = True) -> bool:
        """This head no longer needs its grace period (reclaims done or its time is up): it
        may lift its N. It keeps enforcing until the cluster's grace period ends (R=0).
        `early` is false with NLM enabled (nfs_try_lift_grace): NLM clients send no
        RECLAIM_COMPLETE, so only the time ends it."""
        if not self.in_grace:
            return False
        if now - self.grace_started >= grace_period or self.reclaimable is None:
            return True  # a survivor needs nothing itself: R=0 ends its enforcement
        return early and self.reclaims_done()

    def _may_reclaim(self, owner: str) -> bool:
        return self.in_grace and self.reclaimable is not None and owner in self.reclaimable

    # -- client ids and sessions
    def exchange_id(self, owner: str, verifier: str, now: float) -> int:
        """The client id of `owner`: the same one for the same verifier; a new verifier is a
        rebooted client whose previous state goes."""
        for c in list(self.clients.values()):
            if c.owner == owner:
                if c.verifier == verifier:
                    c.last_renew = now
                    return c.clientid
                self._purge(c.clientid)
        cid = (self.boot << 32) | next(self._ids)
        self.clients[cid] = Client(cid, owner, verifier, now,
                                   allow_reclaim=self._may_reclaim(owner))
        return cid

    def create_session(self, clientid: int, now: float) -> int:
        c = self._client(clientid)
        sid = next(self._ids)
        self.sessions[sid] = clientid
        c.sessions.add(sid)
        c.last_renew = now
        return sid

    def sequence(self, sessionid: int, now: float) -> Client:
        """Renew the lease of the session's client (every v4.1 compound starts with it)."""
        cid = self.sessions.get(sessionid)
        if cid is None:
            raise NFS4Error("NFS4ERR_BADSESSION", f"no session {sessionid}")
        c = self.clients[cid]
        c.last_renew = now
        return c

    def destroy_session(self, sessionid: int) -> None:
        cid = self.sessions.pop(sessionid, None)
        if cid is None:
            raise NFS4Error("NFS4ERR_BADSESSION", f"no session {sessionid}")
        self.clients[cid].sessions.discard(sessionid)

    def expire(self, now: float) -> list[Client]:
        """Clients whose lease ran out: their sessions, opens and locks go."""
        gone = [c for c in self.clients.values() if now - c.last_renew > self.lease]
        for c in gone:
            self._purge(c.clientid)
        return gone

    def confirmed(self) -> list[str]:
        """Owners of the live clients: what a new recovery database records."""
        return sorted(c.owner for c in self.clients.values())

    def _client(self, clientid: int) -> Client:
        c = self.clients.get(clientid)
        if c is None:
            if clientid >> 32 != self.boot:
                raise NFS4Error("NFS4ERR_STALE_CLIENTID", f"client id {clientid:#x} is from "
                                                          f"another incarnation")
            raise NFS4Error("NFS4ERR_EXPIRED", f"client id {clientid:#x} has expired")
        return c

    def _purge(self, clientid: int) -> None:
        c = self.clients.pop(clientid)
        self.released += sorted({(clientid, lk.path) for lk in self.locks
                                 if lk.clientid == clientid})
        for sid in c.sessions:
            self.sessions.pop(sid, None)
        self.opens = {k: o for k, o in self.opens.items() if o.clientid != clientid}
        self.locks = [lk for lk in self.locks if lk.clientid != clientid]

    # -- state-changing operations
    def reclaim_complete(self, client: Client) -> None:
        if client.reclaim_complete:
            raise NFS4Error("NFS4ERR_COMPLETE_ALREADY")
        client.reclaim_complete = True

    def check_claim(self, client: Client, claim: str) -> None:
        """open4_validate_claim: checked before anything else of an OPEN."""
        if claim == "null":
            if self.in_grace or not client.reclaim_complete:
                raise NFS4Error("NFS4ERR_GRACE", "no new state during the grace period"
                                if self.in_grace else "RECLAIM_COMPLETE first")
        elif claim == "previous":
            self._check_reclaim(client)
        else:
            raise NFS4Error("NFS4ERR_NOTSUPP", f"claim type {claim!r}")

    def open(self, client: Client, path: str, claim: str) -> Open:
        """OPEN with CLAIM_NULL ("null") or CLAIM_PREVIOUS ("previous")."""
        self.check_claim(client, claim)
        for o in self.opens.values():
            if o.clientid == client.clientid and o.path == path:
                return o
        o = Open(next(self._ids), client.clientid, path, reclaimed=claim == "previous")
        self.opens[o.stateid] = o
        return o

    def close(self, client: Client, stateid: int) -> None:
        o = self._open(client, stateid)
        if any(lk.clientid == client.clientid and lk.path == o.path for lk in self.locks):
            raise NFS4Error("NFS4ERR_LOCKS_HELD")
        del self.opens[stateid]

    def lock(self, client: Client, stateid: int, type_: str, offset: int, length: int,
             reclaim: bool = False) -> Lock:
        """LOCK on the file of an open stateid; NFS4ERR_DENIED (with the holder) on a
        conflict with another client's lock. `check_lock` first, when the lock must also be
        taken elsewhere (CephFS) before it is recorded here."""
        o = self.check_lock(client, stateid, type_, offset, length, reclaim)
        end, kind = _range(offset, length), LOCK_TYPES[type_]
        sid = next((lk.stateid for lk in self.locks if lk.clientid == client.clientid
                    and lk.path == o.path), None) or next(self._ids)
        self._unlock_range(client.clientid, o.path, offset, end)
        new = Lock(sid, client.clientid, o.path, kind, offset, length)
        self.locks.append(new)
        return new

    def check_lock(self, client: Client, stateid: int, type_: str, offset: int, length: int,
                   reclaim: bool = False) -> Open:
        """Everything LOCK checks here: the stateid, the range, the grace rules and this
        head's own locks. Returns the open."""
        o = self._open(client, stateid)
        if type_ not in LOCK_TYPES:
            raise NFS4Error("NFS4ERR_INVAL", f"lock type {type_!r}")
        end = _range(offset, length)
        if reclaim:
            self._check_reclaim(client)
        elif self.in_grace or not client.reclaim_complete:
            raise NFS4Error("NFS4ERR_GRACE", "no new locks during the grace period"
                            if self.in_grace else "RECLAIM_COMPLETE first")
        kind = LOCK_TYPES[type_]
        for lk in self.locks:
            if lk.path == o.path and lk.conflicts(client.clientid, kind, offset, end):
                owner = self.clients[lk.clientid].owner if lk.clientid in self.clients else ""
                raise NFS4Error("NFS4ERR_DENIED", f"{o.path} [{offset}, {end}) is locked",
                                denied={"offset": lk.offset, "length": lk.length,
                                        "type": lk.type, "owner": owner})
        return o

    def locku(self, client: Client, lock_stateid: int, offset: int, length: int) -> str:
        """LOCKU; returns the file's path."""
        mine = [lk for lk in self.locks if lk.stateid == lock_stateid]
        if not mine or mine[0].clientid != client.clientid:
            raise NFS4Error("NFS4ERR_BAD_STATEID", f"no lock stateid {lock_stateid}")
        self._unlock_range(client.clientid, mine[0].path, offset, _range(offset, length))
        return mine[0].path

    def locks_of(self, path: str) -> list[Lock]:
        return [lk for lk in self.locks if lk.path == path]

    def _check_reclaim(self, client: Client) -> None:
        if not client.allow_reclaim or not self.in_grace or client.reclaim_complete:
            raise NFS4Error("NFS4ERR_NO_GRACE", "not allowed to reclaim")

    def _open(self, client: Client, stateid: int) -> Open:
        o = self.opens.get(stateid)
        if o is None or o.clientid != client.clientid:
            raise NFS4Error("NFS4ERR_BAD_STATEID", f"no open stateid {stateid}")
        return o

    def _unlock_range(self, clientid: int, path: str, offset: int, end: int) -> None:
        """Cut [offset, end) out of the client's locks on `path` (POSIX-style splitting)."""
        kept: list[Lock] = []
        for lk in self.locks:
            if lk.clientid != clientid or lk.path != path or not lk.overlaps(offset, end):
                kept.append(lk)
                continue
            if lk.offset < offset:
                kept.append(Lock(lk.stateid, clientid, path, lk.type, lk.offset,
                                 offset - lk.offset))
            if end != TO_EOF and lk.end > end:
                kept.append(Lock(lk.stateid, clientid, path, lk.type, end,
                                 TO_EOF if lk.length == TO_EOF else lk.end - end))
        self.locks = kept


def _range(offset: int, length: int) -> int:
    """The end of [offset, offset + length); NFS4ERR_INVAL for a zero length or one past
    2^64 (RFC 5661 §18.10.3)."""
    if type(offset) is not int or type(length) is not int or offset < 0 or length <= 0:
        raise NFS4Error("NFS4ERR_INVAL", f"bad range offset={offset} length={length}")
    if length == TO_EOF:
        return TO_EOF
    if offset + length > TO_EOF:
        raise NFS4Error("NFS4ERR_INVAL", "range beyond 2^64")
    return offset + length
