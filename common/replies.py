"""Replies matched to their callers by tid: the one multiplexer of the monitor client, the
osd client (objecter) and the filesystem client's MDS sessions.

A caller `expect`s its tid before sending, then `receive`s: one reply, or several (a file
system request gets an unsafe reply, then the safe one). When the connection is lost, `close`
ends every wait: `receive` then returns None, also for a tid expected afterwards.
"""

from __future__ import annotations

import math

import trio


class ReplyMux:
    def __init__(self) -> None:
        self._waiting: dict[int, tuple[trio.MemorySendChannel, trio.MemoryReceiveChannel]] = {}
        self.closed = False

    def __contains__(self, tid: int) -> bool:
        return tid in self._waiting

    def expect(self, tid: int) -> None:
        if tid not in self._waiting:
            pair = trio.open_memory_channel(math.inf)
            if self.closed:
                pair[0].close()
            self._waiting[tid] = pair

    def deliver(self, tid: int, msg) -> bool:
        """Hand `msg` to whoever waits for `tid`; False if nobody does, or if the connection
        was already declared lost: a reply read from the same segment as a session close
        comes after `close` without a checkpoint between, and must not crash the receiver
        (which would lose every other caller's replies with it)."""
        pair = self._waiting.get(tid)
        if pair is None:
            return False
        try:
            pair[0].send_nowait(msg)
        except trio.ClosedResourceError:
            return False
        return True

    def pending(self, tid: int) -> bool:
        """A reply for `tid` is waiting to be received (also after `close`)."""
        pair = self._waiting.get(tid)
        return pair is not None and pair[1].statistics().current_buffer_used > 0

    async def receive(self, tid: int):
        """The next reply for `tid`, or None once the connection is lost (replies that came
        before the loss are still handed out first) or if `tid` was never expected."""
        pair = self._waiting.get(tid)
        if pair is None:
            return None
        try:
            return await pair[1].receive()
        except trio.EndOfChannel:
            return None

    def forget(self, tid: int) -> None:
        self._waiting.pop(tid, None)

    def close(self) -> None:
        self.closed = True
        for send, _ in self._waiting.values():
            send.close()
