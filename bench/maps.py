"""What the benchmarks read from the monitor: every FSMap it pushes, with its arrival time,
and predicates on rank 0 of cephfs. Shared by bench/failover.py and bench/load_failover.py."""

from __future__ import annotations

import trio

from client.admin import AdminClient
from common import messages as m
from common import states
from common.fsmap import FSMap

FS = "cephfs"


class BenchError(Exception):
    """The cluster, the load or verify could not be run: no figures."""


def rank0(fsmap: FSMap):
    """(holder, follower) of rank 0 of cephfs."""
    fs = fsmap.fs_by_name(FS)
    return (fs.holder(0), fs.follower(0)) if fs else (None, None)


def ready(names: tuple[str, ...], replay: bool):
    """Rank 0 active, every daemon in the map, and a follower if `replay`."""
    def pred(f: FSMap) -> bool:
        holder, follower = rank0(f)
        return (all(f.gid_by_name(n) is not None for n in names)
                and holder is not None and holder.state == states.ACTIVE
                and (not replay or follower is not None))
    return pred


def replaced(old_gid: int, state: int | None = None):
    """Another gid holds rank 0 (in `state`, if given)."""
    def pred(f: FSMap) -> bool:
        holder = rank0(f)[0]
        return (holder is not None and holder.gid != old_gid
                and (state is None or holder.state == state))
    return pred


class Watcher:
    """Every FSMap the monitor pushes, with its arrival time (trio clock)."""

    def __init__(self, admin: AdminClient) -> None:
        self.admin = admin
        self.maps: list[tuple[float, FSMap]] = []
        self.changed = trio.Event()

    async def run(self) -> None:
        async for msg in self.admin.pushes:
            if isinstance(msg, m.FSMapMsg):
                fsmap = FSMap.from_wire(msg.fsmap)
                if not self.maps or fsmap.epoch > self.maps[-1][1].epoch:
                    self.maps.append((trio.current_time(), fsmap))
                    self.changed.set()
                    self.changed = trio.Event()

    async def until(self, pred, timeout: float, what: str,
                    since: float | None = None) -> tuple[float, FSMap]:
        """since None: wait until the newest map satisfies pred. Else: the first map that
        arrived at or after `since` and satisfies pred. Returns (arrival time, map)."""
        i = 0
        with trio.move_on_after(timeout):
            while True:
                if since is None:
                    if self.maps and pred(self.maps[-1][1]):
                        return self.maps[-1]
                else:
                    while i < len(self.maps):
                        t, f = self.maps[i]
                        i += 1
                        if t >= since and pred(f):
                            return t, f
                await self.changed.wait()
        raise BenchError(f"no map with {what} within {timeout:g}s")

    def states_of(self, gid: int, start: float, end: float) -> dict[str, float]:
        """The first arrival, in [start, end], of each state of gid as rank 0's holder."""
        seen: dict[str, float] = {}
        for t, f in self.maps:
            holder = rank0(f)[0]
            if start <= t <= end and holder is not None and holder.gid == gid:
                seen.setdefault(states.NAMES.get(holder.state, str(holder.state)), t)
        return seen
