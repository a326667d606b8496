"""A virtual-time simulation of well-behaved MDS daemons against the sans-IO monitor core.

Each `SimMDS` boots (up:boot, version 0), then echoes the map it last saw: its beacon's
`version` is `fsmap.effective_epoch(gid)` and its wanted state is the one the map gives it, or
the next one it asks for (replay → reconnect or resolve, resolve → reconnect once every rank has
got there, reconnect → rejoin → active, creating/starting → active, stopping → down:stopped).
A request for a new state is sent at once (B3); otherwise a daemon beacons every
`mds_beacon_interval`. Every committed map reaches every live daemon at once; a daemon that is
no longer in the map, or gets a null map, respawns with a new gid (B8). The monitor ticks every
`mon_tick_interval`, and also right after every FSMap commit (T0, inside the core). After every
call into the core the cluster checks the map invariants and that no rank is ever held by two
daemons without the older one being fenced.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from common import states
from common.config import Config
from common.fsmap import FSMap
from common.messages import Beacon, BeaconAck
from common.osdmap import OSDMap
from mon import commands
from mon.mds_monitor import MDSMonitor
from mon.proposal import Effects

WALL0 = 1_700_000_000.0  # wall clock at t = 0

_NEXT = {  # R3/R4/X4: what a daemon asks for once the work of a state is done
    states.CREATING: states.ACTIVE,
    states.STARTING: states.ACTIVE,
    states.RECONNECT: states.REJOIN,
    states.REJOIN: states.ACTIVE,
    states.CLIENTREPLAY: states.ACTIVE,
    states.STOPPING: states.STOPPED,
}


@dataclass
class SimMDS:
    name: str
    gid: int
    addr: str
    fs: str = ""  # mds_join_fs
    legacy: dict = field(default_factory=dict)  # standby_for_rank/name/fscid, standby_replay
    hold: set[int] = field(default_factory=set)  # states whose work never finishes
    health: list = field(default_factory=list)
    state: int = states.BOOT  # as the last map seen says
    want: int = states.BOOT
    seq: int = 0
    version: int = 0
    last_sent: float = float("-inf")
    alive: bool = True
    paused: bool = False
    respawns: int = 0
    fscid: int = -1  # the role the daemon believes it has
    rank: int = -1
    history: list[str] = field(default_factory=list)  # states seen, "up:boot" on each start

    def next_want(self, fsmap: FSMap) -> int:
        info = fsmap.info(self.gid)
        cur = info.state
        if cur in self.hold:
            return cur
        fs = fsmap.fs_of(self.gid)
        if cur == states.REPLAY:
            alone = len(fs.in_) == 1 and not fs.failed
            return states.RECONNECT if alone else states.RESOLVE
        if cur == states.RESOLVE:
            return states.RECONNECT if fs.is_resolving() else states.RESOLVE
        return _NEXT.get(cur, cur)


class Cluster:
    """One monitor core and any number of simulated daemons, in virtual time."""

    def __init__(self, mon_age: float = 100.0, **options) -> None:
        self.t = 0.0
        self.config = Config("mon.a", overrides=options)
        # The mon has been up for `mon_age` seconds (T3: a new quorum defers removals).
        self.mon = MDSMonitor(self.config, FSMap(epoch=1, btime=WALL0), OSDMap(epoch=1),
                              now=self.t - mon_age)
        self.daemons: dict[str, SimMDS] = {}
        self.clog: list[tuple[str, str]] = []  # (level, message)
        self.maps: list[FSMap] = []  # every FSMap committed, in order
        self.last_effects: Effects | None = None  # what the last call into the core returned
        self.next_tick = self.t
        self.urgent: list[SimMDS] = []
        self.replies: list[tuple[str, BeaconAck | None]] = []
        self._draining = False

    # -- time
    @property
    def wall(self) -> float:
        return WALL0 + self.t

    def opt(self, name: str):
        return self.config.get(name)

    def advance(self, seconds: float) -> None:
        """Let `seconds` of virtual time pass: periodic beacons, ticks, reactions."""
        end = self.t + seconds
        interval = self.opt("mds_beacon_interval")
        while True:
            live = [d for d in self.daemons.values() if d.alive and not d.paused]
            due = min([self.next_tick] + [d.last_sent + interval for d in live])
            if due > end:
                break
            self.t = max(self.t, due)
            for d in live:
                if d.alive and not d.paused and d.last_sent + interval <= self.t:
                    self._send(d)
            if self.next_tick <= self.t:
                self.next_tick = self.t + self.opt("mon_tick_interval")
                self._after(self.mon.tick(self.t, self.wall))
        self.t = end

    def until(self, pred, within: float = 120.0, step: float = 1.0) -> float:
        """Advance until `pred()` holds; return the virtual time it took."""
        start = self.t
        while not pred():
            if self.t - start > within:
                raise AssertionError(f"not reached within {within}s; map:\n{self.dump_plain()}")
            self.advance(step)
        return self.t - start

    def tick(self) -> None:
        """A mon tick right now (besides the periodic ones)."""
        self._after(self.mon.tick(self.t, self.wall))

    # -- daemons
    def add(self, name: str, fs: str = "", hold=(), **legacy) -> SimMDS:
        """Start a daemon: it boots at once."""
        d = SimMDS(name=name, gid=0, addr="", fs=fs, legacy=legacy, hold=set(hold))
        self.daemons[name] = d
        self._respawn(d, count=False)
        self._drain()
        return d

    def kill(self, name: str) -> None:
        self.daemons[name].alive = False

    def pause(self, name: str) -> None:
        self.daemons[name].paused = True

    def resume(self, name: str) -> None:
        d = self.daemons[name]
        d.paused = False
        self._see(d, self.mon.fsmap)
        if d.alive and not d.paused:
            self._send(d)
        self._drain()

    def release(self, name: str) -> None:
        """The daemon's held work finishes: it asks for its next state at once."""
        d = self.daemons[name]
        d.hold = set()
        self._see(d, self.mon.fsmap)
        self._drain()

    def restart(self, name: str) -> SimMDS:
        """A killed daemon's process is started again: a new gid, same name."""
        d = self.daemons[name]
        d.alive, d.paused = True, False
        self._respawn(d, count=False)
        self._drain()
        return d

    def shutdown(self, name: str) -> BeaconAck | None:
        """SIGTERM (B10): one down:dne beacon, then the process exits."""
        d = self.daemons[name]
        d.want = states.DNE
        reply = self._send(d)
        d.alive = False
        self._drain()
        return reply

    def _respawn(self, d: SimMDS, count: bool = True) -> None:
        d.gid = self.mon.allocate_gid()
        d.addr = f"10.0.0.{self._index(d)}:6800/{d.gid}"
        d.state = d.want = states.BOOT
        d.seq = d.version = 0
        d.fscid = d.rank = -1
        d.history.append("up:boot")
        d.respawns += count
        self.urgent.append(d)

    def _index(self, d: SimMDS) -> int:
        return list(self.daemons).index(d.name) + 1

    def _beacon(self, d: SimMDS) -> Beacon:
        legacy = {k: v for k, v in d.legacy.items()
                  if k in ("standby_for_rank", "standby_for_name", "standby_for_fscid",
                           "standby_replay")}
        return Beacon(global_id=d.gid, name=d.name, state=d.want, seq=d.seq,
                      version=0 if d.want == states.BOOT else d.version, addr=d.addr,
                      fs=d.fs, health=list(d.health), **legacy)

    def beacon(self, name: str, **fields) -> BeaconAck | None:
        """A hand-made beacon from `name` (its current gid, next seq; `fields` override)."""
        d = self.daemons[name]
        d.seq += 1
        b = dataclasses.replace(self._beacon(d), **fields)
        return self._after(self.mon.handle_beacon(b, self.t, self.wall))

    def _send(self, d: SimMDS) -> BeaconAck | None:
        d.seq += 1
        d.last_sent = self.t
        gid = d.gid
        effects = self.mon.handle_beacon(self._beacon(d), self.t, self.wall)
        self.replies.append((d.name, effects.reply))
        reply = self._after(effects)
        if (reply is not None and reply.null_map and d.gid == gid and d.alive
                and d.want != states.DNE):
            self._respawn(d)  # B8 (the null map)
        return reply

    def _see(self, d: SimMDS, fsmap: FSMap) -> None:
        info = fsmap.info(d.gid)
        if info is None:
            if d.state != states.BOOT and d.want != states.DNE:  # B8: the map removed me
                self._respawn(d)
            return
        if info.state != d.state:
            d.history.append(states.name(info.state))
        d.state = info.state
        d.version = fsmap.effective_epoch(d.gid)
        fs = fsmap.fs_of(d.gid)
        d.fscid, d.rank = (fs.fscid, info.rank) if fs else (-1, -1)
        want = d.next_want(fsmap)
        if want != d.want:
            d.want = want
            if states.DRIVER.get(want) == "mds":  # B3: a request goes out at once
                self.urgent.append(d)

    def _after(self, out: Effects):
        """Publish what a call into the core committed, as the shell does; return its reply."""
        self.last_effects = out
        # the DBG "fsmap e..." line of each commit is left out: self.maps has the maps
        self.clog += [(level, msg) for _, level, msg in out.clog if level != "DBG"]
        self.maps += out.fsmaps
        if out.fsmap is not None:
            self.check_invariants()
            for fsmap in out.fsmaps:  # each committed map is published, in order
                for d in list(self.daemons.values()):
                    if d.alive and not d.paused:
                        self._see(d, fsmap)
        self._drain()
        return out.reply

    def _drain(self) -> None:
        if self._draining:
            return  # the outer loop sends what is queued
        self._draining = True
        try:
            for _ in range(1000):
                if not self.urgent:
                    return
                d = self.urgent.pop(0)
                if d.alive and not d.paused:
                    self._send(d)
            raise AssertionError("daemons and mon never settle")
        finally:
            self._draining = False

    # -- invariants
    def check_invariants(self) -> None:
        fsmap, osdmap = self.mon.fsmap, self.mon.osdmap
        fsmap.sanity()
        # No split brain: whenever two live daemons believe they hold the same rank, all but
        # the map's holder are fenced.
        for d in self.daemons.values():
            if not d.alive or d.rank < 0 or d.state in (states.STANDBY_REPLAY, states.BOOT):
                continue
            if d.want == states.STOPPED:
                continue  # it finished stopping: nothing left to write
            fs = fsmap.filesystems.get(d.fscid)
            holder = fs.up.get(d.rank) if fs else None
            if holder != d.gid:
                assert osdmap.is_blocklisted(d.addr), (
                    f"mds.{d.name} ({d.gid}) still believes it holds {d.fscid}:{d.rank} "
                    f"and is not fenced")
        for fs in fsmap.filesystems.values():
            assert fs.last_failure_osd_epoch <= osdmap.epoch

    # -- observations
    def cmd(self, *args: str, fmt: str = "plain", who: str = "client.admin"):
        return self._after(commands.run(self.mon, list(args), fmt, who, self.t, self.wall))

    def json(self, *args: str):
        rc, outs, outb = self.cmd(*args, fmt="json")
        assert rc == 0, outs
        return json.loads(outb)

    def info(self, name: str):
        return self.mon.fsmap.info(self.daemons[name].gid)

    def state(self, name: str) -> str | None:
        """The daemon's state in the committed map, e.g. "up:active" (None: not in it)."""
        info = self.info(name)
        return states.name(info.state) if info else None

    def fs(self, name: str = "cephfs"):
        return self.mon.fsmap.fs_by_name(name)

    def holder(self, rank: int = 0, fs: str = "cephfs") -> str | None:
        info = self.fs(fs).holder(rank)
        return info.name if info else None

    def follower(self, rank: int = 0, fs: str = "cephfs") -> str | None:
        info = self.fs(fs).follower(rank)
        return info.name if info else None

    def ranks(self, fs: str = "cephfs") -> dict[int, tuple[str, str]]:
        """rank -> (daemon name, state)."""
        f = self.fs(fs)
        return {r: (f.mds_info[g].name, states.name(f.mds_info[g].state))
                for r, g in sorted(f.up.items())}

    def standbys(self) -> list[str]:
        return sorted(i.name for i in self.mon.fsmap.standby_daemons.values())

    def health(self) -> set[str]:
        return set(self.mon.health_checks())

    def take_clog(self) -> list[str]:
        msgs = [m for _, m in self.clog]
        self.clog.clear()
        return msgs

    def dump_plain(self) -> str:
        return commands.run(self.mon, ["fs", "dump"], "plain").reply[2]

    # -- common set-ups
    def new_fs(self, name: str = "cephfs", *extra: str) -> None:
        rc, outs, _ = self.cmd("fs", "new", name, f"{name}_metadata", f"{name}_data", *extra)
        assert rc == 0, outs

    def all_active(self, fs: str = "cephfs") -> bool:
        f = self.fs(fs)
        return (len(f.up) == f.max_mds == len(f.in_)
                and all(f.mds_info[g].state == states.ACTIVE for g in f.up.values()))


def healthy(*names: str, fs: str = "cephfs", max_mds: int = 1, standby_replay: bool = False,
            **options) -> Cluster:
    """A cluster with one fs, the named daemons started, settled until every rank is active."""
    c = Cluster(**options)
    for name in names:
        c.add(name)
    c.new_fs(fs)
    if standby_replay:
        assert c.cmd("fs", "set", fs, "allow_standby_replay", "true")[0] == 0
    if max_mds != 1:
        assert c.cmd("fs", "set", fs, "max_mds", str(max_mds))[0] == 0
    c.until(lambda: c.all_active(fs), within=120)
    c.advance(10)
    c.take_clog()
    return c
