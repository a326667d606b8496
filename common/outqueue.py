"""What waits to be sent on one connection, sans-IO: bounded, with maps coalesced.

A map a subscriber has not been sent yet is replaced in place by a newer one of the same
subscription, so a peer that stops reading gets the newest map when it reads again, not a
backlog. Other messages (acks, command replies, log lines) keep their order; past `max_items`
of them the owner disconnects the peer rather than buffer without bound.
"""

from __future__ import annotations

from collections import deque


class OutQueue:
    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._items: deque[list] = deque()  # [key or None, frame]
        self._slots: dict[str, list] = {}  # key -> its item still waiting in _items
        self.nbytes = 0

    def put(self, frame: bytes, key: str | None = None) -> bool:
        """Queue an encoded frame; `key` names a subscription whose older pending frame it
        replaces. False if the queue is full (the frame is not queued)."""
        slot = self._slots.get(key) if key is not None else None
        if slot is not None:
            self.nbytes += len(frame) - len(slot[1])
            slot[1] = frame
            return True
        if len(self._items) >= self.max_items:
            return False
        item = [key, frame]
        self._items.append(item)
        if key is not None:
            self._slots[key] = item
        self.nbytes += len(frame)
        return True

    def push_front(self, frame: bytes) -> None:
        """The rest of a frame already partly written: it goes out first (never refused)."""
        self._items.appendleft([None, frame])
        self.nbytes += len(frame)

    def pop(self) -> bytes | None:
        """The next frame to send, or None when nothing waits."""
        if not self._items:
            return None
        key, frame = self._items.popleft()
        if key is not None:
            del self._slots[key]
        self.nbytes -= len(frame)
        return frame

    def __len__(self) -> int:
        return len(self._items)
