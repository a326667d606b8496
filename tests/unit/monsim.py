"""A virtual-time cluster: the sans-IO monitor core and MDS daemons made of the MDS's own
cores (`tests.unit.mdssim.SimMDS`), without sockets or trio, so failovers run in milliseconds.

Each daemon boots (up:boot, version 0) and then acts as its cores say (`mds.rank`,
`mds.beacon`, `mds.lifecycle`, `mds.serving`, `mds.pins`, `mds.sessionmap`). A request for a
new state is sent at once (B3); otherwise a daemon beacons every `mds_beacon_interval`. Every
committed map reaches every live daemon at once, as its `mdsmap` subscription selects it (the
monitor's own check_sub, `mon.subscriptions`: its fs's MDSMap, a standby's null map, B7; a laggy
daemon holds it, B5); a daemon that is no longer in the map, or gets a null map, respawns with a
new gid (B8). The monitor ticks every
`mon_tick_interval`, and also right after every FSMap commit (T0, inside the core). Clients
(`mount`) hold sessions journaled per rank: a new holder replays them and waits for them in
up:reconnect; a dead client is evicted (and blocklisted) after `mds_reconnect_timeout`. After
every call into the core the cluster checks the map invariants and that no rank is ever held
by two daemons without the older one being fenced; a fenced daemon's journal write is refused
and it respawns (F4).
"""

from __future__ import annotations

import dataclasses
import json

from common import states
from common.config import Config
from common.fsmap import FSMap
from common.messages import BeaconAck
from common.osdmap import OSDMap
from mds import lifecycle, serving
from mon import commands
from mon.mds_monitor import MDSMonitor
from mon.proposal import Effects
from mon.subscriptions import Subs, map_for, mdsmap_for, mdsmap_key
from tests.unit.mdssim import SimClient, SimMDS

WALL0 = 1_700_000_000.0  # wall clock at t = 0


class Cluster:
    """One monitor core and any number of simulated daemons, in virtual time."""

    def __init__(self, mon_age: float = 100.0, **options) -> None:
        self.t = 0.0
        self.config = Config("mon.a", overrides=options)
        # The mon has been up for `mon_age` seconds (T3: a new quorum defers removals).
        self.mon = MDSMonitor(self.config, FSMap(epoch=1, btime=WALL0), OSDMap(epoch=1),
                              now=self.t - mon_age)
        self.daemons: dict[str, SimMDS] = {}
        self.clients: dict[str, SimClient] = {}
        self.journals: dict[tuple[int, int], dict[str, dict]] = {}  # (fscid, rank): sessions
        self.clog: list[tuple[str, str]] = []  # (level, message)
        self.maps: list[FSMap] = []  # every FSMap committed, in order
        self.last_effects: Effects | None = None  # what the last call into the core returned
        self.next_tick = self.t
        self.urgent: list[SimMDS] = []
        self.subs: dict[str, Subs] = {}  # each daemon process's `mdsmap` subscription
        self.replies: list[tuple[str, BeaconAck | None]] = []
        self._draining = False

    # -- time
    @property
    def wall(self) -> float:
        return WALL0 + self.t

    def opt(self, name: str):
        return self.config.get(name)

    def advance(self, seconds: float) -> None:
        """Let `seconds` of virtual time pass: periodic beacons, ticks, work, reactions."""
        end = self.t + seconds
        interval = self.opt("mds_beacon_interval")
        while True:
            live = [d for d in self.daemons.values() if d.alive and not d.paused]
            due = min([self.next_tick] + [d.last_sent + interval for d in live]
                      + [d.wake_at for d in live])
            if due > end:
                break
            self.t = max(self.t, due)
            for d in live:
                if d.alive and not d.paused and d.last_sent + interval <= self.t:
                    self._send(d)
            for d in live:
                if d.alive and not d.paused and d.wake_at <= self.t:
                    d.work_tick(self, self.t)
                    self._drain()
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
        d = SimMDS(name=name, fs=fs, legacy=legacy, hold=set(hold))
        self.daemons[name] = d
        self._boot(d)
        self._drain()
        return d

    def kill(self, name: str) -> None:
        self.daemons[name].alive = False

    def pause(self, name: str) -> None:
        self.daemons[name].paused = True

    def resume(self, name: str) -> None:
        """The paused daemon runs again: the newest map waits in its socket (held while it is
        laggy, B5), its beacon timer fires."""
        d = self.daemons[name]
        d.paused = False
        d.on_map(self.mdsmap_for(name), self, self.t)
        if d.alive and not d.paused:
            self._send(d)
        self._drain()

    def release(self, name: str) -> None:
        """The daemon's held work finishes: it asks for its next state at once."""
        self.daemons[name].release(self, self.t)
        self._drain()

    def restart(self, name: str) -> SimMDS:
        """A killed daemon's process is started again: a new gid, same name."""
        d = self.daemons[name]
        d.alive, d.paused = True, False
        self._boot(d)
        self._drain()
        return d

    def shutdown(self, name: str) -> BeaconAck | None:
        """SIGTERM (B10): one down:dne beacon, then the process exits."""
        d = self.daemons[name]
        d.stopping = True
        reply = self._send(d)
        d.alive = False
        self._drain()
        return reply

    # -- what a daemon asks of the cluster (its shell's effects)
    def respawn(self, d: SimMDS) -> None:
        d.respawns += 1
        self._boot(d)

    def request(self, d: SimMDS) -> None:
        """B3: a beacon goes out at once."""
        self.urgent.append(d)

    def _boot(self, d: SimMDS) -> None:
        gid = self.mon.allocate_gid()
        d.boot(gid, f"10.0.0.{list(self.daemons).index(d.name) + 1}:6800/{gid}",
               self.opt("mds_beacon_grace"))
        self.subs[d.name] = Subs(f"mds.{d.name}", gid)
        self.subs[d.name].add("mdsmap")
        self._publish(d, self.mon.fsmap)  # what the monitor sends at once: an empty map
        self.urgent.append(d)

    def _publish(self, d: SimMDS, fsmap: FSMap) -> None:
        """What the monitor sends `d` of a committed map (a paused daemon finds the newest in
        its socket when it resumes)."""
        for _, key in self.subs[d.name].due(fsmap):
            if d.alive and not d.paused:
                d.on_map(map_for(fsmap, key), self, self.t)

    def mdsmap_for(self, name: str):
        """The MDSMap the monitor would send daemon `name` now (its fs's, or a null map)."""
        d = self.daemons[name]
        return mdsmap_for(self.mon.fsmap, mdsmap_key(self.mon.fsmap, "mdsmap", f"mds.{name}",
                                                     d.gid))

    def _send(self, d: SimMDS) -> BeaconAck | None:
        d.last_sent = self.t
        gid = d.gid
        seq = d.beacon.sent(self.t)
        effects = self.mon.handle_beacon(d.beacon_msg(seq), self.t, self.wall)
        self.replies.append((d.name, effects.reply))
        reply = self._after(effects)
        if reply is not None and d.gid == gid and d.alive:
            d.on_ack(reply, self, self.t)
        return reply

    def beacon(self, name: str, **fields) -> BeaconAck | None:
        """A hand-made beacon from `name` (its current gid, next seq; `fields` override)."""
        d = self.daemons[name]
        b = dataclasses.replace(d.beacon_msg(d.beacon.sent(self.t)), **fields)
        return self._after(self.mon.handle_beacon(b, self.t, self.wall))

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
                    self._publish(d, fsmap)
        if out.osdmap is not None:
            self._apply_blocklist()
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

    # -- clients and the ranks' journals (sessions only)
    def journal_of(self, fscid: int, rank: int) -> dict[str, dict]:
        return self.journals.setdefault((fscid, rank), {})

    def journal(self, d: SimMDS, what: str, client: str, addr: str = "") -> bool:
        """An ESession from `d`: refused when `d` is fenced (F4: it respawns)."""
        if self.mon.osdmap.is_blocklisted(d.addr):
            failure = lifecycle.work_failure("fenced", f"mds.{d.name} is blocklisted")
            if failure.action == lifecycle.RESPAWN:
                d.fatal(failure.reason, self)
            return False
        table = self.journal_of(d.fscid, d.rank)
        if what == "open":
            table[client] = {"addr": addr, "metadata": {}}
        else:
            table.pop(client, None)
        return True

    def mount(self, client: str, rank: int = 0, fs: str = "cephfs", via: str = "") -> str:
        """A client opens a session on the holder of `rank` (or on `via`, a daemon it still
        believes holds it): the daemon's verdict (C1), or "fenced" if its journal refused."""
        cl = self.clients.setdefault(client, SimClient(
            client, f"192.168.0.{len(self.clients) + 1}:0/{len(self.clients) + 1}", fs, rank))
        d = self.daemons[via or self.holder(rank, fs)]
        s = d.sessions.get(client)
        verdict, _ = serving.open_verdict(cl.addr, set(self.mon.osdmap.blocklist), d.state,
                                          True, s.addr if s else None)
        if verdict == "journal":
            if not self.journal(d, "open", client, cl.addr):
                self._drain()
                return "fenced"
            d.sessions.add(client, cl.addr, {}, self.t)
        return verdict

    def kill_client(self, client: str) -> None:
        self.clients[client].alive = False

    def clients_reconnect(self, d: SimMDS, now: float) -> None:
        """Live clients of `d`'s rank see it in up:reconnect and reconnect (C1)."""
        fs = self.mon.fsmap.filesystems.get(d.fscid)
        for cl in self.clients.values():
            if cl.alive and fs is not None and cl.fs == fs.fs_name and cl.rank == d.rank:
                d.reconnect(cl, now)

    def evict(self, d: SimMDS, session, message: str) -> None:
        """C2: a cluster-log line, the client's blocklisting, then the end of its session."""
        self.clog.append(("WRN" if "unresponsive" in message else "INF", message))
        if self.opt("mds_session_blocklist_on_timeout"):
            self.cmd("osd", "blocklist", "add", session.addr, who=f"mds.{d.name}")
        if self.journal(d, "close", session.client):
            d.sessions.remove(session.client)

    def _apply_blocklist(self) -> None:
        """Sessions of blocklisted clients end on every daemon (MDS apply_blocklist)."""
        for d in self.daemons.values():
            for s in [s for s in d.sessions.sessions.values()
                      if s.addr in self.mon.osdmap.blocklist]:
                d.sessions.remove(s.client)

    def sessions(self, rank: int = 0, fs: str = "cephfs") -> list[str]:
        """The clients with a session on the rank's holder."""
        return sorted(self.daemons[self.holder(rank, fs)].sessions.sessions)

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
