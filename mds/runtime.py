"""The rank's runtime (`RankRuntime`, a part of MDSDaemon, created when the daemon takes a rank
or starts to follow one): the rank's data (`mds.rankdata`), its client sessions (`SessionMap`),
the osd session it is read and written through (an objecter that resends, `osd.objecter`),
and the work of the states that build it: creating, starting, replay and standby-replay. The
daemon finds that work in its table keyed by state; a failure reaches the daemon's work-retry
policy (`mds.lifecycle.work_failure`) as the exception it is.

A nursery per state: `enter(state, work)` runs a state's work in a nursery of its own, and
`spawn` starts a task in the current state's nursery; the next `enter` cancels that nursery,
so the work and every task started for a state die with it (a follower's replay loop when it
is promoted, R6). The nursery outlives the work itself until the state changes.
"""

from __future__ import annotations

import contextlib
import gc
import time

import structlog
import trio

from common.net import ConnectionClosed, HandshakeError
from mds import lifecycle
from mds.rankdata import RankData
from mds.sessionmap import SessionMap
from osd.objecter import OSDClient, OSDError, ResendingOSD

log = structlog.get_logger("mds")


class RankRuntime:
    def __init__(self, mds) -> None:
        self.mds = mds
        self.data: RankData | None = None
        self.sessionmap = SessionMap()
        self.osd = ResendingOSD(self._reopen_osd, mds.ios,  # objecter-like: resends
                                lambda: mds.config.get("objecter_timeout"))
        self._osd_scope: trio.CancelScope | None = None
        self.state: int | None = None  # the state whose nursery is open
        self._state_scope: trio.CancelScope | None = None
        self._state_nursery: trio.Nursery | None = None
        self._pending: list = []  # spawned before the state's nursery opened

    # -- a nursery per state
    def enter(self, state: int, work) -> None:
        """Cancel the previous state's nursery, then run `work(state)` in a new one. The scope
        is made here, not in the task, so two states entered in a row cannot both run."""
        if self._state_scope is not None:
            self._state_scope.cancel()
        self.state, self._state_nursery, self._pending = state, None, []
        self._state_scope = scope = trio.CancelScope()
        self.mds.nursery.start_soon(self._run_state, scope, state, work)

    async def _run_state(self, scope: trio.CancelScope, state: int, work) -> None:
        with scope:
            async with trio.open_nursery() as nursery:
                if scope is self._state_scope:
                    self._state_nursery = nursery
                    for fn, args in self._pending:
                        nursery.start_soon(fn, *args)
                    self._pending = []
                await work(state)
                await trio.sleep_forever()  # what the state started lives until it ends

    def spawn(self, fn, *args) -> None:
        """A task of the current state: cancelled when the state ends."""
        if self._state_nursery is None:
            self._pending.append((fn, args))  # its nursery opens when its task starts
        else:
            self._state_nursery.start_soon(fn, *args)

    async def _wait_osdmap(self, epoch: int) -> None:
        """F3: wait for the OSDMap that blocklists the rank's previous instance."""
        if self.mds.osdmap.epoch < epoch:
            log.info(f" waiting for osdmap {epoch} (which blocklists prior instance)")
        while self.mds.osdmap.epoch < epoch or not self.mds.osdmap.osd_addrs:
            await self.mds.osdmap_changed.wait()

    async def _osd_session(self, addr: str, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as self._osd_scope:
            async with OSDClient.open(addr, f"mds.{self.mds.name}", self.mds.addr) as osd:
                task_status.started(osd)
                await trio.sleep_forever()

    async def _reopen_osd(self) -> OSDClient:
        """A new osd session (the OSDMap gives its address), for ResendingOSD: retried until
        an osd answers, as Ceph's objecter waits for the OSD to come back."""
        if self._osd_scope is not None:
            self._osd_scope.cancel()
        delays = lifecycle.osd_backoff().delays()
        while True:
            while not self.mds.osdmap.osd_addrs:
                await self.mds.osdmap_changed.wait()
            addr = self.mds.osdmap.osd_addrs[min(self.mds.osdmap.osd_addrs)]
            try:
                return await self.mds.nursery.start(self._osd_session, addr)
            except (OSError, OSDError, HandshakeError, ConnectionClosed) as e:
                wait = next(delays)
                log.warning("osd unreachable; waiting for it", addr=addr,
                            error=str(e) or type(e).__name__, retry_in=wait)
            epoch = self.mds.osdmap.epoch
            with trio.move_on_after(wait):
                while self.mds.osdmap.epoch == epoch:
                    await self.mds.osdmap_changed.wait()

    def drop_osd(self) -> None:
        """Forget the osd session and what was loaded through it; the next step reloads."""
        if self._osd_scope is not None:
            self._osd_scope.cancel()
        self._osd_scope = None
        self.data = None

    async def _rank_data(self) -> RankData:
        """Open (once) the osd session and this rank's metadata, after the fence (F3)."""
        fs = self.mds.fs
        await self._wait_osdmap(fs.last_failure_osd_epoch)
        if self.data is not None:
            self.data.store.min_epoch = max(self.data.store.min_epoch, fs.last_failure_osd_epoch)
            return self.data
        c = self.mds.config
        self.data = RankData(self.osd, fs.metadata_pool, self.mds.sm.rank,
                             c.get("mds_log_events_per_segment"), c.get("mds_log_max_segments"),
                             min_epoch=fs.last_failure_osd_epoch)
        self.data.set_log_pause(c.get("mds_log_pause"))
        self.data.mdlog.flush_interval = lazy_flush_interval(c, fs)
        self.data.mdlog.max_unflushed = c.get("mdsemu_log_max_unflushed")
        self.data.xrank_master = self.mds.peers.xrank_master  # cross-rank operations
        return self.data

    async def work_standby_replay(self) -> None:
        log.info("replay_start")  # R5: follow the journal every mds_replay_interval
        data = await self._rank_data()
        with _no_collection():
            await data.load()
        while True:
            await trio.sleep(self.mds.config.get("mds_replay_interval"))
            await data.follow()

    async def work_replay(self) -> None:
        log.info("replay_start")
        t0 = trio.current_time()
        following = self.data is not None and self.data.ns is not None
        data = await self._rank_data()
        t1, cpu = trio.current_time(), time.process_time()
        with _no_collection():
            if following:  # R6: the final pass of a promoted follower
                events = await data.follow()
            else:
                events = await data.load()
        now = trio.current_time()  # reading: the load alone, its CPU (bench/replay.py)
        log.info("Finished replaying journal", events=events, inodes=len(data.ns),
                 seconds=round(now - t0, 3), reading=round(now - t1, 3),
                 cpu=round(time.process_time() - cpu, 3),
                 header=round(data.store.header_wait, 3))
        log.info("making mds journal writeable")

    async def work_creating(self) -> None:
        log.info("boot_create")
        data = await self._rank_data()
        await data.create()

    async def work_starting(self) -> None:
        data = await self._rank_data()
        await data.load()
        log.info("starting_done")


def lazy_flush_interval(config, fs) -> float:
    """How long an event answered unsafe may wait for the journal (mds.mdlog). A file system
    with several active ranks flushes at once: with lazy flushing, the load test of renames
    across ranks lost creates made around a subtree export (not yet understood), so it is
    kept to one rank."""
    if not config.get("mds_early_reply") or fs is None or len(fs.in_) > 1:
        return 0.0
    return config.get("mdsemu_log_flush_interval")


@contextlib.contextmanager
def _no_collection():
    """Replay makes 10^5 objects that all live as long as the rank: collecting garbage while
    it runs finds none and costs a third of its time. Afterwards they are frozen (out of the
    collector's sight), so later collections do not walk the whole namespace either."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.freeze()
