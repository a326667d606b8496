"""The journal's write queue (J5), as Ceph's MDLog submits and flushes: group commit, lazy
flushing of what was answered unsafe, and a bound on what waits unjournaled.

Whoever finds no flush running writes every queued event in one append (group commit). An
event whose request was answered unsafe (mds_early_reply) does not flush the journal for
itself: as in Ceph, whose MDS flushes its log every tick or when something asks, it waits,
batched with the others, until one of these flushes it: a request answered only once safe,
a client's request_flush_mdlog (before it waits for safe replies: sync, fsync, unmount), a
segment's worth of waiting events, or `flush_interval` (mdsemu_log_flush_interval) after the
first of its batch.
Mutations applied but not yet on the osd are bounded (`max_unflushed`): beyond it a new one
waits, so that a client cannot pile up unsafe requests while the osd is away.
"""

from __future__ import annotations

import trio


class MDLog:
    def __init__(self, store, io) -> None:
        self.store = store  # mds.mdstore.RankStore: append, trim
        self._io = io  # maps osd errors to Fenced / Damaged (RankData._io)
        self.flush_interval = 0.0  # 0: every event is flushed at once
        self.flush_events = store.segments.events_per_segment
        self.max_unflushed = 0  # 0: no bound
        self._queue: list[list] = []  # [event, done, error]
        self._flushing = False
        self._want_flush = False
        self._batch = 0  # counts the batches taken from the queue (a timer's batch is gone)
        self._unflushed = 0  # queued or being written
        self._drained = trio.Event()
        self._paused = False
        self._resumed = trio.Event()

    def set_pause(self, paused: bool) -> None:
        """`mds_log_pause`: hold journal writes (queued events wait, unjournaled) until unset."""
        self._paused = paused
        if not paused:
            self._resumed.set()
            self._resumed = trio.Event()

    def enqueue(self, ev: dict) -> list:
        # event, done, error, and for the first of a batch that batch's number: its timer
        entry = [ev, trio.Event(), None, None if self._queue else self._batch]
        self._queue.append(entry)
        self._unflushed += 1
        return entry

    async def journal(self, entry: list, lazy: bool = False) -> None:
        """Wait until `entry` is on the osd. `lazy` (its request was answered unsafe): do not
        flush for it; the first event of a batch flushes it after `flush_interval` if
        nothing else did before."""
        batch = entry[3]
        if not lazy or not self.flush_interval or len(self._queue) >= self.flush_events:
            self._want_flush = True
        elif batch is not None and batch == self._batch:  # the first of a batch still queued
            with trio.move_on_after(self.flush_interval):  # (others may have joined it since)
                await entry[1].wait()
            if self._batch == batch:  # nobody took it meanwhile
                self._want_flush = True
        if self._want_flush and not self._flushing:
            await self._flush()
        await entry[1].wait()
        if entry[2] is not None:
            raise entry[2]

    async def flush_log(self) -> None:
        """Write what waits now (Ceph's MDLog::flush, for a client's request_flush_mdlog)."""
        if self._queue:
            self._want_flush = True
            if not self._flushing:
                await self._flush()

    async def room(self) -> None:
        """Wait while `max_unflushed` mutations wait for the journal, flushing them."""
        while self.max_unflushed and self._unflushed >= self.max_unflushed:
            self._want_flush = True
            if not self._flushing and self._queue:
                await self._flush()
            else:
                await self._drained.wait()

    async def _flush(self) -> None:
        self._flushing = True
        try:
            # the requests woken in this same round (other clients') join the batch
            await trio.lowlevel.cancel_shielded_checkpoint()
            while self._queue and self._want_flush:
                while self._paused:
                    await self._resumed.wait()
                batch, self._queue = self._queue, []
                self._batch += 1
                self._want_flush = False
                try:
                    await self._io(self.store.append([e[0] for e in batch]))
                    if self.store.segments.expirable():
                        await self._io(self.store.trim())
                except BaseException as exc:
                    batch += self._queue  # a failed write fails what waits behind it too
                    self._queue = []
                    self._batch += 1
                    for e in batch:
                        e[2] = exc
                    raise
                finally:
                    for e in batch:
                        e[1].set()
                    self._unflushed -= len(batch)
                    self._drained.set()
                    self._drained = trio.Event()
        finally:
            self._flushing = False
