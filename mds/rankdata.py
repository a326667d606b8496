"""What a rank holds while it runs: its namespace, its journal on the osd, the requests it
has completed (so a resent request is answered, not done twice), and the request path.

A mutation is checked and applied in memory under one lock, journaled, and answered only once
the osd has it on disk (a safe reply, J5). If the osd says we are blocklisted, this instance was
replaced: it must stop at once (`Fenced`), and the daemon respawns (B9, F4).
"""

from __future__ import annotations

import errno
import time

import structlog
import trio

from mds import applier, filelocks, serving, subtree, xrank
from mds import journal as j
from mds.mdlog import MDLog
from mds.mdstore import RankStore, damaged_path
from mds.namespace import FSError, Namespace
from mds.sessionmap import CompletedRequests, split_reqid
from osd.objecter import Blocklisted, OSDClient, OSDError

log = structlog.get_logger("mds")


FILELOCK_OPS = ("setfilelock", "getfilelock")


class Fenced(Exception):
    """The osd refused us (EBLOCKLISTED): a newer instance holds the rank."""


class Damaged(Exception):
    """The rank's metadata cannot be read (F5)."""


class RankData:
    def __init__(self, osd: OSDClient, pool: int, rank: int, events_per_segment: int,
                 max_segments: int, min_epoch: int = 0) -> None:
        self.store = RankStore(osd, pool, rank, events_per_segment, max_segments, min_epoch)
        self.ns: Namespace | None = None
        self.completed = CompletedRequests()  # what a resend is answered with
        self.in_progress: dict[str, trio.Event] = {}  # writes being executed (reqid)
        self.lock = trio.Lock()
        self.requests = 0  # served, for `fs status` rates
        self.mdlog = MDLog(self.store, self._io)  # the journal's write queue (J5)
        self.frozen: set[int] = set()  # subtree roots being exported: their requests wait
        # Cross-rank operations (mds.xrank): directories locked by the ones we are master of
        # (count), their ids until committed or abandoned, and a wake-up for the waiters.
        self.xlocks: dict[int, int] = {}
        self.xinflight: dict[str, trio.Event] = {}
        self._xchanged = trio.Event()
        # The master side (mds.peerlink): (reqid, op, args, plan, oldest) -> reply
        self.xrank_master = None
        self.store.subtree_map = lambda: subtree.subtree_map(self.ns) if self.ns else {}

    def set_log_pause(self, paused: bool) -> None:
        self.mdlog.set_pause(paused)

    def _enqueue(self, ev: dict) -> list:
        return self.mdlog.enqueue(ev)

    async def _journal(self, entry: list, lazy: bool = False) -> None:
        await self.mdlog.journal(entry, lazy)

    async def flush_log(self) -> None:
        await self.mdlog.flush_log()

    async def _io(self, coro):
        try:
            return await coro
        except Blocklisted:
            raise Fenced("we have been blocklisted (fenced), respawning...") from None
        except j.JournalDamaged as e:
            raise Damaged(str(e)) from None
        except OSDError as e:
            if e.code == errno.EIO:
                raise Damaged(str(e)) from None
            raise

    # -- the rank's life (R3, R4, R5)
    async def create(self) -> None:
        self.ns = Namespace(now=time.time(), rank=self.store.rank)
        await self._io(self.store.create(self.ns))

    async def load(self) -> int:
        """Replay: directory objects plus the journal tail. Returns events replayed."""
        self.ns = await self._io(self.store.load(self.completed))
        return self.store.replayed

    async def follow(self) -> int:
        """One standby-replay pass (R5): apply what the active wrote since the last pass."""
        header = await self._io(self.store.read_header())
        if self.store.read_pos < header.trimmed_pos:
            raise Fenced("standby MDS fell behind active MDS journal's expire_pos, restarting")
        count = await self._io(self.store.replay_more(self.ns, self.completed))
        return count

    async def flush_all(self) -> None:
        """Write every directory back and expire the journal (stopping, X4)."""
        async with self.lock:  # a new segment, opened with the subtree map, then expire
            await self._journal(self._enqueue(self.store.opener()))
            await self._io(self.store.trim(everything=True))

    def stats(self) -> dict:
        ns, segs = self.ns, self.store.segments.segments
        if ns is None:
            return {}
        return {"requests": self.requests, "events": self.store.replayed_total,
                "inos": len(ns.inodes), "dns": len(ns.inodes) - 1, "dirs": len(ns.dentries),
                "journal_events": sum(s.events for s in segs), "journal_segments": len(segs)}

    def health(self, warn_factor: float) -> list[dict]:
        segs = self.store.segments
        if segs.behind_on_trimming(warn_factor):
            n, mx = len(segs.segments), segs.max_segments
            return [{"type": "MDS_TRIM", "severity": "HEALTH_WARN",
                     "message": f"Behind on trimming ({n}/{mx})",
                     "metadata": {"num_segments": n, "max_segments": mx}}]
        return []

    # -- subtrees (multi-active: mds.subtree)
    def _redirect(self, op: str, args: dict) -> tuple[int, dict, str] | None:
        """A forward to the rank holding the path, or EAGAIN while it is being exported."""
        fwd = subtree.route(self.ns, op, args)
        if fwd is not None:
            return -errno.EREMOTE, {"forward": fwd[0], "subtree": fwd[1]}, \
                f"forward to mds rank {fwd[0]} (holds {fwd[1]})"
        if self.store.damaged and damaged_path(self.ns, self.store.damaged, op, args):
            return -errno.EIO, {}, "metadata damaged (see `damage ls`)"
        if self.frozen and any(subtree.under(self.ns, i, self.frozen)
                               for i in subtree.key_inos(self.ns, op, args)):
            return -errno.EAGAIN, {}, "subtree is being exported; retry"
        return None

    async def export_prepare(self, root: int) -> dict:
        """Freeze the subtree, write everything back, and snapshot it for the importer."""
        self.frozen.add(root)
        try:
            while any(subtree.under(self.ns, i, {root}) for i in self.locked()):
                await self._xchanged.wait()  # a cross-rank operation there finishes first
            await self.flush_all()
            async with self.lock:
                return subtree.snapshot(self.ns, root)
        except BaseException:
            self.frozen.discard(root)
            raise

    async def export_commit(self, root: int, to: int, export_id: str) -> None:
        """The importer journaled it: journal the EExport and forget the contents."""
        try:
            async with self.lock:
                ev = {"t": j.EEXPORT, "root": root, "to": to, "export_id": export_id}
                applier.apply(self.ns, ev)
                waiter = self._enqueue(ev)
            await self._journal(waiter)
        finally:
            self.frozen.discard(root)

    def export_abort(self, root: int) -> None:
        self.frozen.discard(root)

    async def import_subtree(self, ev: dict) -> None:
        """Journal an EImport (idempotent by export id); the subtree is ours from then on."""
        async with self.lock:
            if ev["export_id"] in subtree.imported_ids(self.ns):
                return
            applier.apply(self.ns, ev)
            waiter = self._enqueue(ev)
        await self._journal(waiter)

    async def journal_pin(self, path: str, value: str) -> bool:
        """A pin set through the rank holding the inode (its parent's), on a directory whose
        contents we hold: our copy of the inode changes too, journaled, so that a replay (or
        the next ESubtreeMap's chain) keeps it. False: we have no such directory."""
        async with self.lock:
            try:
                node = self.ns.resolve(path)
            except FSError:
                return False
            ev = {"t": j.EUPDATE, "op": "setattr", "ino": node.ino,
                  "dir": self.ns.parent[node.ino], "attrs": {},
                  "xattrs": {subtree.PIN_XATTR: value}, "stamp": node.ctime}
            applier.apply(self.ns, ev)
            waiter = self._enqueue(ev)
        await self._journal(waiter)
        return True

    def imports_from(self, rank: int) -> list[list]:
        return [[ino, v[1]] for ino, v in sorted(self.ns.imported.items()) if v[0] == rank]

    async def forget_exported(self, root: int, to: int, export_id: str) -> None:
        """Resolve: a peer imported a subtree we still hold (we died between its EImport
        and our EExport): finish the export now."""
        if subtree.unfinished_export(self.ns, root):
            self.frozen.add(root)
            await self.export_commit(root, to, export_id)

    # -- cross-rank operations (mds.xrank)
    def locked(self) -> set[int]:
        return set(self.xlocks) | xrank.locks(self.ns)

    def _blocked(self, op: str, args: dict) -> bool:
        locked = self.locked()
        return bool(locked) and any(i in locked for i in subtree.key_inos(self.ns, op, args))

    def _xnotify(self) -> None:
        self._xchanged.set()
        self._xchanged = trio.Event()

    def xunlock(self, inos: list[int]) -> None:
        for i in inos:
            self.xlocks[i] -= 1
            if not self.xlocks[i]:
                del self.xlocks[i]
        self._xnotify()

    async def xrank_commit(self, op: str, args: dict, plan: dict, reply: dict, xid: str,
                           reqid: str, oldest: int) -> dict:
        """The master: the witness prepared; journal our EUpdate (the commit point)."""
        async with self.lock:
            ev = xrank.master_event(self.ns, op, args, plan, reply, xid, time.time())
            ev.update(t=j.EUPDATE, reqid=reqid, oldest=oldest)
            applier.apply(self.ns, ev)
            ino = ev["ino"]
            ev["result"] = {"inode": self.ns.stat(self.ns.inodes[ino])} \
                if op == "rename" and ino in self.ns.inodes else {}
            waiter = self._enqueue(ev)
        await self._journal(waiter)
        return ev["result"]

    async def xrank_committed(self, xid: str) -> None:
        """The master: the witness committed too (ECommitted)."""
        async with self.lock:
            if xid not in self.ns.xmaster:
                return
            ev = {"t": j.ECOMMITTED, "id": xid}
            applier.apply(self.ns, ev)
            waiter = self._enqueue(ev)
        await self._journal(waiter)

    async def xrank_prepare(self, master: int, xid: str, req: dict) -> dict:
        """The witness: check, journal the PREPARE, lock. Raises FSError / xrank.Forward."""
        async with self.lock:
            ev, reply = xrank.prepare(self.ns, master, xid, req, self.locked(), self.frozen)
            if not ev:
                return reply
            applier.apply(self.ns, ev)
            waiter = self._enqueue(ev)
        await self._journal(waiter)
        return reply

    async def xrank_finish(self, xid: str, commit: bool) -> None:
        """The witness: the master's decision (idempotent). The change shows at once; the
        locks are released."""
        async with self.lock:
            ev = xrank.finish_event(self.ns, xid, commit)
            if ev is None:
                return
            applier.apply(self.ns, ev)
            waiter = self._enqueue(ev)
            self._xnotify()
        log.info("cross-rank operation " + ("committed" if commit else "rolled back"),
                 id=xid)
        await self._journal(waiter)

    # -- sessions (C1): journaled, so that the next holder of the rank expects them
    async def journal_session(self, client: str, addr: str, metadata: dict,
                              open_: bool) -> None:
        ev = {"t": j.ESESSION, "client": client, "open": open_}
        if open_:
            ev.update(addr=addr, metadata=metadata)
        await self._journal(self._enqueue(ev))
        applier.apply(self.ns, ev, self.store.sessions, self.completed)

    # -- file locks (mds.filelocks): held by a session, journaled with it
    async def file_lock(self, client: str, op: str, args: dict) -> tuple[int, dict, str]:
        """setfilelock {path, owner, type: read|write|unlock, start, length (0: to EOF)}
        -> {granted, holder, ino}; getfilelock {path, owner, type, start, length} -> {holder}.
        A conflict is an answer, not an error: {granted: False, holder: the lock in the way}
        (Ceph's F_SETLK answers EAGAIN, but that errno means "not serving" here)."""
        async with self.lock:
            redirect = self._redirect(op, {"path": args.get("path")})
            if redirect is not None:
                return redirect
            if client not in self.store.sessions:
                return -errno.ENOTCONN, {}, f"{client} has no session"
            node = self.ns.resolve(_arg(args, "path"))
            kind = args.get("type")
            lock = filelocks.FileLock.from_wire(
                {"ino": node.ino, "owner": args.get("owner", ""), "start": args.get("start", 0),
                 "length": args.get("length", 0),
                 "type": "write" if kind == "unlock" else kind})
            if kind == "unlock":
                ev = filelocks.unlock_event(client, lock)
            else:
                hit = filelocks.conflict(self.store.sessions, client, lock)
                if hit is not None or op == "getfilelock":
                    holder = {} if hit is None else dict(hit[1].to_wire(), client=hit[0])
                    return 0, {"granted": False, "holder": holder, "ino": node.ino}, ""
                ev = filelocks.set_event(client, lock)
            applier.apply(self.ns, ev, self.store.sessions)
            waiter = self._enqueue(ev)
        await self._journal(waiter)
        return 0, {"granted": kind != "unlock", "holder": {}, "ino": lock.ino}, ""

    async def reinstall_locks(self, client: str, sent: list) -> list[dict]:
        """A reconnecting client's locks (Ceph's client re-sends its fcntl/flock locks): those
        we lack are installed and journaled; those that now conflict are returned (lost)."""
        async with self.lock:
            if client not in self.store.sessions:
                return list(sent)
            mine = [filelocks.FileLock.from_wire(w) for w in sent]
            mine = [lk for lk in mine if lk.ino in self.ns.inodes]  # inodes of this rank
            events, lost = filelocks.reinstall(self.store.sessions, client, mine)
            for ev in events:
                applier.apply(self.ns, ev, self.store.sessions)
            waiters = [self._enqueue(ev) for ev in events]
        for w in waiters:
            await self._journal(w)
        return [lk.to_wire() for lk in lost]

    # -- requests
    async def handle(self, reqid: str, op: str, args: dict, early_reply=None,
                     oldest_tid: int = 0) -> tuple[int, dict, str]:
        """Serve one client request: (rc, result, error text). A reqid seen before (a client
        resending after a failover) gets the recorded answer instead of a second execution.
        `early_reply(result)`, if given, is awaited once a mutation is applied in memory and
        before it is journaled (mds_early_reply: the client gets an unsafe reply)."""
        ns = self.ns
        self.requests += 1
        client, tid = split_reqid(reqid)
        if op in FILELOCK_OPS:  # idempotent per owner: a resend sets the same lock again
            try:
                return await self.file_lock(client, op, args)
            except FSError as e:
                return -e.code, {}, str(e)
            except (KeyError, TypeError, ValueError) as e:
                return -errno.EINVAL, {}, f"bad arguments: {e}"
        self.completed.trim(client, oldest_tid)
        resent = serving.resend_answer(await self._answered(reqid, client, tid))
        if resent is not None:
            return resent
        kind = serving.op_kind(op)
        try:
            while True:  # until no cross-rank operation holds the directories (mds.xrank)
                if kind == "read":
                    redirect = self._redirect(op, args)
                    if redirect is not None:
                        return redirect
                    if self._blocked(op, args):
                        await self._xchanged.wait()
                        continue
                    node = ns.resolve(_arg(args, "path"))
                    if op == "readdir":
                        return 0, {"entries": [[n, ns.stat(i)] for n, i in
                                               ns.readdir(_arg(args, "path"))]}, ""
                    return 0, {"inode": ns.stat(node)}, ""
                if kind is None:
                    return -errno.EINVAL, {}, f"unknown operation '{op}'"
                resent = serving.resend_answer(await self._answered(reqid, client, tid))
                if resent is not None:  # done meanwhile (a resend)
                    return resent
                changed = self._xchanged
                journaled = self.in_progress[reqid] = trio.Event()
                try:
                    result = await self._mutate(reqid, op, args, early_reply, oldest_tid)
                    if result is not None and result[0] == 0:
                        self.completed.add(client, tid, result[1], oldest_tid)
                finally:
                    del self.in_progress[reqid]
                    journaled.set()
                if result is not None:
                    return result
                await changed.wait()
        except FSError as e:
            return -e.code, {}, str(e)
        except (KeyError, TypeError, ValueError) as e:
            return -errno.EINVAL, {}, f"bad arguments: {e}"

    async def _mutate(self, reqid: str, op: str, args: dict, early_reply,
                      oldest_tid: int) -> tuple[int, dict, str] | None:
        """One mutation; None if a cross-rank operation holds its directories (wait)."""
        ns = self.ns
        async with _Taken(self.lock):  # check and apply in arrival order; journal in that order
            await self.mdlog.room()  # under the lock: the bound holds however many wait
            redirect = self._redirect(op, args)
            if redirect is not None:
                return redirect
            if self._blocked(op, args):
                return None
            plan = xrank.plan(ns, op, args, time.time())
            if plan is None:
                ev = ns.prepare(op, args, time.time())
                ev["t"] = j.EUPDATE
                ev["reqid"] = reqid
                ev["oldest"] = oldest_tid
                applier.apply(ns, ev)
                result = {"inode": ns.stat(ns.inodes[ev["ino"]])} if ev["ino"] in ns.inodes \
                    and op != "unlink" and op != "rmdir" else {}
                if result != j.result_of(ev):  # a create's result is the event's inode
                    ev["result"] = result
                waiter = self._enqueue(ev)
            else:  # we are the master; the witness is asked without our lock held
                for i in plan["locks"]:
                    self.xlocks[i] = self.xlocks.get(i, 0) + 1
        if plan is not None:
            try:
                return await self.xrank_master(reqid, op, args, plan, oldest_tid)
            finally:
                self.xunlock(plan["locks"])
        if early_reply is not None:
            await early_reply(result)
        await self._journal(waiter, lazy=early_reply is not None)
        return 0, result, ""


    async def _answered(self, reqid: str, client: str, tid: int) -> dict | None:
        """The recorded result of a request done before. A resend that arrives while the
        original is still being executed or journaled (its reply was lost with the
        connection) waits for it, rather than doing it a second time (Ceph's Server answers
        a dup from the session's completed requests once the original finishes)."""
        while True:
            done = self.completed.get(client, tid)
            pending = self.in_progress.get(reqid)
            if done is not None or pending is None:
                return done
            await pending.wait()


class _Taken:
    """`async with lock`, without the task switch trio's Lock.acquire makes when the lock is
    free (one per mutation); FIFO still: a free lock with waiters is not taken here."""

    def __init__(self, lock: trio.Lock) -> None:
        self.lock = lock

    async def __aenter__(self) -> None:
        try:
            self.lock.acquire_nowait()
        except trio.WouldBlock:
            await self.lock.acquire()

    async def __aexit__(self, *exc) -> None:
        self.lock.release()


def _arg(args: dict, key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str):
        raise FSError(errno.EINVAL, f"'{key}' must be a string")
    return value
