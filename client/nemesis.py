"""The thrasher's nemesis schedule, sans-IO: from a seed and the options, the faults to inject
(when, what, at which role, when to heal), and the choice of a daemon for a role from a map
snapshot. No clock, no processes: `client.thrash` applies it.

Modelled on Ceph's qa/tasks/mds_thrash.py, without its quirks: delays are fractional seconds,
the generator is private and seeded (the same seed gives the same schedule, printed first),
and every fault has a heal time. One fault at a time, as in mds_thrash: the next starts a
random pause (uniform in [0, --delay], like mds_thrash's randomized thrash_delay) after the
previous one healed.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

# kind -> default weight. Kinds that hit one MDS daemon name a role; the others their target.
KINDS: dict[str, float] = {
    "kill": 1.0,         # kill -9, revived after a random delay (mds_thrash's kill_mds)
    "stop_short": 0.5,   # SIGSTOP below the beacon grace, then SIGCONT
    "stop_long": 0.5,    # SIGSTOP beyond the grace (replaced), then SIGCONT (respawns)
    "restart": 0.5,      # SIGTERM (clean shutdown), started again after a random delay
    "mds_fail": 0.5,     # `mds fail <name>`
    "blackhole": 0.3,    # ms_blackhole_mon on one MDS: beacons lost, process fine
    "socket_failures": 0.3,  # ms_inject_socket_failures on every MDS
    "delay": 0.2,        # ms_inject_delay_* on every MDS (messages from clients, MDSs, osd)
    "mon_restart": 0.3,  # kill -9 of the monitor, started again after a random delay
    "osd_restart": 0.3,  # kill -9 of the osd, started again after a random delay
    "osd_pause": 0.3,    # SIGSTOP of the osd, then SIGCONT
    # Jepsen's partitions, made with ms_blackhole_from (drop what comes from named peers):
    "partition_oneway": 0.3,  # the mon hears nothing from an active (which still hears it)
    "partition_twoway": 0.3,  # an active and the mon hear nothing from each other
    "partition_client": 0.3,  # an active hears nothing from the clients (requests lost)
}
# Compose mode only (the targets are containers): kept apart so that the kinds, and so the
# schedules, of a local cluster are the same as before for every seed.
COMPOSE_KINDS: dict[str, float] = {
    "disconnect": 0.3,   # `docker network disconnect` of an active, then connect
}
MAX_MDS = "max_mds"  # chosen with probability --thrash-max-mds (mds_thrash's thrash_max_mds)
PARTITIONS = ("partition_oneway", "partition_twoway", "partition_client")
ONE_MDS = ("kill", "stop_short", "stop_long", "restart", "blackhole", "disconnect") + PARTITIONS
ROLE_WEIGHTS = (("active", 0.5), ("follower", 0.25), ("standby", 0.25))
SOCKET_FAILURES_EVERY = 200  # ms_inject_socket_failures while that fault lasts


class ScheduleError(ValueError):
    """Bad thrasher options; str() is the message for the user (EINVAL)."""


def parse_weights(text: str, compose: bool = False) -> dict[str, float]:
    """"kill=2,mds_fail=1": as in mds_thrash, kinds not listed get weight 0."""
    known = {**KINDS, **COMPOSE_KINDS} if compose else KINDS
    weights = dict.fromkeys(known, 0.0)
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        kind, eq, value = item.partition("=")
        kind = kind.strip().replace("-", "_")
        if not eq or kind not in known:
            raise ScheduleError(f"bad --thrash-weights item '{item}': expected KIND=WEIGHT "
                                f"with KIND one of {', '.join(known)}")
        try:
            weights[kind] = float(value)
        except ValueError:
            raise ScheduleError(f"bad weight in '{item}': not a number") from None
        if not weights[kind] >= 0:
            raise ScheduleError(f"bad weight in '{item}': must be >= 0")
    if not any(weights.values()):
        raise ScheduleError("--thrash-weights: every weight is 0")
    return weights


@dataclass(frozen=True)
class Fault:
    index: int
    at: float        # seconds from the start of the thrash
    kind: str
    target: str      # a role ("active of rank 0", "a follower", "a standby") or a daemon
    heal_at: float   # when it is undone (== at for instant faults)
    param: float = 0.0  # kind-specific: ms_inject_socket_failures, ms_inject_delay_max

    def line(self) -> str:
        heal = f", healed at {self.heal_at:8.3f}s" if self.heal_at > self.at else ""
        extra = f" ({self.param:g})" if self.param else ""
        return f"{self.index:4d} {self.at:8.3f}s {self.kind:<15} {self.target}{extra}{heal}"

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Options:
    seed: int
    delay: float = 5.0           # longest pause between faults (--delay)
    max_revive_delay: float = 5.0
    thrash_max_mds: float = 0.05
    faults: int | None = None    # stop after this many faults...
    duration: float | None = None  # ...or once this many seconds have been scheduled
    grace: float = 15.0          # mds_beacon_grace of the cluster (stop, blackhole lengths)
    ranks: int = 1               # ranks the file system may have (roles "active of rank r")
    weights: dict[str, float] | None = None
    compose: bool = False        # the targets are containers: COMPOSE_KINDS too

    def check(self) -> None:
        if (self.faults is None) == (self.duration is None):
            raise ScheduleError("give exactly one of --faults N and --duration S")
        if self.faults is not None and self.faults < 1:
            raise ScheduleError("--faults must be at least 1")
        if self.duration is not None and not self.duration > 0:
            raise ScheduleError("--duration must be positive")
        for name in ("delay", "max_revive_delay", "grace"):
            if not getattr(self, name) >= 0:
                raise ScheduleError(f"--{name.replace('_', '-')} must be >= 0")
        if not 0 <= self.thrash_max_mds <= 1:
            raise ScheduleError("--thrash-max-mds is a probability, 0 to 1")


def schedule(o: Options) -> list[Fault]:
    """The faults for these options: the same options (seed included) give the same list."""
    o.check()
    rng = random.Random(o.seed)
    known = {**KINDS, **COMPOSE_KINDS} if o.compose else KINDS
    weights = o.weights or known
    kinds = [k for k in known if weights.get(k, 0) > 0]
    out: list[Fault] = []
    t = 0.0
    while True:
        t += rng.uniform(0, o.delay)
        if o.faults is not None and len(out) >= o.faults:
            break
        if o.duration is not None and t >= o.duration:
            break
        if rng.random() < o.thrash_max_mds:
            kind = MAX_MDS
        else:
            kind = rng.choices(kinds, [weights[k] for k in kinds])[0]
        target, length, param = _shape(kind, rng, o)
        out.append(Fault(len(out), round(t, 3), kind, target, round(t + length, 3), param))
        t += length
    return out


def _shape(kind: str, rng: random.Random, o: Options) -> tuple[str, float, float]:
    """(target, how long the fault lasts, parameter) of one fault."""
    g = o.grace
    if kind in ONE_MDS or kind == "mds_fail":
        role = "active" if kind in ("blackhole", "mds_fail", "disconnect") + PARTITIONS else \
            rng.choices([r for r, _ in ROLE_WEIGHTS], [w for _, w in ROLE_WEIGHTS])[0]
        target = f"active of rank {rng.randrange(o.ranks)}" if role == "active" else f"a {role}"
        if kind == "disconnect" or kind in PARTITIONS:  # beyond the grace, as a blackhole
            return target, rng.uniform(1.5, 3.0) * g, 0.0
        length = {"kill": rng.uniform(0, o.max_revive_delay),
                  "restart": rng.uniform(0, o.max_revive_delay),
                  "stop_short": rng.uniform(0.1, 0.6) * g,
                  "stop_long": rng.uniform(1.5, 3.0) * g,
                  "blackhole": rng.uniform(1.5, 3.0) * g,
                  "mds_fail": 0.0}[kind]
        return target, length, 0.0
    if kind == "socket_failures":
        return "every mds", rng.uniform(1.0, 4.0) * g, SOCKET_FAILURES_EVERY
    if kind == "delay":
        return "every mds", rng.uniform(1.0, 4.0) * g, round(g / 2, 3)
    if kind == "mon_restart":
        return "mon.a", rng.uniform(0, o.max_revive_delay), 0.0
    if kind == "osd_restart":
        return "osd.0", rng.uniform(0, o.max_revive_delay), 0.0
    if kind == "osd_pause":
        return "osd.0", rng.uniform(0.2, 2.0) * g, 0.0
    if kind == MAX_MDS:
        return "max_mds", 0.0, 0.0
    raise ScheduleError(f"unknown fault kind {kind!r}")


# -- choosing a daemon at the time of the fault ---------------------------------------------
def _infos(fsdump: dict, fs: str) -> tuple[list[dict], list[dict]]:
    """(the daemons of file system `fs`, the standbys) of an `fs dump -f json`."""
    infos: list[dict] = []
    for f in fsdump.get("filesystems", []):
        if f["mdsmap"]["fs_name"] == fs:
            infos = list(f["mdsmap"]["info"].values())
    return infos, list(fsdump.get("standbys", []))


def resolve(fault: Fault, fsdump: dict, seed: int, fs: str = "cephfs",
            busy: frozenset[str] = frozenset()) -> str | None:
    """The MDS daemon name that `fault`'s role names in this map (None: nobody). A missing
    role falls back (follower -> standby -> active and so on), so that every fault lands.
    The pick among several is seeded by (seed, fault index): same map, same choice."""
    infos, standbys = _infos(fsdump, fs)
    rng = random.Random(f"{seed}/{fault.index}")

    def names(pred) -> list[str]:
        return sorted(i["name"] for i in infos + standbys if pred(i) and i["name"] not in busy)

    actives = names(lambda i: i["state"] == "up:active")
    followers = names(lambda i: i["state"] == "up:standby-replay")
    idle = names(lambda i: i["state"] == "up:standby")
    if fault.target.startswith("active of rank "):
        rank = int(fault.target.rsplit(" ", 1)[1])
        exact = names(lambda i: i["state"] == "up:active" and i.get("rank") == rank)
        order = [exact, actives, followers, idle]
    elif fault.target == "a follower":
        order = [followers, idle, actives]
    elif fault.target == "a standby":
        order = [idle, followers, actives]
    else:
        return fault.target
    for candidates in order:
        if candidates:
            return rng.choice(candidates)
    return None


def next_max_mds(fault: Fault, current: int, ceiling: int, seed: int) -> int:
    """mds_thrash: a new max_mds, any of 1..ceiling except the current one."""
    choices = [n for n in range(1, max(ceiling, 2) + 1) if n != current]
    return random.Random(f"{seed}/{fault.index}").choice(choices)


# -- reading the map: when is a fault recovered ----------------------------------------------
GONE = ("kill", "restart", "mds_fail")  # an active that can never hold its rank again


def ranks_active(dump: dict | None, fs: str) -> bool:
    """Every rank of `fs` up to max_mds is held by an up:active daemon, none failed and none
    stopping (mds_thrash's wait_for_stable)."""
    for f in (dump or {}).get("filesystems", []):
        mdsmap = f["mdsmap"]
        if mdsmap["fs_name"] != fs:
            continue
        actives = {i["rank"] for i in mdsmap["info"].values() if i["state"] == "up:active"}
        ranks = set(range(mdsmap["max_mds"]))
        return not mdsmap["failed"] and actives == ranks == set(mdsmap["in"])
    return False


def holder(dump: dict | None, fs: str, name: str) -> tuple[int, int] | None:
    """(rank, gid) if daemon `name` holds a rank as up:active."""
    for f in (dump or {}).get("filesystems", []):
        if f["mdsmap"]["fs_name"] == fs:
            for i in f["mdsmap"]["info"].values():
                if i["name"] == name and i["state"] == "up:active":
                    return i["rank"], i["gid"]
    return None


def rank_gid(dump: dict | None, fs: str, rank: int) -> int | None:
    for f in (dump or {}).get("filesystems", []):
        if f["mdsmap"]["fs_name"] == fs:
            for i in f["mdsmap"]["info"].values():
                if i["rank"] == rank and i["state"] == "up:active":
                    return i["gid"]
    return None


def max_mds_of(dump: dict | None, fs: str) -> int:
    for f in (dump or {}).get("filesystems", []):
        if f["mdsmap"]["fs_name"] == fs:
            return f["mdsmap"]["max_mds"]
    return 1


def recovered(kind: str, dump: dict | None, fs: str, held: tuple[int | None, int | None],
              healed: bool, new_max_mds: int | None = None) -> bool:
    """Is a fault of `kind` over in this map? Every rank active again, and its effect seen:
    an active that cannot come back (dead, shut down, failed: `held` is the (rank, gid) it
    held) has a successor; a new max_mds is in the map; otherwise the fault has been healed
    (or, for a long stop or a blackhole, the active was replaced before that)."""
    if not ranks_active(dump, fs):
        return False
    rank, gid = held
    successor = rank is not None and rank_gid(dump, fs, rank) != gid
    if rank is not None and kind in GONE:
        return successor
    if kind in ("stop_long", "blackhole", "disconnect") + PARTITIONS and successor:
        return True
    if kind == MAX_MDS:
        return max_mds_of(dump, fs) == new_max_mds
    return healed


def settled(dump: dict | None, fs: str, pending: list[str]) -> bool:
    """After the final heal: every rank active and no fault still waiting for a successor
    (`pending`: the kinds of the faults not yet recovered). A dead active can hold its rank
    in the map for a while (a monitor that just restarted waits a grace before it marks
    anyone laggy), so "all ranks active" alone can be a dead daemon's rank."""
    return ranks_active(dump, fs) and not any(k in GONE for k in pending)


def client_gaps(answers: dict[str, list[float]], windows: list[tuple[float, float]],
                last: float) -> list[float | None]:
    """For each window (from a fault to the next), the longest time any client went without
    an answer (ok or error) counted from the window's start; a wait that began in the window
    counts in full, also where it runs past its end. None without clients. `answers`: client
    -> answer times, on the windows' clock; `last`: the end of the history."""
    out: list[float | None] = []
    for start, end in windows:
        worst: float | None = None
        for times in answers.values():
            prev, gap = start, 0.0
            for t in sorted(times):
                if t <= start:
                    continue
                gap, prev = max(gap, t - prev), t
                if t >= end:
                    break
            else:
                gap = max(gap, last - prev)  # silent from its last answer on
            worst = gap if worst is None else max(worst, gap)
        out.append(None if worst is None else round(worst, 3))
    return out


def answered_after(answers: dict[str, list[float]], at: float) -> float | None:
    """Seconds from `at` (a fault) until every client had an answer again: the latest of
    each client's first answer after `at`; None if a client never answered again."""
    firsts = [min((t for t in times if t > at), default=None) for times in answers.values()]
    if not firsts or None in firsts:
        return None
    return round(max(firsts) - at, 3)
