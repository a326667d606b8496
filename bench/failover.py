"""Kill-to-active times with real processes (fast profile): N kills of the active MDS with a
standby, N with a standby-replay follower. Prints figures, asserts nothing.

    .venv/bin/python bench/failover.py [--kills 20] [--profile fast] [--dir DIR] [--compare]

For each kill: SIGKILL the pid of the daemon holding rank 0 of cephfs at t0; t_assign is when
the first map with another gid holding rank 0 arrives (the mon noticed and replaced it: about
the grace), t_active when that holder is up:active (replay, reconnect, rejoin). Maps come from
an fsmap subscription, so each time is exact to one push. Then the killed daemon is started
again and the next round waits until it is back in the map (standby or follower).

The baseline of this machine, measured in the same run: the round trip of one monitor
command over an open connection, and the start-up of one `mdsemu` CLI process. The reference
is 2 x mds_beacon_grace + 1 s (Ceph's usual failover budget, scaled to the profile). With
--compare, the same rounds run first on a cluster whose monitor proposes every change at once
(paxos_propose_interval 0: the behaviour before proposals were batched), as the baseline.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.maps import FS, Watcher, rank0, ready, replaced  # noqa: E402
from client.admin import AdminClient  # noqa: E402
from client.localcluster import Cluster  # noqa: E402
from client.procs import MDSEMU  # noqa: E402
from common import config as cfg  # noqa: E402
from common import states  # noqa: E402


async def baseline(admin: AdminClient, n: int = 200) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        await admin.command(["mds", "stat"])
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def cli_startup(conf: Path, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(MDSEMU + ["-c", str(conf), "mds", "stat"], capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


async def rounds(c: Cluster, w: Watcher, kills: int, replay: bool) -> list[tuple[float, float]]:
    out = []
    names = ("a", "b", "c")

    ready_now = ready(names, replay)

    for i in range(kills):
        _, f = await w.until(ready_now, 30, "rank 0 active and every daemon back")
        old, fol = rank0(f)
        t0 = trio.current_time()
        os.kill(c.pid_of(old.name), signal.SIGKILL)
        t_assign, _ = await w.until(replaced(old.gid), 30, "a new rank 0 holder")
        t_active, f = await w.until(replaced(old.gid, states.ACTIVE), 30,
                                    "the new holder active")
        new = rank0(f)[0]
        if replay and new.gid != fol.gid:
            print(f"  round {i}: the follower {fol.name} did not take over ({new.name} did)")
        out.append((t_assign - t0, t_active - t0))
        c.mds(old.name).wait_exit(10)
        c.start_mds(old.name, wait=False)
    return out


def report(label: str, samples: list[tuple[float, float]], budget: float) -> None:
    active = sorted(s[1] for s in samples)
    assign = sorted(s[0] for s in samples)
    print(f"{label}: {len(samples)} kills")
    print(f"  kill -> new holder assigned: median {statistics.median(assign):.3f}s  "
          f"worst {assign[-1]:.3f}s")
    print(f"  kill -> up:active          : median {statistics.median(active):.3f}s  "
          f"worst {active[-1]:.3f}s  (best {active[0]:.3f}s)")
    verdict = "within" if active[-1] <= budget else "OVER"
    print(f"  worst vs 2 x grace + 1 s = {budget:g}s: {verdict} "
          f"({active[-1] / budget:.0%} of the budget)")


async def main_async(c: Cluster, kills: int) -> None:
    config = cfg.Config("client.admin", cfg.load_conf(str(c.conf_path)))
    grace = config.get("mds_beacon_grace")
    budget = 2 * grace + 1
    async with AdminClient.open(config.get("mon_host"), timeout=10) as admin:
        rtt = await baseline(admin)
        w = Watcher(admin)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(w.run)
            await admin.subscribe("fsmap")
            print(f"profile {c.profile}: mds_beacon_grace {grace:g}s, "
                  f"mds_beacon_interval {config.get('mds_beacon_interval'):g}s, "
                  f"mon_tick_interval {config.get('mon_tick_interval'):g}s")
            print(f"baseline: monitor command round trip median {rtt * 1e3:.2f} ms; "
                  f"mdsemu CLI process {cli_startup(c.conf_path):.3f}s; cpus {os.cpu_count()}")
            plain = await rounds(c, w, kills, replay=False)
            report("standby", plain, budget)
            c.cli("fs", "set", FS, "allow_standby_replay", "true", check=True)
            replay = await rounds(c, w, kills, replay=True)
            report("standby-replay", replay, budget)
            nursery.cancel_scope.cancel()


# Every change proposed at once, as before batching (issue 14 item 2): the baseline of --compare.
UNBATCHED = {"paxos_propose_interval": "0", "paxos_min_wait": "0"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--profile", default="fast", choices=sorted(cfg.PROFILES))
    ap.add_argument("--dir", default=None, help="cluster directory (default: a temp dir)")
    ap.add_argument("--compare", action="store_true",
                    help="first the same rounds with proposals not batched (each change "
                         "proposed at once), then with the profile's batching")
    a = ap.parse_args()
    runs = [("not batched (paxos_propose_interval 0)", UNBATCHED)] if a.compare else []
    runs.append(("batched (the profile's paxos_propose_interval)", {}))
    for label, mon_conf in runs:
        if a.compare:
            print(f"== proposals {label}", flush=True)
        with tempfile.TemporaryDirectory(prefix="mdsemu-bench-") as tmp:
            c = Cluster(Path(a.dir or tmp) / ("unbatched" if mon_conf else "batched"),
                        profile=a.profile, conf={"mon": mon_conf} if mon_conf else None,
                        cephx=False)  # auth none: figures comparable with earlier runs
            try:
                c.start(("a", "b", "c"))
                trio.run(main_async, c, a.kills)
            finally:
                c.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
