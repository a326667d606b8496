"""Clients through failover, with real processes (fast profile): a `mdsemu client load` of N
clients while the active MDS of rank 0 is killed (SIGKILL) K times, then `mdsemu client
verify`. Prints figures, asserts nothing.

    .venv/bin/python bench/load_failover.py [--duration 60] [--clients 8] [--kills 5]
        [--standby-replay] [--client-log] [--profile fast] [--dir DIR]

A Cluster (client/localcluster.py) with mon, osd and MDS daemons a, b, c; with
--standby-replay, `fs set cephfs allow_standby_replay true` first, so a follower takes over.
The load runs as its own process (`mdsemu -f json client load --clients N --duration S
--history FILE`). The kills are spaced evenly over the load (60 s, 5 kills: 8, 18, 28, 38,
48 s after the clients' first operation), never before the monitor's new-quorum window
(mds_beacon_mon_down_grace) is over; before each kill the previous victim has been started
again and is back in the map, so there is always a standby (and, with --standby-replay, a
follower).

The baseline, taken in the same run from an fsmap subscription (exact to one push): for each
kill, kill -> a new holder of rank 0 (the monitor noticed: about mds_beacon_grace) and kill ->
that holder up:active (replay, reconnect, rejoin). Against it, what the clients saw: the
summary of verify (`-f json`: ops, acknowledged, failed, unknown, violations,
`longest_unavailability` per client: the longest time without an answer from the MDS), and,
from the history, for each kill the time until every client had an answer again. The
reference is 2 x mds_beacon_grace + 1 s (Ceph's usual failover budget, scaled to the
profile). Exit status 0 unless the cluster, the load or verify could not be run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.maps import FS, BenchError, Watcher, rank0, ready, replaced  # noqa: E402
from client.admin import AdminClient  # noqa: E402
from client.localcluster import Cluster  # noqa: E402
from client.procs import MDSEMU, clean_env  # noqa: E402
from common import config as cfg  # noqa: E402
from common import states  # noqa: E402

NAMES = ("a", "b", "c")


# -- the load and verify, as the user runs them
async def run_json(words: list[str], conf: Path,
                   stderr: Path | None = None) -> tuple[int, dict | None, str]:
    """`mdsemu -c CONF -f json WORDS`: (exit status, parsed stdout or None, stderr). With
    `stderr`, the process's stderr goes to that file instead (and is read back)."""
    argv = MDSEMU + ["-c", str(conf), "-f", "json", *words]
    if stderr is None:
        res = await trio.run_process(argv, capture_stdout=True, capture_stderr=True,
                                     check=False, stdin=b"", env=clean_env())
        err = res.stderr.decode(errors="replace")
    else:
        with open(stderr, "ab") as f:
            res = await trio.run_process(argv, capture_stdout=True, stderr=f, check=False,
                                         stdin=b"", env=clean_env())
        err = "".join(line + "\n" for line in stderr.read_text(errors="replace").splitlines()
                      if not line.startswith("{"))  # what is not the JSON log
    out = res.stdout.decode(errors="replace")
    try:
        doc = json.loads(out)
    except json.JSONDecodeError:
        doc = None
    return res.returncode, doc, err + ("" if doc is not None else out)


def read_history(path: Path) -> tuple[float | None, list[dict]]:
    """(wall-clock time of the history's origin, records) of a possibly growing file."""
    wall, records = None, []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            break  # the line being written
        if rec.get("type") == "start":
            wall = datetime.fromisoformat(rec["wall"]).timestamp()
        else:
            records.append(rec)
    return wall, records


async def first_operation(path: Path, load_done: trio.Event) -> float | None:
    """The wall-clock time of the load's first operation (all clients set up), or None if the
    load ended before one."""
    while not load_done.is_set():
        wall, records = read_history(path)
        first = next((r for r in records if r.get("type") == "invoke"), None)
        if wall is not None and first is not None:
            return wall + float(first["time"])
        await trio.sleep(0.02)
    return None


def client_recovery(records: list[dict], at: float) -> dict[str, tuple[float, float]]:
    """For each client, around history time `at`: (seconds from `at` to its next answer, the
    silence containing `at`: from its previous answer, or first invoke, to that answer)."""
    out: dict[str, tuple[float, float]] = {}
    prev: dict[str, float] = {}
    for rec in records:
        c, t = rec.get("client"), float(rec.get("time", 0.0))
        if rec.get("type") == "invoke":
            prev.setdefault(c, t)
        elif rec.get("result") in ("ok", "error"):
            if t > at and c not in out and c in prev:
                out[c] = (t - at, t - prev[c])
            prev[c] = t
    return out


# -- the kills
class Kill:
    def __init__(self, at: float, victim: str, follower: str | None) -> None:
        self.at = at  # seconds after the first operation, as scheduled
        self.victim = victim
        self.follower = follower
        self.successor = ""
        self.wall = 0.0
        self.assign = self.active = 0.0
        self.states: dict[str, float] = {}
        self.late = 0.0  # how long the cluster made it wait past its slot


async def kills(c: Cluster, w: Watcher, schedule: list[float], ops_start: float,
                replay: bool, not_before: float, done: list[Kill],
                load_done: trio.Event) -> None:
    ready_now = ready(NAMES, replay)

    for at in schedule:
        slot = max(ops_start + at, not_before)
        await trio.sleep(max(0.0, slot - time.time()))
        _, f = await w.until(ready_now, 30, "rank 0 active and every daemon back")
        if load_done.is_set():
            print(f"  the load ended before the kill at {at:g}s; no more kills")
            return
        old, fol = rank0(f)
        pid = c.pid_of(old.name)
        k = Kill(at, old.name, fol.name if fol else None)
        t0 = trio.current_time()
        k.wall = time.time()
        k.late = max(0.0, k.wall - slot)
        os.kill(pid, signal.SIGKILL)
        t_assign, _ = await w.until(replaced(old.gid), 30, "a new rank 0 holder", since=t0)
        t_active, f = await w.until(replaced(old.gid, states.ACTIVE), 30,
                                    "the new holder active", since=t0)
        new = rank0(f)[0]
        k.successor = new.name
        k.assign, k.active = t_assign - t0, t_active - t0
        k.states = {s: t - t0 for s, t in w.states_of(new.gid, t0, t_active).items()}
        done.append(k)
        print(f"  kill {len(done)} at {k.wall - ops_start:5.2f}s: mds.{old.name} "
              f"-> mds.{new.name} active after {k.active:.3f}s", flush=True)
        await trio.to_thread.run_sync(c.mds(old.name).wait_exit, 10.0)
        await trio.to_thread.run_sync(lambda name=old.name: c.start_mds(name, wait=False))


# -- reporting
def odd_log_lines(c: Cluster) -> Counter:
    """Warnings, errors and evictions in the daemons' JSON logs (out/*.log), by message
    (numbers folded); from the clients' log (--client-log), everything from info up."""
    seen: Counter = Counter()
    for f in sorted((c.dir / "out").glob("*.log")):
        for line in f.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                if line.strip():
                    seen[(f.stem, "(not JSON) " + line.strip()[:100])] += 1
                continue
            event = str(rec.get("msg") or rec.get("event", ""))
            levels = ("warning", "error", "critical") + (("info",) if f.stem == "client.load"
                                                         else ())
            if rec.get("level") in levels or "evict" in event:
                seen[(f.stem, re.sub(r"\d+", "N", event)[:120])] += 1
    return seen


def report(args, config, kills_done: list[Kill], load: dict, verify: dict,
           ops_start: float, records: list[dict], hist_wall: float) -> None:
    grace = config.get("mds_beacon_grace")
    budget = 2 * grace + 1

    print(f"\nload: {args.clients} clients, {load.get('seconds', 0):.1f}s; "
          f"{len(kills_done)} kills of the active "
          f"({'standby-replay follower' if args.standby_replay else 'standby'})")
    print(f"  operations {verify['ops']}: acknowledged {verify['acknowledged']}, "
          f"failed {verify['failed']} (errno answers), unknown {verify['unknown']}")
    print(f"  ops/s {verify['ops'] / max(load.get('seconds', 1), 1e-9):.0f} "
          f"(load's own count: {load.get('ops')})")
    violations = verify.get("violations", [])
    print(f"  violations: {len(violations)}")
    for v in violations:
        print(f"    {v}")

    print("\nbaseline, per kill (pushed maps): kill -> new holder / -> up:reconnect / "
          "-> up:active; clients: kill -> every client answered again (longest silence "
          "around the kill)")
    for i, k in enumerate(kills_done, 1):
        h_at = k.wall - hist_wall
        rec = client_recovery(records, h_at)
        back = max((r[0] for r in rec.values()), default=float("nan"))
        gap = max((r[1] for r in rec.values()), default=float("nan"))
        who = "follower" if k.successor == k.follower else "standby"
        late = f", {k.late:.2f}s late" if k.late > 0.05 else ""
        print(f"  {i}: t={k.wall - ops_start:5.2f}s{late} mds.{k.victim} -> mds.{k.successor} "
              f"({who}): {k.assign:.3f}s / {k.states.get('up:reconnect', float('nan')):.3f}s"
              f" / {k.active:.3f}s; clients {back:.3f}s ({gap:.3f}s), "
              f"{len(rec)}/{args.clients} answered")
        if args.standby_replay and k.follower and k.successor != k.follower:
            print(f"     the follower mds.{k.follower} did not take over")
    if kills_done:
        act = sorted(k.active for k in kills_done)
        print(f"  kill -> up:active: median {statistics.median(act):.3f}s, "
              f"worst {act[-1]:.3f}s")

    worst = verify.get("longest_unavailability", {})
    print("\nlongest client-visible unavailability (verify `longest_unavailability`):")
    print("  " + "  ".join(f"{cl} {s:.3f}s" for cl, s in worst.items()))
    if worst:
        who, top = max(worst.items(), key=lambda kv: kv[1])
        vals = sorted(worst.values())
        verdict = "within" if top <= budget else "OVER"
        print(f"  overall {top:.3f}s ({who}); median over clients "
              f"{statistics.median(vals):.3f}s")
        print(f"  vs mds_beacon_grace {grace:g}s: {top / grace:.2f} x grace; vs 2 x grace "
              f"+ 1 s = {budget:g}s: {verdict} ({top / budget:.0%} of the budget)")
        if kills_done:
            print(f"  over the worst kill -> up:active ({act[-1]:.3f}s): "
                  f"{top - act[-1]:+.3f}s")


async def main_async(c: Cluster, args, started: float) -> int:
    config = cfg.Config("client.admin", cfg.load_conf(str(c.conf_path)))
    down_grace = config.get("mds_beacon_mon_down_grace")
    history = c.dir / "history.jsonl"
    step = args.duration / (args.kills + 1)
    schedule = [round(step * (i + 0.8), 3) for i in range(args.kills)]
    kills_done: list[Kill] = []
    print(f"profile {c.profile}: mds_beacon_grace {config.get('mds_beacon_grace'):g}s, "
          f"mds_beacon_interval {config.get('mds_beacon_interval'):g}s, "
          f"mds_beacon_mon_down_grace {down_grace:g}s, mds_reconnect_timeout "
          f"{config.get('mds_reconnect_timeout'):g}s, session_timeout "
          f"{config.get('mds_session_timeout')}s, autoclose "
          f"{config.get('mds_session_autoclose')}s; cpus {os.cpu_count()}")
    async with AdminClient.open(config.get("mon_host"), timeout=10) as admin:
        w = Watcher(admin)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(w.run)
            await admin.subscribe("fsmap")
            if args.standby_replay:
                await trio.to_thread.run_sync(lambda: c.cli(
                    "fs", "set", FS, "allow_standby_replay", "true", check=True))
                await w.until(lambda f: rank0(f)[1] is not None, 15,
                              "a standby-replay follower of rank 0")
            # the mon's new-quorum window (T3): a kill inside it would wait for it
            not_before = started + down_grace + 0.5
            print(f"load: {args.clients} clients, {args.duration:g}s; kills at "
                  f"{', '.join(f'{s:g}' for s in schedule)} s", flush=True)
            load_done = trio.Event()
            result: dict = {}

            async def load() -> None:
                try:
                    result["load"] = await run_json(
                        ["client", "load", "--clients", str(args.clients), "--duration",
                         str(args.duration), "--history", str(history),
                         *(["--debug"] if args.client_log else [])], c.conf_path,
                        stderr=c.dir / "out" / "client.load.log" if args.client_log else None)
                finally:
                    load_done.set()

            async def killer() -> None:
                ops_start = await first_operation(history, load_done)
                result["ops_start"] = ops_start
                if ops_start is not None:
                    await kills(c, w, schedule, ops_start, args.standby_replay,
                                not_before, kills_done, load_done)

            async with trio.open_nursery() as inner:
                inner.start_soon(load)
                inner.start_soon(killer)
            nursery.cancel_scope.cancel()

    rc, load_doc, err = result["load"]
    if err.strip():
        print(f"load stderr:\n{err.rstrip()}")
    if load_doc is None or result.get("ops_start") is None:
        raise BenchError(f"the load did not run (exit {rc})")
    rc, verify_doc, err = await run_json(["client", "verify", "--history", str(history)],
                                         c.conf_path)
    if verify_doc is None:
        raise BenchError(f"verify did not run (exit {rc}): {err.strip()}")
    if err.strip():
        print(f"verify stderr:\n{err.rstrip()}")
    hist_wall, records = read_history(history)
    report(args, config, kills_done, load_doc, verify_doc, result["ops_start"], records,
           hist_wall or 0.0)
    odd = odd_log_lines(c)
    if odd:
        where = c.dir / "out" if args.dir else "out/, removed: --dir DIR keeps them"
        print(f"\nlogs ({where}): warnings, errors, evictions")
        for (daemon, event), n in sorted(odd.items()):
            print(f"  {daemon}: {n} x {event}")
    return 0


def _leaf(e: BaseException) -> BaseException:
    """The one exception inside (nested) exception groups of one member."""
    while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
        e = e.exceptions[0]
    return e


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load (60)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--standby-replay", action="store_true",
                    help="fs set cephfs allow_standby_replay true: a follower takes over")
    ap.add_argument("--client-log", action="store_true",
                    help="the load's own log (--debug) in DIR/out/client.load.log")
    ap.add_argument("--profile", default="fast", choices=sorted(cfg.PROFILES))
    ap.add_argument("--dir", default=None, help="cluster directory, kept (default: a temp dir)")
    a = ap.parse_args()
    if a.clients < 1 or a.kills < 0 or a.duration <= 0:
        ap.error("--clients >= 1, --kills >= 0 and --duration > 0")
    with tempfile.TemporaryDirectory(prefix="mdsemu-bench-") as tmp:
        c = Cluster(Path(a.dir or tmp), profile=a.profile,
                    cephx=False)  # auth none: comparable with earlier runs
        try:
            c.start(NAMES)
            return trio.run(main_async, c, a, time.time())
        except BaseException as e:
            leaf = _leaf(e)
            if isinstance(leaf, KeyboardInterrupt):
                print("load_failover: interrupted; stopping the cluster", file=sys.stderr)
                return 130
            if not isinstance(leaf, BenchError | OSError | AssertionError):  # ClusterError
                raise
            print(f"load_failover: {type(leaf).__name__}: {leaf}\n{c.log_tails(15)}",
                  file=sys.stderr)
            return 1
        finally:
            c.destroy()


if __name__ == "__main__":
    raise SystemExit(main())
