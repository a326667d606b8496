"""An NFS head's kill -9 and restart, with real processes (`vstart --nfs 2`, fast profile:
Grace_Period 10 s, Lease_Lifetime 4 s, mdsemu_nfs_session_timeout 5 s). Prints figures,
asserts nothing.

    .venv/bin/python bench/nfs_restart.py [--rounds 5] [--clients 4] [--dir DIR]

Each round: N clients each hold a write lock on their own file through head a (a CephFS lock
held by a's session); at t0 head a is SIGKILLed and started again at once. Measured from t0,
by polling the grace database and the head: t_grace, when the restarted head has started its
grace period (R != 0, its N set); t_enforce, when head b enforces it (its E set); t_reset, when
the restarted head has reset its previous incarnation's CephFS session (RECLAIM_RESET, from
its log's timestamp); t_serve, when it accepts connections; t_reclaim, when every client has
reconnected, reclaimed its open and lock and sent RECLAIM_COMPLETE; t_lift, when R = 0 and both
heads' flags are clear again. A last round kills head a and leaves it down: t_free, when a
client of head b gets a lock a's client held (the MDS evicted a's session after its timeout:
the seed's "restart it within 5 minutes" caveat, here 5 s). Between rounds the clients of the last one go idle until their
leases ran out (else the restarted head waits for them to reclaim: Grace_Period). Baseline, same
run: one read of the grace database over an open
session, and the start-up of one Python process importing the head's modules.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from client.localcluster import Cluster  # noqa: E402
from client.rados import Rados  # noqa: E402
from common import config as cfg  # noqa: E402
from nfs.client import NFSClient  # noqa: E402
from nfs.grace_tool import read  # noqa: E402
from nfs.nfs4 import NFS4Error  # noqa: E402

POLL = 0.01


def port_of(c: Cluster, node: str) -> int:
    text = (c.dir / f"ganesha.{node}.conf").read_text()
    return int(next(ln.split("=")[1].strip(" ;") for ln in text.splitlines() if "NFS_Port" in ln))


async def round_(c: Cluster, io, n: int, k: int) -> dict:
    port = port_of(c, "a")
    addr = f"127.0.0.1:{port}"
    owners = [f"bench-{k}-{i}" for i in range(n)]
    for owner in owners:
        async with NFSClient.connect(addr) as cl:
            await cl.mount(owner)
            await cl.call("reclaim_complete")
            sid = (await cl.call("open", path=f"/{owner}", create=True))["stateid"]
            await cl.call("lock", stateid=sid, type="write", offset=0, length=100)
    t0, wall0 = time.monotonic(), time.time()
    await kill_a(c)
    log = open(c.dir / "out" / "nfs.a.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "nfs.daemon", "-c", str(c.conf_path), "-f",
                             str(c.dir / "ganesha.a.conf"), "-i", "a", "--pid-file",
                             str(c.dir / "run" / "nfs.a.pid")], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    times: dict[str, float] = {}

    async def watch_db() -> None:
        while "t_lift" not in times:
            db, _ = await read(io, "grace")
            now = time.monotonic() - t0
            if "t_grace" not in times and db.rec and db.flags.get("a", 0) & 1:
                times["t_grace"] = now
            if "t_grace" in times and "t_enforce" not in times and db.flags.get("b", 0) & 2:
                times["t_enforce"] = now
            if "t_grace" in times and db.rec == 0 and not any(db.flags.values()):
                times["t_lift"] = now
            await trio.sleep(POLL)

    async def reclaim(owner: str) -> None:
        while True:
            try:
                async with NFSClient.connect(addr) as cl:
                    times.setdefault("t_serve", time.monotonic() - t0)
                    await cl.mount(owner)
                    sid = (await cl.call("open", path=f"/{owner}", claim="previous"))["stateid"]
                    await cl.call("lock", stateid=sid, type="write", offset=0, length=100,
                                  reclaim=True)
                    await cl.call("reclaim_complete")
                    return
            except OSError:
                await trio.sleep(POLL)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_db)
            async with trio.open_nursery() as clients:
                for owner in owners:
                    clients.start_soon(reclaim, owner)
            times["t_reclaim"] = time.monotonic() - t0
    del proc  # it keeps running as head a for the next round
    times["t_reset"] = reset_time(c, wall0)
    return times


async def kill_a(c: Cluster) -> None:
    pid = int((c.dir / "run" / "nfs.a.pid").read_text())
    subprocess.run(["kill", "-9", str(pid)], check=True)
    while Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text():
        await trio.sleep(POLL)


def reset_time(c: Cluster, wall0: float) -> float:
    """When head a logged its reclaim reset, seconds after wall0 (its JSON log's stamp)."""
    for line in (c.dir / "out" / "nfs.a.log").read_text().splitlines():
        if "reclaim reset of the previous" not in line or not line.startswith("{"):
            continue
        stamp = datetime.datetime.fromisoformat(json.loads(line)["timestamp"]).timestamp()
        if stamp >= wall0:
            return stamp - wall0
    return float("nan")


async def down_round(c: Cluster) -> float:
    """Head a holds a lock and dies for good: how long until head b's client gets it."""
    a, b = (f"127.0.0.1:{port_of(c, node)}" for node in "ab")
    async with NFSClient.connect(a) as cl:
        await cl.mount("bench-down")
        await cl.call("reclaim_complete")
        sid = (await cl.call("open", path="/bench-down", create=True))["stateid"]
        await cl.call("lock", stateid=sid, type="write", offset=0, length=100)
    t0 = time.monotonic()
    await kill_a(c)
    async with NFSClient.connect(b) as other:
        await other.mount("bench-other")
        await other.call("reclaim_complete")
        sid = (await other.call("open", path="/bench-down"))["stateid"]
        with trio.fail_after(600):
            while True:
                try:
                    await other.call("lock", stateid=sid, type="write", offset=0, length=100)
                    return time.monotonic() - t0
                except NFS4Error as e:
                    if e.name != "NFS4ERR_DENIED":
                        raise
                await trio.sleep(POLL * 5)


def settings(c: Cluster) -> str:
    conf = (c.dir / "ganesha.a.conf").read_text()

    def knob(name: str) -> str:
        return next((ln.split(name, 1)[1].split(";")[0].strip(" =") for ln in
                     conf.splitlines() if name in ln), "?")

    fs = json.loads(c.cli("fs", "get", "cephfs", fmt="json", check=True).stdout)["mdsmap"]
    timeout = cfg.Config("client.nfs.a", cfg.load_conf(str(c.conf_path))).get(
        "mdsemu_nfs_session_timeout")  # what the head reads
    return (f"Grace_Period {knob('Grace_Period')} s, Lease_Lifetime {knob('Lease_Lifetime')} s, "
            f"mdsemu_nfs_session_timeout {timeout} s, session_timeout "
            f"{fs.get('session_timeout')} s, session_autoclose {fs.get('session_autoclose')} s")


async def main(c: Cluster, rounds: int, n: int) -> None:
    config = cfg.Config("client.admin", cfg.load_conf(str(c.conf_path)))
    async with Rados.connect(config) as rados:
        io = rados.ioctx("cephfs_metadata", "ganesha")
        t = time.monotonic()
        for _ in range(200):
            await read(io, "grace")
        rtt = (time.monotonic() - t) / 200
        t = time.monotonic()
        subprocess.run([sys.executable, "-c", "import nfs.daemon"], check=True)
        start = time.monotonic() - t
        print(f"settings: {settings(c)}")
        print(f"baseline: grace db read {rtt * 1000:.2f} ms; python start-up with the head's "
              f"modules {start:.2f} s")
        results = []
        for k in range(rounds):
            if k:  # the last round's clients stop renewing: let their leases (4 s) run out
                await trio.sleep(4 * 1.5 + 2)  # and the reaper (lease/2) drop their records
            r = await round_(c, io, n, k)
            results.append(r)
            print(f"round {k + 1}: " + ", ".join(f"{key} {r[key]:.3f} s" for key in KEYS))
        for key in KEYS:
            vals = [r[key] for r in results]
            print(f"{key}: median {statistics.median(vals):.3f} s, worst {max(vals):.3f} s")
        free = await down_round(c)
        print(f"head a killed and left down: its client's lock free on head b after "
              f"t_free {free:.3f} s")


KEYS = ("t_grace", "t_enforce", "t_reset", "t_serve", "t_reclaim", "t_lift")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--dir", default="")
    a = ap.parse_args()
    base = Path(a.dir or tempfile.mkdtemp(prefix="nfs-bench-"))
    cluster = Cluster(base / "cluster")
    try:
        cluster.vstart("--mds", "1", "--nfs", "2")
        trio.run(main, cluster, a.rounds, a.clients)
    finally:
        cluster.destroy()
