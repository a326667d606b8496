"""`mdsemu thrash -c DIR/ceph.conf`: Ceph's MDS thrasher against a local `vstart` cluster
(`client.thrash_local`), or `--compose PROJECT`: its containers (`client.thrash_compose`).

The schedule comes from `client.nemesis` (sans-IO, seeded) and is printed first; this module
only applies it: signals to the pids in DIR/run/<type>.<id>.pid, revivals the way vstart
starts a daemon, `mds fail`, `fs set max_mds` and `config set` of the messenger's injection
options. At the end every fault is healed, the cluster must be HEALTH_OK within
--recovery-timeout, and `verify` checks the client history. Exit status: 0 nothing lost and
recovered, 1 a violation, 2 the cluster did not recover in the bound or the client load died
(the faults stop and everything is healed first), 130 after Ctrl-C (healed first, no report);
EINVAL for bad options.
report.json in --report DIR lists each fault with the time until the ranks were active again.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime

from client import nemesis, timeline
from client.thrash_compose import ComposeCluster, ComposeError
from client.thrash_local import LocalCluster
from common import config as cfg

POLL = 0.2  # seconds between map polls
LOAD_POLL = 2.0  # seconds between checks that the client load still runs
HEALTH_POLL = 1.0  # seconds between health polls (the timeline's health band)
INJECTED = ("ms_inject_socket_failures", "ms_inject_delay_type",
            "ms_inject_delay_probability", "ms_inject_delay_max")
MON = "mon.a"  # the monitor (vstart's and compose's only one)
DELAY_PROBABILITY = 0.2  # ms_inject_delay_probability while a delay fault lasts


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mdsemu thrash", description=__doc__.split("\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("-c", "--conf", help="the vstart cluster's ceph.conf")
    where.add_argument("--compose", metavar="PROJECT",
                       help="thrash the containers of this compose project of compose.yaml")
    p.add_argument("--seed", type=int, default=None, help="replay a run (default: random)")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--faults", type=int, help="inject this many faults")
    how.add_argument("--duration", type=float, help="or inject faults for this many seconds")
    p.add_argument("--delay", type=float, default=5.0,
                   help="longest pause between faults, fractional seconds (5)")
    p.add_argument("--max-revive-delay", type=float, default=5.0,
                   help="longest time a killed daemon stays down (5)")
    p.add_argument("--thrash-max-mds", type=float, default=0.05,
                   help="probability that a fault is a max_mds change (0.05)")
    p.add_argument("--thrash-weights", default="", help="KIND=W,... (unlisted kinds: 0)")
    p.add_argument("--fs", default="cephfs")
    p.add_argument("--clients", type=int, default=2, help="client load processes (2)")
    p.add_argument("--history", default=None,
                   help="check this history (of a load you run) instead of running one")
    p.add_argument("--report", default=None,
                   help="directory for report.json and timeline.html")
    p.add_argument("--recovery-timeout", type=float, default=60.0,
                   help="bound on reaching HEALTH_OK after the last fault (60)")
    return p


# -- talking to the cluster ----------------------------------------------------------------
# -- the run -------------------------------------------------------------------------------
class Thrasher:
    def __init__(self, cluster: LocalCluster | ComposeCluster, seed: int, started: float) -> None:
        self.c = cluster
        self.seed = seed
        self.t0 = started
        self.dump: dict | None = None
        self.records: list[dict] = []
        self.watch: list[tuple[dict, int | None, int | None]] = []  # (record, rank, old gid)
        self.blackholed: set[str] = set()
        self.partitioned: set[str] = set()  # ms_blackhole_from set on it (and on the mon)
        self.disconnected: set[str] = set()  # compose: cut from the network
        self.first_max_mds = 1
        self.tl = timeline.Timeline(end=0.0, title=f"mdsemu thrash --seed {seed}")
        self.health_at = -HEALTH_POLL
        self.load_dead: Callable[[], str | None] = lambda: None  # why the load ended, if so
        self.load_checked = 0.0

    def now(self) -> float:
        return time.monotonic() - self.t0

    def poll_until(self, at: float, check_load: bool = True) -> None:
        """Follow the map until `at` (seconds into the run), noting recoveries. LoadDied if
        the client load has ended meanwhile (a run without it checks nothing)."""
        while True:
            if check_load and self.now() - self.load_checked >= LOAD_POLL:
                self.load_checked = self.now()
                dead = self.load_dead()
                if dead is not None:
                    raise LoadDied(dead)
            dump = self.c.dump()
            self.dump = dump or self.dump
            self._note_states(dump)
            self._note_recoveries()
            left = at - self.now()
            if left <= 0:
                return
            time.sleep(min(POLL, left))

    def _note_states(self, dump: dict | None) -> None:
        """The timeline's lanes: each MDS's state in this map, and health now and then."""
        now = round(self.now(), 3)
        if dump is not None:
            states = timeline.mds_states(dump, self.c.fs)
            for name in set(states) | set(self.tl.mds):
                self.tl.note(name, now, states.get(name, "absent"))
        if now - self.health_at >= HEALTH_POLL:
            self.health_at = now
            rc, _, out = self.c.command("health")
            timeline.changed(self.tl.health, now,
                             json.loads(out)["status"] if rc == 0 else "no answer")

    def _note_recoveries(self) -> None:
        if self.dump is None:
            return
        now, still = self.now(), []
        for rec, rank, gid in self.watch:
            if self._recovered(rec, rank, gid):
                rec["recovered_after"] = round(now - rec["applied_at"], 3)
            else:
                still.append((rec, rank, gid))
        self.watch = still

    def _recovered(self, rec: dict, rank: int | None, gid: int | None) -> bool:
        return nemesis.recovered(rec["kind"], self.dump, self.c.fs, held=(rank, gid),
                                 healed=rec["healed_at"] is not None,
                                 new_max_mds=rec.get("max_mds"))

    def run_fault(self, f: nemesis.Fault) -> None:
        self.poll_until(f.at)
        target = nemesis.resolve(f, self.dump or {}, self.seed, self.c.fs)
        held = nemesis.holder(self.dump, self.c.fs, target) if target else None
        rec = {"index": f.index, "at": f.at, "kind": f.kind, "role": f.target,
               "target": target, "heal_at": f.heal_at, "applied_at": round(self.now(), 3),
               "healed_at": None, "recovered_after": None, "detail": ""}
        self.records.append(rec)
        rec["detail"] = self.apply(f, target)
        print(f"{rec['applied_at']:8.3f}s fault {f.index}: {f.kind} {target} {rec['detail']}",
              flush=True)
        self.watch.append((rec, *(held or (None, None))))  # recovery may come before the heal
        self.poll_until(f.heal_at)
        self.heal(f, target)
        rec["healed_at"] = round(self.now(), 3)

    def apply(self, f: nemesis.Fault, name: str | None) -> str:
        c, k = self.c, f.kind
        if name is None:
            return "skipped: no daemon in that role"
        mds = name if name.startswith(("mon.", "osd.")) else f"mds.{name}"
        if k in ("kill", "mon_restart", "osd_restart"):
            c.kill(mds)
        elif k == "restart":
            c.kill(mds, signal.SIGTERM)
        elif k in ("stop_short", "stop_long", "osd_pause"):
            c.send_signal(mds, signal.SIGSTOP)
        elif k == "mds_fail":
            return f"rc {c.command('mds', 'fail', name)[0]}"
        elif k == "disconnect":
            self.disconnected.add(mds)
            c.disconnect(mds)
        elif k == "blackhole":
            self.blackholed.add(mds)
            return f"rc {c.command('config', 'set', mds, 'ms_blackhole_mon', 'true')[0]}"
        elif k in nemesis.PARTITIONS:
            self.partitioned.add(mds)
            return f"rc {partition(c, k, mds)}"
        elif k == "socket_failures":
            return f"rc {c.command('config', 'set', 'mds', INJECTED[0], f'{f.param:g}')[0]}"
        elif k == "delay":
            for opt, v in zip(INJECTED[1:], ("client mds osd", DELAY_PROBABILITY, f.param),
                              strict=True):
                c.command("config", "set", "mds", opt, str(v))
        elif k == nemesis.MAX_MDS:
            n = nemesis.next_max_mds(f, nemesis.max_mds_of(self.dump, c.fs),
                                     max(self.first_max_mds, 2), self.seed)
            rc = c.command("fs", "set", c.fs, "max_mds", str(n))[0]
            self.records[-1]["max_mds"] = n
            return f"max_mds {n} (rc {rc})"
        return ""

    def heal(self, f: nemesis.Fault, name: str | None) -> None:
        c, k = self.c, f.kind
        if name is None:
            return
        mds = name if name.startswith(("mon.", "osd.")) else f"mds.{name}"
        if k in ("kill", "restart", "mon_restart", "osd_restart"):
            c.start(mds)
        elif k in ("stop_short", "stop_long", "osd_pause"):
            c.send_signal(mds, signal.SIGCONT)
        elif k == "disconnect":
            c.disconnect(mds, connect=True)
            self.disconnected.discard(mds)
        elif k == "blackhole":
            self._clear_blackhole(mds)
        elif k in nemesis.PARTITIONS:
            self._clear_partition(mds)
        elif k in ("socket_failures", "delay"):
            for opt in INJECTED:
                c.command("config", "rm", "mds", opt)

    def _clear_blackhole(self, mds: str) -> None:
        # The mon can no longer tell the daemon: clear the db, then the daemon's admin socket.
        self.c.command("config", "rm", mds, "ms_blackhole_mon")
        self.c.asok(mds, "config", "set", "ms_blackhole_mon", "false")
        self.blackholed.discard(mds)

    def _clear_partition(self, mds: str) -> None:
        # The monitor's side first: then it can tell the daemon again; the admin socket
        # reaches a daemon that still hears nothing from the monitor.
        self.c.command("config", "rm", MON, "ms_blackhole_from")
        self.c.command("config", "rm", mds, "ms_blackhole_from")
        self.c.asok(mds, "config", "set", "ms_blackhole_from", "")
        self.partitioned.discard(mds)

    def heal_all(self) -> None:
        """Jepsen's final generator: every daemon running and resumed, every injection gone."""
        c = self.c
        for mds in sorted(self.disconnected):
            c.disconnect(mds, connect=True)
        for name in c.names():
            c.send_signal(name, signal.SIGCONT)
            c.start(name)
        deadline = time.monotonic() + 30
        while c.command("health")[0] != 0 and time.monotonic() < deadline:
            time.sleep(POLL)  # a monitor just started: the clean-up must reach it
        for mds in sorted(self.blackholed):
            self._clear_blackhole(mds)
        for mds in sorted(self.partitioned):
            self._clear_partition(mds)
        for opt in INJECTED + ("ms_inject_seed",):
            c.command("config", "rm", "mds", opt)
        c.command("fs", "set", c.fs, "max_mds", str(self.first_max_mds))


class LoadDied(RuntimeError):
    """The client load ended before the faults did; str() says how."""


def _tail(path: str, n: int = 2000) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()[-n:]
    except OSError:
        return ""


def _load_dead(load: subprocess.Popen, log: str) -> str | None:
    if load.poll() is None:
        return None
    last = [ln for ln in _tail(log, 600).splitlines() if ln.strip()][-1:]
    return f"exit status {load.returncode}" + (f": {last[0]}" if last else "")


def _reap(load: subprocess.Popen) -> None:
    try:
        load.wait(timeout=120)
    except subprocess.TimeoutExpired:
        load.kill()
        load.wait()


def partition(c: LocalCluster | ComposeCluster, kind: str, mds: str) -> int:
    """Jepsen's partitions of an active with ms_blackhole_from; the rc of the last command.
    oneway: the monitor drops what the active sends (beacons): it is replaced, yet still
    hears that it was. twoway: each drops the other's (the active's side set first, while
    the monitor can still tell it). client: the active drops what clients send (requests,
    renewals), its clients' requests go unanswered until they resend them."""
    if kind == "partition_client":
        return c.command("config", "set", mds, "ms_blackhole_from", "client")[0]
    if kind == "partition_twoway":
        c.command("config", "set", mds, "ms_blackhole_from", "mon")
    return c.command("config", "set", MON, "ms_blackhole_from", mds)[0]


def _totals(records: list[dict]) -> dict:
    out: dict[str, dict] = {}
    for kind in sorted({r["kind"] for r in records}):
        times = [r["recovered_after"] for r in records
                 if r["kind"] == kind and r["recovered_after"] is not None]
        gaps = [r["clients_unanswered"] for r in records
                if r["kind"] == kind and r.get("clients_unanswered") is not None]
        again = [r["clients_answered_after"] for r in records
                 if r["kind"] == kind and r.get("clients_answered_after") is not None]
        out[kind] = {"count": sum(r["kind"] == kind for r in records),
                     "recovered": len(times),
                     "recovery_median": round(statistics.median(times), 3) if times else None,
                     "recovery_worst": max(times) if times else None,
                     "clients_unanswered_worst": max(gaps) if gaps else None,
                     "clients_answered_after_worst": max(again) if again else None}
    return out


def _answers(history: str, wall0: float) -> tuple[dict[str, list[float]], float | None]:
    """Each client's answer times (ok or error) on the thrash clock, and the load's start,
    from the history (its times moved onto the thrash clock by the wall stamps)."""
    answers: dict[str, list[float]] = {}
    offset = None
    try:
        with open(history, encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                if rec.get("type") == "start":
                    offset = datetime.fromisoformat(rec["wall"]).timestamp() - wall0
                elif rec.get("type") == "complete" and rec.get("result") in ("ok", "error"):
                    answers.setdefault(rec["client"], []).append(float(rec["time"]))
    except (OSError, ValueError, KeyError, TypeError):
        return {}, None  # no usable history: verify says why
    if offset is None:
        return {}, None
    return {c: [x + offset for x in ts] for c, ts in answers.items()}, offset


def _note_client_gaps(records: list[dict], answers: dict[str, list[float]]) -> None:
    """Each fault's `clients_unanswered`: the longest time a client got no answer between
    this fault and the next."""
    if not answers or not records:
        return
    end = max(max(ts) for ts in answers.values())
    starts = [r["applied_at"] for r in records] + [end]
    gaps = nemesis.client_gaps(answers, list(zip(starts, starts[1:], strict=False)), end)
    for rec, gap in zip(records, gaps, strict=True):
        rec["clients_unanswered"] = gap
        rec["clients_answered_after"] = nemesis.answered_after(answers, rec["applied_at"])


def _write_timeline(t: Thrasher, answers: dict[str, list[float]], load_start: float | None,
                    path: str) -> None:
    tl, end = t.tl, round(t.now(), 3)
    tl.end, tl.faults = end, t.records
    tl.processes = timeline.process_lanes(
        t.records, [n for n in t.c.names() if not n.startswith("mds.")], end)
    every = [x for ts in answers.values() for x in ts]
    if load_start is not None and every:
        tl.load = (load_start, max(every))
        tl.gaps = timeline.unanswered(every, load_start, max(every))
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(timeline.render(tl))


def run(a: argparse.Namespace) -> int:
    compose = a.compose is not None
    weights = nemesis.parse_weights(a.thrash_weights, compose) if a.thrash_weights else None
    opts = nemesis.Options(seed=0, delay=a.delay, max_revive_delay=a.max_revive_delay,
                           thrash_max_mds=a.thrash_max_mds, faults=a.faults,
                           duration=a.duration, weights=weights, compose=compose)
    opts.check()  # bad options are refused before the cluster is touched
    if a.clients < 1 or not a.recovery_timeout > 0:
        raise nemesis.ScheduleError("--clients must be >= 1 and --recovery-timeout positive")
    c = ComposeCluster(a.compose, a.fs) if compose else LocalCluster(a.conf, a.fs)
    grace = c.grace()
    dump = c.dump()
    if dump is None:
        print(f"mdsemu thrash: no monitor answers for {a.compose or c.conf}", file=sys.stderr)
        return errno.ENOTCONN
    first_max_mds = nemesis.max_mds_of(dump, a.fs)
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "big")
    faults = nemesis.schedule(dataclasses.replace(opts, seed=seed, grace=grace,
                                                  ranks=max(first_max_mds, 2)))
    print(f"mdsemu thrash: seed {seed}, {len(faults)} faults over {faults[-1].heal_at:.1f}s "
          f"(replay: --seed {seed})")
    for f in faults:
        print(f.line())
    report_dir = a.report or os.path.join(c.dir, "thrash")
    os.makedirs(report_dir, exist_ok=True)
    history = a.history or os.path.join(report_dir, "history.jsonl")
    load, load_log = None, os.path.join(report_dir, "load.log")
    if a.history is None and not compose:  # in compose the client service runs the load
        with open(load_log, "w") as out:  # a file, not a pipe nobody reads until the end
            load = subprocess.Popen(
                [sys.executable, "-m", "client", "-c", c.conf, "client", "load", "--clients",
                 str(a.clients), "--remount", "--duration", f"{faults[-1].heal_at + 1:.3f}", "--history",
                 history, "--seed", str(seed), "--fs", a.fs],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, text=True,
                start_new_session=True)  # our Ctrl-C is ours to handle: we heal first
    c.command("config", "set", "mds", "ms_inject_seed", str(seed))
    wall0, t = time.time(), Thrasher(c, seed, time.monotonic())
    t.first_max_mds = first_max_mds
    if load is not None:
        t.load_dead = lambda: _load_dead(load, load_log)
    elif compose and a.history is None:
        t.load_dead = c.load_dead
    stopped = None  # why the faults stopped early
    try:
        for f in faults:
            t.run_fault(f)
    except KeyboardInterrupt:
        stopped = "interrupted"
    except LoadDied as e:
        stopped = f"the client load died: {e}"
    finally:
        print("mdsemu thrash: healing every fault", flush=True)
        t.heal_all()
    for rec in t.records:  # the fault under way when it stopped: healed just now
        if rec["healed_at"] is None:
            rec["healed_at"] = round(t.now(), 3)
    if stopped == "interrupted":  # the report still says what ran (a partial run)
        if load is not None:
            load.terminate()
            _reap(load)
        print("mdsemu thrash: interrupted; every fault healed", file=sys.stderr)
    recovered = None
    if stopped is None:
        print(f"mdsemu thrash: all healed; waiting up to {a.recovery_timeout:g}s for "
              f"HEALTH_OK", flush=True)
        healed_at = t.now()
        while t.now() - healed_at < a.recovery_timeout:
            t.poll_until(t.now(), check_load=False)
            if nemesis.settled(t.dump, a.fs, [r["kind"] for r, *_ in t.watch]) and \
                    c.healthy():
                recovered = round(t.now() - healed_at, 3)
                break
            time.sleep(POLL)
    if load is not None:
        _reap(load)
    load_out = _tail(load_log) if load is not None else ""
    verdict, status = None, 2  # 2: not recovered (or the history could not be checked)
    if stopped == "interrupted":
        status = 130
    if compose and a.history is None and stopped != "interrupted":
        history = c.collect_history(history)
    if stopped is not None:
        verdict = {"error": stopped}
        print(f"mdsemu thrash: {stopped}", file=sys.stderr)
    elif recovered is not None:
        res = c.verify(history)
        try:
            verdict = json.loads(res.stdout)
        except json.JSONDecodeError:
            verdict = {"error": (res.stdout + res.stderr)[-2000:]}
        status = res.returncode if res.returncode in (0, 1) else 2
    answers, load_start = _answers(history, wall0)
    _note_client_gaps(t.records, answers)
    _write_timeline(t, answers, load_start, os.path.join(report_dir, "timeline.html"))
    report = {"seed": seed, "options": {k: v for k, v in vars(a).items()},
              "grace": grace, "partial": stopped is not None,
              "faults": t.records, "totals": _totals(t.records),
              "recovery": {"bound": a.recovery_timeout, "seconds": recovered},
              "load": load_out[-2000:], "verify": verdict, "exit_status": status}
    with open(os.path.join(report_dir, "report.json"), "w") as fh:
        json.dump(report, fh, indent=2)
    for kind, s in report["totals"].items():
        print(f"  {kind:<15} {s['count']:4d} faults, recovered {s['recovered']}, median "
              f"{s['recovery_median']}s, worst {s['recovery_worst']}s; clients unanswered "
              f"at most {s['clients_unanswered_worst']}s")
    state = f"recovered in {recovered}s" if recovered is not None else \
        "stopped early, everything healed" if stopped is not None else \
        f"NOT recovered within {a.recovery_timeout:g}s"
    checked = "not run" if verdict is None else "ok" if status == 0 else \
        (verdict.get("violations") or verdict)
    if verdict and "acknowledged" in verdict:
        worst = max((verdict.get("longest_unavailability") or {}).values(), default=0.0)
        print(f"  load: {verdict.get('ops')} operations, {verdict['acknowledged']} "
              f"acknowledged; the longest a client went unanswered: {worst:.3f}s")
    print(f"mdsemu thrash: {state}; verify: {checked}; report {report_dir}/report.json "
          f"and timeline.html")
    return status


def main(argv: list[str]) -> int:
    try:
        a = parser().parse_args(argv)
    except SystemExit as e:  # argparse said why on stderr; 2 would read "not recovered"
        return errno.EINVAL if e.code else 0
    try:
        return run(a)
    except (nemesis.ScheduleError, cfg.ConfError) as e:
        print(f"mdsemu thrash: {e}", file=sys.stderr)
        return errno.EINVAL
    except ComposeError as e:
        print(f"mdsemu thrash: {e}", file=sys.stderr)
        return errno.ENOTCONN
