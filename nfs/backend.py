"""Recovery backends of the gateway: where a head's grace periods come from (trio shell over
nfs/grace.py, nfs/recovery.py and nfs/state.py).

`rados_cluster` (NFS-Ganesha's recovery_rados_cluster.c): the shared grace database and one
recovery database per head and epoch. At start: the membership check (not a member: refuse to
start), a watch on the grace object, E on, join a grace period (`start`), the new database
rec-C and the old one rec-R (whose clients may reclaim), then wait until every member
enforces. Then, on each notify or every reaper pass: a head not in grace that sees R != 0
records its clients in rec-C and enforces; a head in grace whose reclaims are done lifts its N,
and once R = 0 stops enforcing and deletes its old databases. A clean shutdown asks for a grace
period (`start`) so the restarted head finds one.

`fs` and the others: no shared database; a local grace period of Grace_Period at start, in which
nobody can reclaim (mdsemu keeps no local recovery directory).
"""

from __future__ import annotations

import errno

import structlog
import trio

from client.rados import IoCtx, RadosError
from nfs import grace, recovery
from nfs.grace_tool import read, update
from nfs.state import NFSState

log = structlog.get_logger("nfs")

WAIT_POLL = 5.0  # nfs_wait_for_grace_enforcement's fallback poll, in case a notify is missed


class NotAMember(Exception):
    pass


class LocalBackend:
    """A grace period of `grace_period` seconds at start, unless Graceless."""

    def __init__(self, state: NFSState, grace_period: float, graceless: bool) -> None:
        self.state = state
        self.grace_period = grace_period
        self.graceless = graceless
        self.wake = trio.Event()
        self.wake_report = trio.Event()

    async def start(self, now: float) -> None:
        if not self.graceless:
            self.state.start_grace(now, reclaimable=set())

    async def client_confirmed(self, clientid: int, addr: str, owner: str) -> None:
        pass

    async def client_gone(self, clientid: int) -> None:
        pass

    def grace_view(self) -> dict:
        return {}

    async def reap(self, now: float) -> None:
        if self.state.in_grace and now - self.state.grace_started >= self.grace_period:
            self.state.end_grace()
            log.info("grace period over")

    async def shutdown(self) -> None:
        pass


class RadosClusterBackend:
    def __init__(self, state: NFSState, io: IoCtx, oid: str, nodeid: str,
                 grace_period: float, graceless: bool, enable_nlm: bool = False) -> None:
        self.state = state
        self.io = io
        self.enable_nlm = enable_nlm  # Enable_NLM: no early lift
        self.oid = oid
        self.nodeid = nodeid
        self.grace_period = grace_period
        self.graceless = graceless
        self.current_db = ""  # rec-C:nodeid, where confirmed clients are recorded
        self.wake = trio.Event()
        self.last_db: grace.GraceDB | None = None  # as last read: what the head reports
        self.wake_report = trio.Event()  # the grace database changed: report it now

    def _notified(self, notify_id, notifier, payload) -> None:
        self.wake.set()  # the reaper looks at the grace database now

    async def _update(self, command) -> grace.GraceDB:
        return self._seen(await update(self.io, self.oid, command))

    def _seen(self, db: grace.GraceDB) -> grace.GraceDB:
        if db != self.last_db:
            self.wake_report.set()
        self.last_db = db
        return db

    def grace_view(self) -> dict:
        """The grace database as last read, for the monitor's report (the live view)."""
        db = self.last_db
        if db is None:
            return {}
        return {"cur": db.cur, "rec": db.rec,
                "flags": {n: ("N" if f & grace.NEED_GRACE else "") +
                          ("E" if f & grace.ENFORCING else "") for n, f in db.flags.items()}}

    async def start(self, now: float) -> None:
        try:
            found = await self.io.omap_get(self.oid, [self.nodeid])
            grace.member(found, [self.nodeid])
        except (RadosError, grace.GraceError) as e:
            raise NotAMember(f"{self.nodeid} is not a member of the grace database "
                             f"({self.io.pool}/{self.oid}): {e}") from None
        await self.io.watch(self.oid, self._notified, timeout=30.0)
        if self.graceless:  # nfs_start_grace: "skipping GRACE (Graceless is true)"
            db, _ = await read(self.io, self.oid)
            self.current_db = recovery.db_name(db.cur, self.nodeid)
            await self.io.operate(self.current_db, [["create", False], ["omap_clear"]])
            log.warning("Graceless is true: serving at once, no grace period")
            return
        await self._update(lambda db: grace.enforce(db, [self.nodeid], True))
        db = await self._update(lambda db: grace.join(db, [self.nodeid], True))
        self.current_db = recovery.db_name(db.cur, self.nodeid)
        await self.io.operate(self.current_db, [["create", False], ["omap_clear"]])
        try:
            old = await self.io.omap_get(recovery.db_name(db.rec, self.nodeid))
        except RadosError as e:
            if e.code != errno.ENOENT:
                raise
            old = {}
        allowed = recovery.reclaimable(old)
        self.state.start_grace(now, reclaimable=allowed)
        log.info("grace period started", cur=db.cur, rec=db.rec, reclaimable=len(allowed))
        while True:  # stall until every head enforces (nfs_wait_for_grace_enforcement)
            db, _ = await read(self.io, self.oid)
            if grace.enforcing_check(db, self.nodeid) == 0:
                break
            with trio.move_on_after(WAIT_POLL):
                await self.wake.wait()
            self.wake = trio.Event()
        log.info("every head enforces: serving reclaims")

    async def client_confirmed(self, clientid: int, addr: str, owner: str) -> None:
        key, value = recovery.record(clientid, addr, owner)
        await self.io.omap_set(self.current_db, {key: value})

    async def client_gone(self, clientid: int) -> None:
        try:
            await self.io.operate(self.current_db, [["omap_rm", [str(clientid)]]])
        except RadosError as e:
            if e.code != errno.ENOENT:
                raise

    async def reap(self, now: float) -> None:
        if self.graceless:
            return  # it neither enforces others' grace periods nor needs one
        db = self._seen((await read(self.io, self.oid))[0])
        s = self.state
        if recovery.survivor_must_enforce(db, s.in_grace):
            self.current_db = recovery.db_name(db.cur, self.nodeid)
            records = dict(recovery.record(c.clientid, "(unknown)", c.owner)
                           for c in s.clients.values())
            await self.io.operate(self.current_db, [["create", False], ["omap_clear"],
                                                    ["omap_set", records]])
            s.start_grace(now, reclaimable=None)
            await self._update(lambda d: grace.enforce(d, [self.nodeid], True))
            log.info("enforcing another head's grace period", cur=db.cur, rec=db.rec)
            return
        if s.in_grace and s.grace_over(now, self.grace_period, early=not self.enable_nlm):
            db = await self._update(lambda d: grace.lift(d, [self.nodeid]))
            if not db.flags.get(self.nodeid, 0) & grace.NEED_GRACE:
                s.stop_reclaims()  # N cleared: no more reclaims here (design doc)
            if db.rec == 0:
                s.end_grace()
                db = await self._update(lambda d: grace.enforce(d, [self.nodeid], False))
                await self._delete_old(db)
                log.info("grace period lifted", cur=db.cur)

    async def _delete_old(self, db: grace.GraceDB) -> None:
        try:
            names = await self.io.list()
        except RadosError:
            return
        for name in recovery.deletable(names, self.nodeid, db):
            try:
                await self.io.remove(name)
            except RadosError as e:
                if e.code != errno.ENOENT:
                    raise

    async def shutdown(self) -> None:
        """rados_cluster_shutdown: request a grace period so that this head's clients can
        reclaim when it comes back."""
        with trio.move_on_after(5):
            await self._update(lambda d: grace.join(d, [self.nodeid], True))
