"""Requests answered unsafe, until their safe reply (Ceph's client: its unsafe requests):
`UnsafeRequests`, a part of FSClient (`fs.unsafe`). A request answered unsafe returns to its
caller; its session hands the safe reply here when it comes, a session that goes down has it
resent to the rank's next holder, and one that never becomes safe within the request timeout
is recorded lost (`fscore`'s record, which `sync` and `client verify` read).
"""

from __future__ import annotations

import errno
from collections import deque

import trio

from client.fscore import FSClientError, LostRequest, Outcome, outcome
from client.mdssession import Pending
from common import messages as m


class UnsafeRequests:
    """Works through its FSClient (`fs`): its core's record, its nursery, its `_drive`."""

    def __init__(self, fs) -> None:
        self.fs = fs
        self._settled: trio.Event | None = None  # set when a request settles (for a sync)
        self._watched: deque[Pending] = deque()  # answered unsafe, oldest first (_watchdog)
        self._watching = False

    def hand_off(self, p: Pending, on_lost) -> None:
        """`p` was answered unsafe: its session takes the safe reply when it comes."""
        p.on_lost = on_lost
        p.deadline = trio.current_time() + self.fs.timeout
        s = p.session
        queued = s.replies.take(p.tid)  # it may have come in the same read
        if queued is not None:
            self.safe_reply(p, queued)
        elif s.dead:
            self.recover(p)
        else:
            s.unsafe[p.tid] = p
            self._watched.append(p)
            if not self._watching:
                self._watching = True
                self.fs.nursery.start_soon(self._watchdog)

    def safe_reply(self, p: Pending, reply: m.ClientReply) -> None:
        """The reply after the unsafe one (from the session's receive task)."""
        what = outcome(reply)
        if what is Outcome.UNSAFE:  # again (not expected): the safe one is still to come
            p.session.unsafe[p.tid] = p
        elif what is Outcome.DONE:
            self.lose(p, self._failed(reply)) if reply.rc < 0 else self.settle(p)
        else:  # not serving now, or forwarded: resend
            p.waiting = False
            self.recover(p)

    def recover(self, p: Pending) -> None:
        """The session of a request answered unsafe went down: resend it until safe."""
        self.fs.nursery.start_soon(self._until_safe, p)

    async def _watchdog(self) -> None:
        """Requests answered unsafe with no safe reply within the request timeout are lost
        (the MDS keeps its journal paused, say); one task for all of them."""
        try:
            while self._watched:
                p = self._watched[0]
                if not p.settled and p.session.unsafe.get(p.tid) is p:
                    now = trio.current_time()
                    if now < p.deadline:  # look again within a second: most settle at once
                        await trio.sleep_until(min(p.deadline, now + 1.0))
                        continue
                    del p.session.unsafe[p.tid]
                    self.lose(p, f"no safe reply within {self.fs.timeout:g}s")
                self._watched.popleft()
        finally:
            self._watching = False

    @staticmethod
    def _failed(reply: m.ClientReply) -> str:
        return (f"re-executed after a failover, it failed: "
                f"{errno.errorcode.get(-reply.rc, reply.rc)} {reply.error}").rstrip()

    async def _until_safe(self, p: Pending) -> None:
        """Resend a request answered unsafe to the rank's next holder (or wait for its safe
        reply there, if it was replayed in up:reconnect); record it lost if that fails."""
        reason: str | None = f"no safe reply within {self.fs.timeout:g}s"
        try:
            try:
                with trio.move_on_after(self.fs.timeout):
                    reply = await self.fs._drive(p, until_unsafe=False)
                    reason = None if reply.rc == 0 else self._failed(reply)
            except FSClientError as e:
                reason = e.message
        except BaseException:  # cancelled: the client is closed without a sync
            self.settle(p)
            raise
        self.lose(p, reason) if reason else self.settle(p)

    def lose(self, p: Pending, reason: str) -> None:
        lost = self.fs.core.lose(p.tid, reason)
        self.settle(p)
        if lost is not None:
            self.fs.log.warning(f"tid {p.tid} ({p.op}) was acknowledged unsafe and is lost",
                             reason=reason, args=p.args)
            if p.on_lost is not None:
                p.on_lost(lost)

    def settle(self, p: Pending) -> None:
        p.settled = True
        self.fs.core.finish(p.tid)
        if p.session is not None:
            p.session.replies.forget(p.tid)
        if self._settled is not None:  # someone syncs
            self._settled.set()
            self._settled = None

    async def sync(self, path: str | None = None) -> list[LostRequest]:
        """Wait until every request answered unsafe so far (with `path`: those naming it or
        something beneath it, an fsync) is safe or lost; return the lost ones. Each settles
        within the request timeout of its unsafe reply."""
        tids = self.fs.core.unsafe_tids(path)
        # as Ceph's client (flush_mdlog_sync): the MDS journals what it answered unsafe
        # lazily; the sessions holding what we wait for are asked to flush now
        for s in {p.session for p in self._watched if p.tid in tids and p.session is not None}:
            if not s.dead and s.unsafe:
                await s.send(m.ClientSession("request_flush_mdlog"))
        while tids & self.fs.core.inflight:
            if self._settled is None:
                self._settled = trio.Event()
            await self._settled.wait()
        return self.fs.core.take_lost(tids)
