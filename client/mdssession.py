"""One session with an MDS rank's holder, as the filesystem client (`client/fsclient.py`)
holds it: the connection, the session's state (open, closed, stale), the replies matched to
their requests by tid, and the requests answered unsafe whose safe reply is still to come.
The client's decisions are in `client/fscore.py`.
"""

from __future__ import annotations

import math

import structlog
import trio

from client.fscore import FSClientError
from common import messages as m
from common.fsmap import MDSInfo
from common.net import Connection, ConnectionClosed, ProtocolError
from common.replies import ReplyMux

log = structlog.get_logger("client")

NON_ALLOWABLE_ROOT = "non-allowable root"  # mds/authcaps.py: what the MDS says
RETRY_PAUSE = 0.5  # after EAGAIN or a failed connect: wait this long for a newer map, then retry
MDS_CONNECT_TIMEOUT = 5.0  # to connect, and for the MDS to answer a session request


class Pending:
    """One request as the client drives it: where it went, how often it was sent, its unsafe
    reply, and whether the next reply is awaited on the same session."""

    def __init__(self, tid: int, op: str, args: dict, rank: int) -> None:
        self.tid, self.op, self.args, self.rank = tid, op, args, rank
        self.retry = 0
        self.req: m.ClientRequest | None = None
        self.again = None  # the request resent on the same session (set by the client)
        self.session: MDSSession | None = None
        self.unsafe: m.ClientReply | None = None
        self.waiting = False
        self.on_lost = None  # called with the LostRequest if it is never made safe
        self.deadline = math.inf  # answered unsafe: lost if not safe by then
        self.settled = False

    def result(self, reply: m.ClientReply) -> dict:
        if reply.rc < 0:
            raise FSClientError(-reply.rc, reply.error)
        if not reply.result and self.unsafe is not None:
            return self.unsafe.result  # a safe reply may come without the result
        return reply.result


class MDSSession:
    """One connection, and the session on it, to one incarnation of rank 0's holder."""

    def __init__(self, info: MDSInfo, conn: Connection, owner) -> None:
        self.ident = (info.gid, info.inc, info.addr)
        self.name = f"mds.{info.name}"
        self.conn = conn
        self.owner = owner
        self.replies = ReplyMux()
        self.scope = trio.CancelScope()
        self.dead = False
        self.is_open = False
        self.answered = trio.Event()  # the MDS said open, close or reject
        self.close_reason = ""
        self.reclaim_reply: dict | None = None  # request_reclaim's answer
        self.reclaim_answered = trio.Event()
        # Requests answered unsafe here: their safe reply is handed to the owner as it
        # arrives (`owner.unsafe.safe_reply`), with no task waiting for each one.
        self.unsafe: dict[int, Pending] = {}

    def kill(self) -> None:
        """Mark the connection down: every request waiting on it is told so."""
        self.dead = True
        self.answered.set()
        self.replies.close()
        self.scope.cancel()
        unsafe, self.unsafe = self.unsafe, {}
        for p in unsafe.values():  # C4: resent (replayed) to the rank's next holder
            self.owner.unsafe.recover(p)

    async def send(self, msg) -> bool:
        try:
            await self.conn.send(msg)
            return True
        except ConnectionClosed:
            self.kill()
            return False

    async def call(self, req: m.ClientRequest, resend=None,
                   after: float = math.inf) -> m.ClientReply | None:
        """Send; return the first reply, or None if the connection went down meanwhile. A
        request already sent here (replayed during reconnect) is not sent again; its reply,
        if it came before the connection was lost, is still handed out."""
        if self.dead and not self.replies.pending(req.tid):
            return None
        if req.tid not in self.replies:
            self.replies.expect(req.tid)
            if not await self.send(req):
                return None
        return await self.next_reply(req.tid, resend, after)

    async def next_reply(self, tid: int, resend=None,
                         after: float = math.inf) -> m.ClientReply | None:
        """The next reply for `tid`; every `after` seconds without one, `resend()` (the
        request again, same tid) is sent on this session: the MDS answers a repeat from its
        completed requests, or once the original is done, never executing it twice."""
        while True:
            with trio.move_on_after(after if resend is not None else math.inf):
                reply = await self.replies.receive(tid)  # those received come before the loss
                if reply is not None and (reply.safe or reply.rc != 0):
                    self.replies.forget(tid)
                return reply
            log.info("no reply; sending the request again", mds=self.name, tid=tid,
                     after=after)
            if not await self.send(resend()):
                return None

    def _on_session(self, msg: m.ClientSession) -> None:
        if msg.op == "open":
            self.is_open = True
            self.answered.set()
        elif msg.op == "reclaim_reply":
            self.reclaim_reply = dict(msg.metadata)
            self.reclaim_answered.set()
        elif msg.op == "stale":
            log.warning("mds marked our session stale", mds=self.name)
        elif msg.op in ("close", "reject"):
            reason = str(msg.metadata.get("reason") or msg.metadata.get("error_string") or "")
            self.close_reason = reason
            if reason in ("evicted", "blocklisted"):
                self.owner.note_evicted(self.name, reason)
            elif msg.op == "reject" and reason == NON_ALLOWABLE_ROOT:  # our caps (cephx)
                self.owner.refused = reason
            self.kill()

    async def receive(self) -> None:
        try:
            with self.scope:
                while True:
                    msg = await self.conn.recv()
                    if isinstance(msg, m.ClientSession):
                        self._on_session(msg)
                        continue
                    if isinstance(msg, m.ClientReply) and msg.tid in self.unsafe:
                        self.owner.unsafe.safe_reply(self.unsafe.pop(msg.tid), msg)
                        continue
                    if not (isinstance(msg, m.ClientReply) and
                            self.replies.deliver(msg.tid, msg)):
                        log.debug("ignoring a message", mds=self.name, type=msg.TYPE,
                                  tid=getattr(msg, "tid", None))
        except (ConnectionClosed, ProtocolError) as e:
            log.info("lost the connection to the mds", mds=self.name, reason=str(e))
        finally:
            self.kill()
            await self.conn.aclose()

    async def renew(self, interval_of) -> None:
        """C5: renew the session every session_timeout/3 while it lasts."""
        seq = 0
        while not self.dead:
            await trio.sleep(interval_of())
            seq += 1
            await self.send(m.ClientSession("request_renewcaps", seq=seq))
