"""Replies matched to their callers by tid: the one multiplexer of the monitor client, the
osd client (objecter) and the filesystem client's MDS sessions.

A caller `expect`s its tid before sending, then `receive`s: one reply, or several (a file
system request gets an unsafe reply, then the safe one). When the connection is lost, `close`
ends every wait: `receive` then returns None, also for a tid expected afterwards.
"""

from __future__ import annotations

from collections import deque

import trio


class _Slot:
    """The replies received for one tid, and the wake-up of whoever waits for the next."""

    __slots__ = ("items", "wakeup")

    def __init__(self) -> None:
        self.items: deque = deque()
        self.wakeup: trio.Event | None = None


class ReplyMux:
    def __init__(self) -> None:
        self._waiting: dict[int, _Slot] = {}  # a deque and an event: cheaper than a channel
        self.closed = False

    def __contains__(self, tid: int) -> bool:
        return tid in self._waiting

    def expect(self, tid: int) -> None:
        if tid not in self._waiting:
            self._waiting[tid] = _Slot()

    def deliver(self, tid: int, msg) -> bool:
        """Hand `msg` to whoever waits for `tid`; False if nobody does, or if the connection
        was already declared lost: a reply read from the same segment as a session close
        comes after `close` without a checkpoint between, and must not be handed out (the
        caller was already told the connection is gone)."""
        slot = self._waiting.get(tid)
        if slot is None or self.closed:
            return False
        slot.items.append(msg)
        if slot.wakeup is not None:
            slot.wakeup.set()
        return True

    def pending(self, tid: int) -> bool:
        """A reply for `tid` is waiting to be received (also after `close`)."""
        slot = self._waiting.get(tid)
        return slot is not None and bool(slot.items)

    async def receive(self, tid: int):
        """The next reply for `tid`, or None once the connection is lost (replies that came
        before the loss are still handed out first) or if `tid` was never expected."""
        slot = self._waiting.get(tid)
        if slot is None:
            return None
        while not slot.items:
            if self.closed:
                await trio.lowlevel.checkpoint()
                return None
            slot.wakeup = trio.Event()
            await slot.wakeup.wait()
        await trio.lowlevel.checkpoint_if_cancelled()
        return slot.items.popleft()

    def take(self, tid: int):
        """A reply for `tid` received and not yet handed out, or None (no wait)."""
        slot = self._waiting.get(tid)
        return slot.items.popleft() if slot is not None and slot.items else None

    def forget(self, tid: int) -> None:
        self._waiting.pop(tid, None)

    def close(self) -> None:
        self.closed = True
        for slot in self._waiting.values():
            if slot.wakeup is not None:
                slot.wakeup.set()
