"""Subtrees across active ranks (`PeerLink`, a part of MDSDaemon): questions between ranks, exports,
export pins (ceph.dir.pin) and the default spread, up:resolve, and a stopping rank handing its
subtrees over (X4). The decisions are in `mds.subtree`; this is the trio layer."""

from __future__ import annotations

import errno

import structlog
import trio

from common import messages as m
from common import states
from common.net import ConnectionClosed, HandshakeError, ProtocolError, connect, parse_hostport
from mds import lifecycle, pins, serving, subtree, xrank
from mds.namespace import ROOT_INO, FSError
from mds.rankdata import Damaged, Fenced
from osd.objecter import OSDError

log = structlog.get_logger("mds")

PEER_TIMEOUT = 5.0  # seconds for a question to a peer rank


class PeerLink:
    """Talks to the other ranks. Reads the daemon's state through `mds`; reports a fatal
    condition with `mds.fatal`."""

    def __init__(self, mds) -> None:
        self.mds = mds
        self._export_seq = 0

    async def peer_op(self, msg: m.MDSPeer) -> tuple[int, dict]:
        """A peer rank's export, pin or resolve question."""
        data = self.mds.data
        if data is None or data.ns is None or not serving.peer_answers(msg.op, self.mds.state) or \
                self.mds.respawn_reason is not None:
            return -errno.EAGAIN, {}
        a = msg.args
        try:
            if msg.op == "export":
                ev = subtree.import_event(a["snapshot"], int(a["from"]), str(a["export_id"]))
                if not await self.mds.data_io(data.import_subtree(ev)):
                    return -errno.EAGAIN, {}
                log.info("import_dir", path=data.ns.path_of(ev["root"]), from_rank=ev["from"],
                         entries=len(ev["entries"]))
                self.mds.nursery.start_soon(self._enforce_pins, ev)
                return 0, {}
            if msg.op == "resolve":
                xids = [str(x) for x in a.get("prepared", [])]
                for x in xids:  # an operation we are master of still in flight: its outcome
                    if x in data.xinflight:
                        await data.xinflight[x].wait()
                return 0, {"imports": data.imports_from(int(a["from"])),
                           "committed": xrank.decide(data.ns, xids),
                           "prepared": xrank.prepared_for(data.ns, int(a["from"]))}
            if msg.op == "xprep":  # we are the witness of a cross-rank operation
                try:
                    reply = await data.xrank_prepare(int(a["from"]), str(a["id"]), a["req"])
                except xrank.Forward as f:
                    return -errno.EREMOTE, {"forward": f.rank}
                except FSError as e:
                    return -e.code, {"error": str(e)}
                except (Fenced, Damaged, OSDError) as e:
                    self.mds.fatal(str(e))
                    return -errno.EAGAIN, {}
                return 0, reply
            if msg.op == "xfinish":
                ok = await self.mds.data_io(data.xrank_finish(str(a["id"]), bool(a["commit"])))
                return (0 if ok else -errno.EAGAIN), {}
            if msg.op == "pin":
                # Our copy of the inode shows the new pin, durably (journaled here too).
                if not await self.mds.data_io(data.journal_pin(str(a["path"]),
                                                            str(int(a["target"])))):
                    return -errno.EAGAIN, {}
                self.mds.nursery.start_soon(self._apply_pin, str(a["path"]), int(a["target"]),
                                        int(a["from"]))
                return 0, {}
        except (KeyError, TypeError, ValueError, IndexError) as e:
            log.warning("bad request from a peer", op=msg.op, error=repr(e))
            return -errno.EINVAL, {}
        return -errno.EINVAL, {}

    async def _peer_call(self, rank: int, op: str, args: dict) -> m.MDSPeerReply | None:
        """Ask the holder of `rank` (one connection per question); None if it cannot answer."""
        fs = self.mds.fs
        info = fs.holder(rank) if fs is not None else None
        if info is None:
            return None
        host, port = parse_hostport(info.addr.split("/")[0])
        try:
            with trio.fail_after(PEER_TIMEOUT):
                conn, _ = await connect(host, port, f"mds.{self.mds.name}", global_id=self.mds.gid)
                try:
                    await conn.send(m.MDSPeer(op=op, args=args))
                    reply = await conn.recv()
                finally:
                    await conn.aclose()
        except (OSError, HandshakeError, ConnectionClosed, ProtocolError,
                trio.TooSlowError) as e:
            log.info("peer did not answer", rank=rank, op=op, error=str(e) or type(e).__name__)
            return None
        return reply if isinstance(reply, m.MDSPeerReply) else None

    # -- cross-rank operations (mds.xrank): the master's side
    async def xrank_master(self, reqid: str, op: str, args: dict, plan: dict,
                            oldest: int) -> tuple[int, dict, str]:
        """Ask the witness to prepare, journal our EUpdate, tell the witness to commit.
        The caller (RankData) holds our directories locked meanwhile."""
        data = self.mds.data
        self._export_seq += 1
        xid = f"{self.mds.gid}.x{self._export_seq}"
        witness = plan["witness"]
        done = data.xinflight[xid] = trio.Event()
        result = None
        try:
            for _ in range(4):  # the witness may name the rank that holds the source
                reply = await self._peer_call(witness, "xprep", {
                    "id": xid, "from": self.mds.sm.rank, "req": plan["req"]})
                forward = reply.result.get("forward") if reply is not None and \
                    reply.rc == -errno.EREMOTE else None
                if not isinstance(forward, int) or forward == self.mds.sm.rank:
                    break
                witness = plan["witness"] = forward
            if reply is None or reply.rc == -errno.EREMOTE:
                return -errno.EAGAIN, {}, f"mds rank {witness} did not answer; retry"
            if reply.rc != 0:
                return reply.rc, {}, str(reply.result.get("error", ""))
            log.info("cross-rank operation prepared", id=xid, op=op, witness=witness)
            result = await data.xrank_commit(op, args, plan, reply.result, xid, reqid, oldest)
        finally:
            done.set()
            data.xinflight.pop(xid, None)
            if result is None and xid not in data.ns.xmaster and self.mds.respawn_reason is None:
                # Not committed, and never will be: a witness that prepared (its answer
                # may have been lost) rolls back, now or in its up:resolve.
                self.mds.nursery.start_soon(self._xfinish, data, witness, xid, False)
        # The witness commits before the client hears: a read there next sees the change.
        if not await self._xfinish_once(data, witness, xid, True):
            self.mds.nursery.start_soon(self._xfinish, data, witness, xid, True)
        return 0, result, ""

    async def _xfinish_once(self, data, rank: int, xid: str, commit: bool) -> bool:
        reply = await self._peer_call(rank, "xfinish", {"id": xid, "commit": commit})
        if reply is None or reply.rc != 0:
            return False
        if commit:
            await self.mds.data_io(data.xrank_committed(xid))
        return True

    async def _xfinish(self, data, rank: int, xid: str, commit: bool) -> None:
        """Tell the witness the outcome until it has heard it (idempotent there)."""
        delays = lifecycle.peer_backoff().delays()
        while data is self.mds.data and self.mds.respawn_reason is None:
            if await self._xfinish_once(data, rank, xid, commit):
                return
            await trio.sleep(next(delays))

    async def _xrank_resolve(self, rank: int, result: dict) -> bool:
        """up:resolve with `rank`: settle the operations between us from both journals."""
        data = self.mds.data
        committed = set(result.get("committed", []))
        for xid in xrank.prepared_for(data.ns, rank):  # we were the witness: it decided
            if not await self.mds.data_io(data.xrank_finish(xid, xid in committed)):
                return False
        outcomes = pins.xrank_outcomes(result.get("prepared", []), data.ns.xmaster, rank,
                                       data.ns.xmaster)
        for xid, commit in outcomes.items():  # we are the master: we decide
            if not await self._xfinish_once(data, rank, xid, commit):
                self.mds.nursery.start_soon(self._xfinish, data, rank, xid, commit)
        return True

    async def export_subtree(self, root: int, target: int) -> bool:
        """Hand the subtree at `root` to rank `target`: freeze, flush, send until the
        importer has journaled it, then journal the EExport. False if abandoned."""
        data = self.mds.data
        if data is None or root in data.frozen:
            return False
        self._export_seq += 1
        export_id = f"{self.mds.gid}.{self._export_seq}"
        path = data.ns.path_of(root)
        log.info("export_dir", path=path, to_rank=target, export_id=export_id)
        try:
            snap = await data.export_prepare(root)
            delays = lifecycle.peer_backoff().delays()
            while True:
                fs = self.mds.fs
                if fs is None or target not in fs.in_ or self.mds.respawn_reason is not None:
                    data.export_abort(root)
                    log.warning("export abandoned", path=path, to_rank=target)
                    return False
                reply = await self._peer_call(target, "export", {
                    "export_id": export_id, "from": self.mds.sm.rank, "snapshot": snap})
                if reply is not None and reply.rc == 0:
                    break
                await trio.sleep(next(delays))
            await data.export_commit(root, target, export_id)
        except (Fenced, Damaged, OSDError) as e:
            self.mds.fatal(str(e))
            return False
        log.info("export_finish", path=path, to_rank=target)
        return True

    async def _apply_pin(self, path: str, target: int, parent_rank: int) -> None:
        """ceph.dir.pin on `path` (set through the rank holding its parent, `parent_rank`):
        move the directory's contents to rank `target` (-1: back to the parent's rank)."""
        data = self.mds.data
        if data is None or data.ns is None:
            return
        try:
            node = data.ns.resolve(path)
            while subtree.under(data.ns, node.ino, data.frozen):  # an export is under way
                await trio.sleep(0.05)
                node = data.ns.resolve(path)
        except FSError:
            return
        fs = self.mds.fs
        holder = fs.holder(target) if fs is not None and target >= 0 else None
        active = holder is not None and holder.state == states.ACTIVE
        action, to = pins.decide(is_dir=node.is_dir, exported=node.ino in data.ns.exported,
                                 auth_root=node.ino in data.ns.auth_roots, target=target,
                                 rank=self.mds.sm.rank, parent_rank=parent_rank,
                                 target_active=active)
        if action == pins.RELAY:  # the contents are elsewhere: their holder moves them, and
            # its copy of the inode shows the pin (journaled there) even if it stays; a
            # holder being replaced hears it once it is back
            await self._relay_pin(data, node, target)
        elif action == pins.EXPORT:
            await self.export_subtree(node.ino, to)
        elif node.is_dir and 0 <= target != self.mds.sm.rank and not active:
            log.info("export pin to a rank that is not active; the subtree stays",
                     path=path, rank=target)

    async def _relay_pin(self, data, node, target: int) -> None:
        delays = lifecycle.peer_backoff().delays()
        while data is self.mds.data and self.mds.respawn_reason is None and \
                node.ino in data.ns.exported and \
                pins.valid_pin(pin := node.xattrs.get(pins.PIN_XATTR)) and int(pin) == target:
            reply = await self._peer_call(data.ns.exported[node.ino], "pin", {
                "path": data.ns.path_of(node.ino), "target": target, "from": self.mds.sm.rank})
            if reply is not None and reply.rc == 0:
                return
            await trio.sleep(next(delays))

    async def _enforce_pins(self, ev: dict) -> None:
        """Pins travel with their directories: an imported directory pinned to another rank
        goes on there (e.g. pinned while an ancestor was being exported)."""
        data = self.mds.data
        for ino, target in pins.pins_to_enforce(ev, self.mds.sm.rank):
            if data is not self.mds.data or ino not in data.ns.inodes:
                continue
            await self._apply_pin(data.ns.path_of(ino), target, self.mds.sm.rank)

    def after_request(self, req, rc: int) -> None:
        """Pins (ceph.dir.pin) and the default spread of new top-level directories."""
        if self.mds.data is None:
            return
        fs = self.mds.fs
        pin = pins.after_request(req.op, req.args, rc, self.mds.sm.rank,
                                 fs.max_mds if fs is not None else None)
        if pin is not None:
            self.mds.nursery.start_soon(self._apply_pin, *pin)

    async def work_resolve(self) -> None:
        """R3 step 3: ask every other rank, once it has replayed, which of our subtrees it
        imported; finish those exports (we died between its EImport and our EExport)."""
        log.info("resolve_start")
        asked: set[int] = set()
        while True:
            fs = self.mds.fs
            others = {r: (fs.holder(r).state if fs.holder(r) is not None else None)
                      for r in fs.in_ if r != self.mds.sm.rank} if fs else {}
            for rank in pins.resolve_next(others, asked, serving.REPLAYED):
                reply = await self._peer_call(rank, "resolve", {
                    "from": self.mds.sm.rank,
                    "prepared": xrank.prepared_for(self.mds.data.ns, rank)})
                if reply is not None and reply.rc == 0:
                    for ino, export_id in reply.result.get("imports", []):
                        if not await self.mds.data_io(
                                self.mds.data.forget_exported(ino, rank, export_id)):
                            return
                    if not await self._xrank_resolve(rank, reply.result):
                        return
                    asked.add(rank)
            if pins.resolve_done(others, asked):
                break
            epoch = self.mds.mdsmap.epoch
            with trio.move_on_after(0.2):
                while self.mds.mdsmap.epoch == epoch:
                    await self.mds.map_seen.wait()

    async def work_stopping(self) -> None:
        """X4: hand every subtree to rank 0, then write everything back and trim."""
        log.info("stopping_start")
        await self.mds.clients.evict_all_if_last()
        data = self.mds.data
        if data is not None and data.ns is not None:
            # Until none is left, not the roots held at the start: a cross-rank rename we
            # prepared as its witness while active may commit now and leave us a new
            # subtree root (its directory's contents stay here, mds.xrank); kept, rank 0
            # would forward its requests to a rank that has stopped.
            while True:
                while roots := sorted(data.ns.auth_roots - {ROOT_INO}):
                    if not await self.export_subtree(roots[0], 0):
                        await trio.sleep(0.2)
                # Cross-rank operations reach their witnesses (ours) or are decided by
                # their masters (theirs) before we go (bounded: a witness that is down
                # learns the outcome in its own up:resolve).
                with trio.move_on_after(2 * PEER_TIMEOUT):
                    while data.ns.xmaster or data.xinflight or data.ns.xpeer:
                        await trio.sleep(0.05)
                if not data.ns.auth_roots - {ROOT_INO}:
                    break
            await data.flush_all()
        log.info("stopping_done")

