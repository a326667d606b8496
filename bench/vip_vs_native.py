"""Seed 000's comparison, measured: MDS failover by the monitors (native) against keepalived
tracking the MDS daemons (the legacy setup, vip/legacy.py). Prints figures, asserts nothing.

    .venv/bin/python bench/vip_vs_native.py [--kills 5] [--profile fast]

Three setups, each a fresh cluster with mds.a (rank 0) and mds.b (standby) on "hosts" a, b:
  native       the monitors replace the active after mds_beacon_grace without beacons;
  beside       the same, plus one mdsemu-keepalived per MDS host (track script `kill -0` of
               the local MDS every second, fall 2, weight 0 → FAULT; nopreempt; notify_master
               fails the rank-0 holder unless it is the local MDS), as seed 000 sketches it;
  keepalived   the same keepalived, with mds_beacon_grace 60 s so that only keepalived acts.
Each round SIGKILLs the rank-0 holder at t0 and measures when a client request (mkdir, sent
right after the kill) is answered: "clients are served again". The killed daemon is started
again (it rejoins as standby) before the next round. For the keepalived setups also: when
the notify script ran after the kill and whether it acted (failed the dead MDS) or found the
monitors had already done it.

Formulas beside the figures: native ≈ mds_beacon_grace (+ a mon tick, + replay); keepalived
≈ up to fall × interval of the track script, + Skew_Time of the backup (FAULT sends priority
0), + two CLI runs of the notify script (fs dump, mds fail), + replay. Were the whole host to
die, the backup would wait Master_Down_Interval = 3 × advert_int + skew instead of the skew.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.maps import Watcher, rank0, ready, replaced  # noqa: E402
from client.admin import AdminClient  # noqa: E402
from client.fsclient import FSClient  # noqa: E402
from client.localcluster import Cluster  # noqa: E402
from client.procs import wait_for  # noqa: E402
from client.vipnodes import free_udp_port  # noqa: E402
from common import config as cfg  # noqa: E402
from common import log as logsetup  # noqa: E402
from vip import legacy  # noqa: E402
from vip import status as vipstatus  # noqa: E402
from vip.vrrp import master_down_interval, skew_time  # noqa: E402

NAMES = ("a", "b")
ADVERT, INTERVAL, FALL = 1.0, 1.0, 2


class Hosts:
    """One mdsemu-keepalived per MDS host, on 127.N.M.11, .12 with the VIP on .10."""

    def __init__(self, c: Cluster) -> None:
        self.c = c
        net = f"127.{random.randrange(100, 250)}.{random.randrange(1, 250)}"
        self.ips = [f"{net}.{11 + i}" for i in range(len(NAMES))]
        self.vip = f"{net}.10"
        self.notify_log = c.dir / "out" / "notify.log"
        self.procs: list[subprocess.Popen] = []
        port = free_udp_port(*self.ips)
        for i, n in enumerate(NAMES):
            notify = (f"{sys.executable} -m vip.legacy notify {c.conf_path} cephfs {n} "
                      f"{self.notify_log}")
            conf = c.dir / f"keepalived.{n}.conf"
            conf.write_text(legacy.render_conf(
                n, i, self.ips, self.vip, port, self.sock(n), str(c.pid_file(f"mds.{n}")),
                notify, ADVERT, INTERVAL, FALL))
            log = c.dir / "out" / f"keepalived.{n}.log"
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "vip", "-f", str(conf), "--log-file", str(log),
                 "--log-format", "json"], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            if i == 0:  # the active's host first: a daemon that is master first (nopreempt
                # keeps it) would fail the healthy active MDS from its notify script
                wait_for(lambda: self.state(NAMES[0]) == "MASTER", 30, "the first master")

    def sock(self, n: str) -> str:
        return str(self.c.dir / "run" / f"keepalived.{n}.sock")

    def state(self, n: str) -> str | None:
        try:
            return vipstatus.query(self.sock(n), timeout=2)["vrrp"][0]["mdsemu"]["state"]
        except (vipstatus.Unreachable, ValueError):
            return None

    def wait_master(self, n: str, timeout: float = 30) -> None:
        wait_for(lambda: self.state(n) == "MASTER" and all(
            self.state(o) == "BACKUP" for o in NAMES if o != n), timeout,
            f"keepalived on host {n} to be master")

    def notifications(self) -> list[dict]:
        try:
            return [json.loads(line) for line in self.notify_log.read_text().splitlines()]
        except FileNotFoundError:
            return []

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


async def rounds(c: Cluster, hosts: Hosts | None, kills: int) -> list[dict]:
    config = cfg.Config("client.admin", cfg.load_conf(str(c.conf_path)))
    out = []
    async with AdminClient.open(config.get("mon_host"), timeout=10) as admin, \
            FSClient.open(config.get("mon_host"), fs_name="cephfs", timeout=120) as fs, \
            trio.open_nursery() as nursery:
        w = Watcher(admin)
        nursery.start_soon(w.run)
        await admin.subscribe("fsmap")
        for i in range(kills):
            _, f = await w.until(ready(NAMES, False), 60, "rank 0 active, both daemons up")
            old = rank0(f)[0]
            if hosts is not None:
                await trio.to_thread.run_sync(hosts.wait_master, old.name)
            await fs.mkdir(f"/before{i}")
            wall0, t0, mono0 = time.time(), trio.current_time(), time.monotonic()
            os.kill(c.pid_of(old.name), signal.SIGKILL)
            # reap it at once: a zombie child would still pass the track script's `kill -0`
            nursery.start_soon(trio.to_thread.run_sync, c.mds(old.name).wait_exit, 10)
            await fs.mkdir(f"/after{i}")
            served = trio.current_time() - t0
            t_assign, _ = await w.until(replaced(old.gid), 60, "a new rank 0 holder")
            row = {"served": served, "assign": t_assign - t0, "at": mono0}
            if hosts is not None:
                def notified(since=wall0):
                    return [n for n in hosts.notifications() if n["time"] >= since] or None
                notes = await trio.to_thread.run_sync(
                    lambda: wait_for(notified, 30, "the notify script"))
                row["notify"] = notes[0]["time"] - wall0
                row["acted"] = notes[0]["failed"] is not None
            out.append(row)
            await trio.to_thread.run_sync(c.mds(old.name).wait_exit, 10)
            c.start_mds(old.name, wait=False)
        nursery.cancel_scope.cancel()
    return out


def run_setup(base: Path, label: str, profile: str, kills: int, keepalived: bool,
              conf: dict) -> tuple[list[dict], float]:
    c = Cluster(base / label, profile=profile, conf=conf,
                cephx=False)  # auth none: comparable with earlier runs
    hosts = None
    started = time.monotonic()  # the monitor's age at each kill: see main
    try:
        c.start(NAMES)
        grace = cfg.Config("mon.a", cfg.load_conf(str(c.conf_path))).get("mds_beacon_grace")
        if keepalived:
            hosts = Hosts(c)
        rows = trio.run(rounds, c, hosts, kills)
        for r in rows:
            r["mon_age"] = r["at"] - started
        return rows, grace
    finally:
        if hosts is not None:
            hosts.close()
        c.destroy()


def _fmt(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"{xs[0]:.2f} / {statistics.median(xs):.2f} / {xs[-1]:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--profile", default="fast", choices=sorted(cfg.PROFILES))
    ap.add_argument("--only", choices=("native", "beside", "keepalived"), action="append")
    ap.add_argument("--keep", default="", help="keep the cluster directories here")
    a = ap.parse_args()
    setups = [("native", False, {}), ("beside", True, {}),
              ("keepalived", True, {"global": {"mds_beacon_grace": "60"}})]
    skew = skew_time(90, ADVERT, 2)
    print(f"profile {a.profile}, {a.kills} kills per setup, cpus {os.cpu_count()}; "
          f"track script every {INTERVAL:g}s, fall {FALL}; advert_int {ADVERT:g}s, VRRPv2: "
          f"skew {skew:.3f}s, master-down {master_down_interval(90, ADVERT, 2):.3f}s")
    print("setup       grace   served again (min/median/max s)   new holder (median)   "
          "notify ran (median)   notify acted")
    setups = [s for s in setups if not a.only or s[0] in a.only]
    with tempfile.TemporaryDirectory(prefix="mdsemu-vipnative-") as tmp:
        base = Path(a.keep or tmp)
        logsetup.setup("json", str(base / "bench.log"))  # the client's log off the screen
        for label, ka, conf in setups:
            rows, grace = run_setup(base, label, a.profile, a.kills, ka, conf)
            served = _fmt([r["served"] for r in rows])
            assign = statistics.median(r["assign"] for r in rows)
            notify = acted = "-"
            if ka:
                notify = f"{statistics.median(r['notify'] for r in rows):.2f}s"
                acted = f"{sum(r['acted'] for r in rows)}/{len(rows)}"
            print(f"{label:<11} {grace:>5g}s  {served:<34} {assign:>6.2f}s"
                  f"{notify:>22}   {acted:>12}", flush=True)
            # a kill in the monitor's first minute waits mds_beacon_mon_down_grace (60 s)
            print("            rounds: " + ", ".join(
                f"{r['served']:.2f}s (mon up {r['mon_age']:.0f}s)" for r in rows), flush=True)
    print(f"formulas: native ≈ mds_beacon_grace + tick + replay; keepalived ≈ ≤ {FALL} × "
          f"{INTERVAL:g}s (track) + {skew:.3f}s (skew) + notify (2 CLI runs) + replay; "
          f"a dead host: {master_down_interval(90, ADVERT, 2):.3f}s instead of the skew")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
