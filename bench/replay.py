"""Time in up:replay for journals of N unflushed events, cold standby vs standby-replay.
Real processes (mon, osd, two MDS), fast profile, trimming disabled so every event is in the
journal tail. Prints figures, asserts nothing.

    .venv/bin/python bench/replay.py [--sizes 1000,10000,100000] [--clients 32]

For each size and mode: create N files through the filesystem client (N concurrent-ish
requests), `kill -9` rank 0's holder, and time, from pushed maps, how long the new holder
stays in up:replay; the replay rate is N over that. Beside it, from the successor's own log
line ("Finished replaying journal"): the seconds and CPU seconds of reading the journal (no
fence wait, no map round trips), the events it replayed and the rates per wall and per CPU
second (a standby-replay follower's final pass replays only what it had not yet read). The
baseline of this machine, in the same run: decoding and applying the same N events in one
process (no osd, no network), per wall and per CPU second.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from client.admin import AdminClient  # noqa: E402
from client.fsclient import FSClient  # noqa: E402
from client.localcluster import Cluster  # noqa: E402
from common import log as logsetup  # noqa: E402
from common import messages as m  # noqa: E402
from common import states  # noqa: E402
from common.fsmap import FSMap  # noqa: E402
from mds import applier  # noqa: E402
from mds import journal as j  # noqa: E402
from mds.namespace import Namespace  # noqa: E402
from mds.sessionmap import CompletedRequests  # noqa: E402


def baseline(n: int) -> tuple[float, float]:
    """Events per wall and per CPU second for decode + apply of n create events (as the
    active journals them: with their request ids), in this process."""
    ns = Namespace()
    applier.apply(ns, ns.prepare("mkdir", {"path": "/d"}, 0.0))
    evs = []
    for i in range(n):
        ev = ns.prepare("create", {"path": f"/d/f{i}"}, float(i))
        applier.apply(ns, ev)
        evs.append(dict(ev, t=j.EUPDATE, reqid=f"client.1:{i}", oldest=i))
    buf = b"".join(j.encode_event(e) for e in evs)
    gc.disable()  # as the MDS replays (mds/runtime.py)
    t0, c0 = time.perf_counter(), time.process_time()
    fresh = Namespace()
    applier.apply(fresh, {"op": "mkdir", "parent": 1, "name": "d", "ino": evs[0]["parent"],
                 "mode": 0o40755, "uid": 0, "gid": 0, "stamp": 0.0})
    decoded, _ = j.decode_events(buf, 0)
    completed = CompletedRequests()
    for _, ev in decoded:
        applier.apply(fresh, ev, {}, completed)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    gc.enable()
    return n / wall, n / cpu


async def load(mon_host: str, n: int, clients: int) -> float:
    t0 = time.perf_counter()
    async with FSClient.open(mon_host, fs_name="cephfs", timeout=120) as fs:
        await fs.mkdir("/d")

        async def worker(k: int) -> None:
            for i in range(k, n, clients):
                await fs.create(f"/d/f{i}")

        async with trio.open_nursery() as nursery:
            for k in range(clients):
                nursery.start_soon(worker, k)
    return n / (time.perf_counter() - t0)


async def time_replay(c: Cluster, mon_host: str, follower: bool) -> tuple[float, str]:
    """Kill rank 0's holder; return the seconds its successor spent in up:replay (as the
    maps show it), and the successor's name."""
    async with AdminClient.open(mon_host, timeout=10) as admin:
        await admin.subscribe("fsmap")
        fsmap = None
        killed = None
        replay_start = None
        async for msg in admin.pushes:
            if not isinstance(msg, m.FSMapMsg):
                continue
            fsmap = FSMap.from_wire(msg.fsmap)
            fs = fsmap.fs_by_name("cephfs")
            holder = fs.holder(0)
            if killed is None:
                if holder is None or holder.state != states.ACTIVE:
                    continue
                if follower and fs.follower(0) is None:
                    continue
                await trio.sleep(1.0 if follower else 0)  # let the follower catch up
                killed = holder.gid
                os.kill(c.pid_of(holder.name), signal.SIGKILL)
                continue
            if holder is not None and holder.gid != killed:
                if holder.state == states.REPLAY and replay_start is None:
                    replay_start = time.perf_counter()
                elif holder.state != states.REPLAY and replay_start is not None:
                    return time.perf_counter() - replay_start, holder.name
    raise RuntimeError("the monitor went away")


def replay_figures(log: str) -> tuple[int, float, float, float]:
    """(events, seconds, CPU seconds, seconds until the journal header came) of the journal
    read in the MDS's own "Finished replaying journal" line (the load alone: no fence wait
    of its own, no map round trips; the osd may wait for the fencing map before the header)."""
    line = [x for x in log.splitlines() if "Finished replaying journal" in x][-1]

    def field(key: str) -> str:
        return re.search(rf'{key}["=:\s]+([\d.]+)', line).group(1)

    header = float(field("header")) if "header" in line else 0.0
    return int(field("events")), float(field("reading")), float(field("cpu")), header


def run_one(base: Path, n: int, follower: bool, clients: int) -> tuple[float, float, tuple]:
    d = base / f"{'sr' if follower else 'cold'}-{n}"
    c = Cluster(d, profile="fast", conf={"mds": {"mds_log_max_segments": "1000000"}},
                cephx=False)  # auth none: comparable with earlier runs
    try:
        c.start(("a", "b"))
        if follower:
            c.ok("fs", "set", "cephfs", "allow_standby_replay", "true")
        mon_host = f"127.0.0.1:{c.port}"
        rate = trio.run(load, mon_host, n, clients)
        seconds, successor = trio.run(time_replay, c, mon_host, follower)
        return seconds, rate, replay_figures(c.log(f"mds.{successor}"))
    finally:
        c.destroy()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--clients", type=int, default=32)
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    logsetup.setup(level="warning")
    wall, per_cpu = baseline(max(sizes))
    print(f"baseline (decode+apply in one process): {wall:,.0f} events/s, {per_cpu:,.0f} per "
          f"CPU second; cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    print(f"{'events':>8} {'mode':>15} {'create ops/s':>13} {'up:replay s':>12} "
          f"{'events/s':>10} {'read s':>7} {'header s':>8} {'read ev/s':>10} {'cpu s':>6} "
          f"{'ev/cpu-s':>9}")
    with tempfile.TemporaryDirectory(prefix="mdsemu-bench-") as tmp:
        for n in sizes:
            for follower in (False, True):
                seconds, rate, (events, reading, cpu, header) = run_one(Path(tmp), n,
                                                                        follower, a.clients)
                mode = "standby-replay" if follower else "cold standby"
                per_wall = f"{events / max(reading, 1e-6):,.0f}" if events else "-"
                per_cpu = f"{events / max(cpu, 1e-6):,.0f}" if events and cpu else "-"
                print(f"{n:>8} {mode:>15} {rate:>13,.0f} {seconds:>12.3f} "
                      f"{n / seconds:>10,.0f} {reading:>7.3f} {header:>8.3f} {per_wall:>10} "
                      f"{cpu:>6.2f} "
                      f"{per_cpu:>9}  ({events} events read)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
