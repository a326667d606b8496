"""Metadata operations per second through the filesystem client, beside the raw loopback
round-trip rate of this machine measured in the same run. Real processes (mon, osd, one MDS),
fast profile. Prints figures, asserts nothing.

    .venv/bin/python bench/client_ops.py [--clients 1,32] [--seconds 5] [--profile FILE]

Baseline, measured just before each row: one trio task sends a msgpack frame the size of a create request to an echo server
in another process (trio, the same framing) and waits for the echo, over and over: the
round trips per second that two Python processes on this machine manage with nothing else in
the way. Then for each client count N: N FSClients (one process, each with its own monitor
and MDS sessions) each create files in their own directory, one after the other, for the
given seconds, then sync (every safe reply in); the rate counts until the sync ends. Then the
same clients stat those files. Last, in the same run, creates that each wait for their safe
reply (a sync after each, as the client did before it returned on the unsafe reply). Targets (issue 14): one client >= 25 % of the loopback rate,
32 clients >= 50 %. `--profile FILE` writes a pyinstrument profile of this process's side.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from client.fsclient import FSClient  # noqa: E402
from client.localcluster import Cluster  # noqa: E402
from common import log as logsetup  # noqa: E402
from common import wire  # noqa: E402

ECHO_SERVER = r"""
import sys, trio
sys.path.insert(0, sys.argv[1])
from common import wire

async def echo(stream):
    dec = wire.FrameDecoder()
    while True:
        data = await stream.receive_some(65536)
        if not data:
            return
        dec.feed(data)
        while (msg := dec.next()) is not None:
            await stream.send_all(wire.encode({"type": "client_reply", "tid": msg["tid"],
                                               "rc": 0, "result": {}, "safe": True}))

async def main():
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    print(listeners[0].socket.getsockname()[1], flush=True)
    await trio.serve_listeners(echo, listeners)

trio.run(main)
"""


async def loopback(port: int, seconds: float) -> float:
    """Sequential request/reply round trips per second to the echo server."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    dec = wire.FrameDecoder()
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        await stream.send_all(wire.encode({
            "type": "client_request", "tid": n, "op": "create", "retry": 0, "replay": False,
            "oldest_tid": n, "args": {"path": f"/bench/c0/f{n}", "mode": 0o644}}))
        while dec.next() is None:
            dec.feed(await stream.receive_some(65536))
        n += 1
    rate = n / (time.perf_counter() - t0)
    await stream.aclose()
    return rate


def baseline(seconds: float) -> float:
    proc = subprocess.Popen([sys.executable, "-c", ECHO_SERVER,
                             str(Path(__file__).resolve().parents[1])],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        return trio.run(loopback, port, seconds)
    finally:
        proc.kill()
        proc.wait()


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_now(pids: dict[str, int]) -> dict[str, float]:
    return dict({name: proc_cpu(pid) for name, pid in pids.items()}, client=time.process_time())


async def client_ops(mon_host: str, clients: int, seconds: float, run: int,
                     pids: dict[str, int], safe: bool = False,
                     auth=None) -> tuple[float, float, dict, dict]:
    """(creates/s, stats/s, CPU µs per create and per stat by process) of `clients`
    sequential clients together; with `safe` each create waits for its safe reply (a sync
    after each: what the client did before it returned on the unsafe one)."""
    counts = [0] * clients
    done = [0.0, 0.0]
    cpu: list[dict[str, float]] = []

    async def one(k: int, fs: FSClient, start: trio.Event, phase: list) -> None:
        d = f"/bench{run}/c{k}"
        await fs.mkdir(d)
        await fs.sync()
        ready.release()
        await start.wait()
        end = trio.current_time() + seconds
        n = 0
        while trio.current_time() < end:
            await fs.create(f"{d}/f{n}")
            if safe:
                await fs.sync()
            n += 1
        await fs.sync()
        counts[k] = n
        phase[0] -= 1
        if not phase[0]:
            done[0] = time.perf_counter()
            cpu.append(cpu_now(pids))
        await stat_start.wait()
        end = trio.current_time() + seconds
        i = 0
        while trio.current_time() < end:
            await fs.stat(f"{d}/f{i % n}")
            i += 1
        counts[k] = i
        phase[1] -= 1
        if not phase[1]:
            done[1] = time.perf_counter()
            cpu.append(cpu_now(pids))

    ready = trio.Semaphore(0)
    start, stat_start = trio.Event(), trio.Event()
    phase = [clients, clients]
    async with FSClient.open(mon_host, fs_name="cephfs", timeout=60, auth=auth) as admin:
        await admin.mkdir(f"/bench{run}")
    async with trio.open_nursery() as nursery:
        async def worker(k: int) -> None:
            async with FSClient.open(mon_host, fs_name="cephfs", timeout=60, auth=auth) as fs:
                await one(k, fs, start, phase)

        for k in range(clients):
            nursery.start_soon(worker, k)
        for _ in range(clients):
            await ready.acquire()
        t0 = time.perf_counter()
        cpu.append(cpu_now(pids))
        start.set()
        while phase[0]:
            await trio.sleep(0.05)
        ncreates = sum(counts)
        creates = ncreates / (done[0] - t0)
        t1 = time.perf_counter()
        cpu.append(cpu_now(pids))
        stat_start.set()
        while phase[1]:
            await trio.sleep(0.05)
        stats = sum(counts) / (done[1] - t1)
    per_create = {k: 1e6 * (cpu[1][k] - cpu[0][k]) / ncreates for k in cpu[0]}
    per_stat = {k: 1e6 * (cpu[3][k] - cpu[2][k]) / sum(counts) for k in cpu[0]}
    return creates, stats, per_create, per_stat


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", default="1,32")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--profile", default="", help="write a pyinstrument profile (HTML) here")
    ap.add_argument("--cephx", action=argparse.BooleanOptionalAction, default=False,
                    help="cephx (signed frames) as vstart runs; default auth none, "
                         "comparable with earlier runs")
    a = ap.parse_args()
    logsetup.setup(level="warning")
    print(f"loopback: raw trio+msgpack round trips, one at a time, measured just before each "
          f"row; cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}; auth "
          f"{'cephx' if a.cephx else 'none'}", flush=True)
    print(f"{'clients':>7} {'loopback/s':>10} {'creates/s':>10} {'% loopback':>10} "
          f"{'stats/s':>10} {'% loopback':>10} {'safe creates/s':>14} {'% loopback':>10}")
    profiler = None
    if a.profile:
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="disabled")
        profiler.start()
    with tempfile.TemporaryDirectory(prefix="mdsemu-bench-") as tmp:
        c = Cluster(Path(tmp) / "c", profile="fast", cephx=a.cephx)
        try:
            c.start(("a",))
            mon_host = f"127.0.0.1:{c.port}"
            pids = {"mds": c.pid_of("a"), "osd": c.pid_of("osd.0"), "mon": c.pid_of("mon.a")}
            cpus = []
            for run, n in enumerate(int(x) for x in a.clients.split(",")):
                base = baseline(a.seconds)
                creates, stats, per_create, per_stat = trio.run(
                    client_ops, mon_host, n, a.seconds, 2 * run, pids, False, c.auth_key())
                safe, _, _, _ = trio.run(client_ops, mon_host, n, a.seconds, 2 * run + 1, pids,
                                         True, c.auth_key())
                cpus.append((n, per_create, per_stat))
                print(f"{n:>7} {base:>10,.0f} {creates:>10,.0f} {100 * creates / base:>9.0f}% "
                      f"{stats:>10,.0f} {100 * stats / base:>9.0f}% {safe:>14,.0f} "
                      f"{100 * safe / base:>9.0f}%", flush=True)
            print("CPU µs per operation (client process, mds, osd, mon):")
            for n, per_create, per_stat in cpus:
                for what, per in (("create", per_create), ("stat", per_stat)):
                    print(f"  {n:>3} clients, {what:<6} " + ", ".join(
                        f"{k} {v:,.0f}" for k, v in per.items()))
        finally:
            c.destroy()
    if profiler is not None:
        profiler.stop()
        Path(a.profile).write_text(profiler.output_html())
        print(profiler.output_text(unicode=False, color=False, show_all=False)[:6000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
