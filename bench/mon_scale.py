"""One monitor and N fake MDS daemons (issue 14 item 7). Prints figures, asserts nothing.

    .venv/bin/python bench/mon_scale.py [--n 100,300,1000,3000] [--workers W]
                                        [--rounds R] [--slow] [--dir DIR]

For each N, a fresh monitor (fast profile, its own process) and N raw protocol clients that
say hello, send a boot beacon, subscribe to `mdsmap` as Ceph's MDS does and then beacon every
second (state standby; the file system `cephfs` is not joinable, so they stay standbys). The
fake daemons are shared out among W worker processes (by default one per 500 daemons, at
most 3, at nice 10: they stand for daemons on other hosts; bench/scale_peers.py); this
process only observes and sends the commands, so a worker too busy to read cannot get the
bench's own command connection cut. Figures:
  boot      time until every daemon's boot beacon is acknowledged (it is in the map), the
            FSMap epochs committed meanwhile and the monitor's CPU seconds;
  cpu       the monitor's CPU (user + system, /proc) over 10 s while all of them beacon;
  epoch     time for one new epoch (`fs set cephfs session_timeout`) to reach N client
            subscribers of `mdsmap.<fscid>`, and 10 subscribers of the whole `fsmap` (the
            subscribers run in processes of their own, two from 1,000 on, apart from the
            fake daemons): the median of --rounds epochs and their range, with the median
            time to the command's reply (the monitor replies once it has committed the map
            and written it to every subscriber's socket) and to the first subscriber's
            receipt; and, from the kernel's schedstat over each epoch, where its time went
            (the monitor's CPU and its wait for a CPU, the subscribers' likewise);
  rss       the monitor's resident memory then.
With --slow, the slow-subscriber run: 1,000 epochs committed with no stuck subscriber (the
baseline), then 1,000 more with 100 subscribers of `fsmap` that never read (ms_send_timeout
raised so they stay connected: what is measured is the coalescing); monitor RSS before and
after each.

Baseline, measured in the same run: the median round trip of one monitor command over an open
connection, raw trio+msgpack round trips per second on loopback, and for each N the time this
process takes to write one 1 KB frame to N loopback TCP sockets (the floor of writing a map to
N subscribers: one system call each).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import scale_peers  # noqa: E402
from client.admin import AdminClient  # noqa: E402
from client.localcluster import Cluster  # noqa: E402
from common import messages as m  # noqa: E402
from common.net import Connection, connect  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
PHASE_TIMEOUT = 180.0


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def schedstat(pid: int) -> tuple[float, float]:
    """Seconds a process's threads have run and waited on a run queue (/proc schedstat)."""
    ran = waited = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "schedstat").read_text().split()
        except OSError:
            continue  # the thread ended
        ran, waited = ran + int(fields[0]) / 1e9, waited + int(fields[1]) / 1e9
    return ran, waited


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def epoch_reach(admin: AdminClient, port: int, k: int, what: str, rounds: int,
                      value0: int, procs: int = 1, mon_pid: int = 0) -> list[dict]:
    """`rounds` times, one new epoch (`fs set cephfs session_timeout`): seconds from the
    command until all k subscribers have it ("last"), until its reply ("reply": the monitor
    replies once the map is committed and written to every subscriber's socket) and until
    the first subscriber has it ("first"); "cpu": the subscribers' CPU seconds reading it.
    Where the time went, from the kernel's schedstat over the same window: the monitor's
    CPU ("mon_ran") and its time waiting for a CPU ("mon_waited"), and the subscriber
    processes' wait for a CPU ("subs_waited", the longest of them).
    The subscribers stay connected from round to round, in `procs` processes of their own
    (so the fake daemons' CPU does not slow them; several, as real subscribers would read in
    parallel). An empty list if they could not be set up in time."""
    children, out = [], []
    try:
        with trio.move_on_after(PHASE_TIMEOUT):
            for j in range(procs):
                share = k * (j + 1) // procs - k * j // procs
                proc = await trio.lowlevel.open_process(
                    [sys.executable, scale_peers.__file__, "--subscribers",
                     f"{port}:{share}:{what}"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                children.append((proc, scale_peers.lines(proc.stdout)))
            for _, lines in children:
                assert await lines.__anext__() == "ready"
            for r in range(rounds):
                target = await fsmap_epoch(admin) + 1
                for proc, lines in children:
                    await proc.stdin.send_all(b"%d\n" % target)
                    assert await lines.__anext__() == "armed"
                mon0 = schedstat(mon_pid) if mon_pid else (0.0, 0.0)
                subs0 = [schedstat(proc.pid) for proc, _ in children]
                t0 = time.perf_counter()
                rc, outs, _ = await admin.command(
                    ["fs", "set", "cephfs", "session_timeout", str(value0 + r)])
                assert rc == 0, outs
                reply = time.perf_counter() - t0
                got = [[float(x) for x in (await lines.__anext__()).split()]
                       for _, lines in children]
                mon1 = schedstat(mon_pid) if mon_pid else (0.0, 0.0)
                subs1 = [schedstat(proc.pid) for proc, _ in children]
                out.append({"last": max(g[1] for g in got) - t0, "reply": reply,
                            "first": min(g[0] for g in got) - t0,
                            "cpu": sum(g[2] for g in got),
                            "mon_ran": mon1[0] - mon0[0], "mon_waited": mon1[1] - mon0[1],
                            "subs_waited": max(b[1] - a[1] for a, b in zip(subs0, subs1, strict=True))})
                await trio.sleep(0.5)
    finally:
        for proc, _ in children:
            proc.kill()
            await proc.wait()
    return out


def write_floor(n: int, size: int = 1024, rounds: int = 5) -> float:
    """Seconds to write one `size`-byte frame to each of n connected loopback TCP sockets
    (median of `rounds`); the readers drain between rounds."""
    srv = socket.create_server(("127.0.0.1", 0), backlog=n)
    pairs = []
    try:
        for _ in range(n):
            c = socket.create_connection(srv.getsockname())
            pairs.append((c, srv.accept()[0]))
        data, times = b"x" * size, []
        for _ in range(rounds):
            t = time.perf_counter()
            for _, s in pairs:
                os.write(s.fileno(), data)
            times.append(time.perf_counter() - t)
            for c, _ in pairs:
                c.recv(1 << 16)
        return statistics.median(times)
    finally:
        for c, s in pairs:
            c.close()
            s.close()
        srv.close()


async def fsmap_epoch(admin: AdminClient) -> int:
    return json.loads((await admin.command(["fs", "dump"], "json"))[2])["epoch"]


async def baseline_rtt(admin: AdminClient, n: int = 200) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        await admin.command(["mds", "stat"])
        times.append(time.perf_counter() - t)
    return statistics.median(times)


async def loopback_rate(seconds: float = 1.0) -> float:
    """Raw trio+msgpack round trips per second on loopback (no monitor)."""
    async def echo(stream):
        conn = Connection(stream)
        while True:
            await conn.send(await conn.recv())

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, echo, 0)
        port = listeners[0].socket.getsockname()[1]
        conn = Connection(await trio.open_tcp_stream("127.0.0.1", port))
        n, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            await conn.send(m.Subscribe(what=["x"]))
            await conn.recv()
            n += 1
        nursery.cancel_scope.cancel()
    return n / seconds


async def scale_run(c: Cluster, n: int, w: int, rounds: int) -> dict:
    host, port, pid = "127.0.0.1", c.port, c.mon.pid
    out: dict = {"n": n}
    async with AdminClient.open(f"{host}:{port}") as admin:
        for words in (["osd", "pool", "create", "meta"], ["osd", "pool", "create", "data"],
                      ["fs", "new", "cephfs", "meta", "data"],
                      ["fs", "set", "cephfs", "joinable", "false"]):
            rc, outs, _ = await admin.command(words)
            assert rc == 0, (words, outs)
        out["rss0"] = rss_mb(pid)
        epoch0 = await fsmap_epoch(admin)
        workers = scale_peers.Workers()
        async with trio.open_nursery() as nursery:
            await workers.start(nursery, port, n, w)
            t0, cpu_boot = time.perf_counter(), cpu_seconds(pid)
            await workers.tell("go")
            with trio.move_on_after(PHASE_TIMEOUT):
                while len(workers.booted_at) < w:
                    await trio.sleep(0.05)
            all_booted = len(workers.booted_at) == w
            out["boot"] = max(workers.booted_at) - t0 if all_booted else None
            out["boot_cpu"] = cpu_seconds(pid) - cpu_boot
            out["boot_epochs"] = await fsmap_epoch(admin) - epoch0
            st = await workers.stats()
            out["booted"], out["retries"] = st["booted"], st["retries"]
            await trio.sleep(2.0)  # every daemon beaconing
            cpu0, b0, w0 = cpu_seconds(pid), (await workers.stats())["beacons"], \
                time.perf_counter()
            await trio.sleep(10.0)
            b1 = (await workers.stats())["beacons"]
            wall = time.perf_counter() - w0
            out["cpu"] = (cpu_seconds(pid) - cpu0) / wall
            out["beacons_s"] = (b1 - b0) / wall
            out["epoch_mdsmap"] = await epoch_reach(admin, port, n, "mdsmap.1", rounds, 100,
                                                    procs=2 if n >= 1000 else 1, mon_pid=pid)
            out["epoch_fsmap10"] = await epoch_reach(admin, port, 10, "fsmap", rounds, 200,
                                                     mon_pid=pid)
            out["rss"] = rss_mb(pid)
            await workers.stop()
            nursery.cancel_scope.cancel()
    return out


async def slow_run(c: Cluster) -> dict:
    pid = c.mon.pid
    out: dict = {}
    toggle = ["fs", "flag", "set", "enable_multiple", "true", "--yes-i-really-mean-it"]
    async with AdminClient.open(f"127.0.0.1:{c.port}") as admin:
        await admin.command(toggle)
        for i in range(40):
            await admin.command(["osd", "pool", "create", f"p{i}"])
        for i in range(20):
            await admin.command(["fs", "new", f"fs{i}", f"p{2 * i}", f"p{2 * i + 1}"])
        out["map_bytes"] = len((await admin.command(["fs", "dump"], "json"))[2])
        out["rss0"] = rss_mb(pid)
        for _ in range(1000):
            await admin.command(toggle)
        out["rss_base"] = rss_mb(pid)
        stuck = []
        for i in range(100):
            conn, _ = await connect("127.0.0.1", c.port, f"client.stuck{i}")
            await conn.send(m.Subscribe(what=["fsmap"]))
            stuck.append(conn)  # never read from again
        await trio.sleep(0.5)
        out["rss1"] = rss_mb(pid)
        t0 = time.perf_counter()
        for _ in range(1000):
            await admin.command(toggle)
        out["epochs_s"] = 1000 / (time.perf_counter() - t0)
        out["rss2"] = rss_mb(pid)
        for conn in stuck:
            await conn.aclose()
    return out


def fmt(v, unit: str = "", scale: float = 1.0, digits: int = 2) -> str:
    return "—" if v is None else f"{v * scale:.{digits}f}{unit}"


def fmt_reach(rounds: list[dict]) -> str:
    """The median of "last" (its range), then the medians of "reply" and "first", in ms."""
    if not rounds:
        return "—"
    med = {key: statistics.median(r[key] for r in rounds) * 1000 for key in rounds[0]}
    lasts = sorted(r["last"] * 1000 for r in rounds)
    return (f"{med['last']:.0f} ms ({lasts[0]:.0f}–{lasts[-1]:.0f}; {med['reply']:.0f} / "
            f"{med['first']:.0f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="100,300,1000,3000")
    ap.add_argument("--slow", action="store_true", help="the slow-subscriber run too")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes holding the fake daemons (default: 1 per 1,000, at most 3)")
    ap.add_argument("--rounds", type=int, default=5, help="new epochs timed per N")
    ap.add_argument("--dir", default="")
    args = ap.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="mon_scale."))
    loop = trio.run(loopback_rate)
    print(f"baseline: raw trio+msgpack loopback {loop:,.0f} round trips/s", flush=True)
    print("| daemons | booted | boot | epochs (mon CPU s) in the boot | mon CPU (1 s beacons) "
          "| beacons/s | epoch → N mdsmap subs: median (range; reply / first) | epoch → 10 "
          "fsmap subs | mon RSS | cmd RTT | N loopback writes | hellos retried | workers |",
          flush=True)
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    where: list[tuple[int, list[dict]]] = []
    for n in [int(x) for x in args.n.split(",")]:
        c = Cluster(base / f"n{n}", conf={"mon": {"log_level": "warning"}},
                    cephx=False)  # auth none: comparable with earlier runs
        try:
            c.start_mon()
            w = args.workers or min(3, max(1, -(-n // 500)))
            r = trio.run(scale_run, c, n, w, args.rounds)
            rtt = trio.run(_rtt, c)
            floor = write_floor(n)
        finally:
            c.destroy()
        print(f"| {n:,} | {r['booted']:,} | {fmt(r['boot'], ' s')} | {r['boot_epochs']:,} "
              f"({r['boot_cpu']:.2f} s) | {r['cpu'] * 100:.1f} % | "
              f"{r['beacons_s']:,.0f} | {fmt_reach(r['epoch_mdsmap'])} | "
              f"{fmt_reach(r['epoch_fsmap10'])} | {r['rss']:.0f} MB | "
              f"{rtt * 1000:.2f} ms | {floor * 1000:.1f} ms | {r['retries']} | {w} |",
              flush=True)
        where.append((n, r["epoch_mdsmap"]))
    print("\nwhere an epoch's time to N subscribers went, medians in ms: the monitor's CPU, its "
          "wait for a CPU, the subscribers' reading CPU and their wait for a CPU (schedstat)")
    for n, rounds in where:
        if rounds:
            med = {key: statistics.median(r[key] for r in rounds) * 1000 for key in rounds[0]}
            print(f"  N = {n:,}: last {med['last']:.0f}; monitor ran {med['mon_ran']:.0f}, "
                  f"waited {med['mon_waited']:.0f}; subscribers ran {med['cpu']:.0f}, "
                  f"waited {med['subs_waited']:.0f}", flush=True)
    if args.slow:
        c = Cluster(base / "slow", conf={"mon": {"ms_send_timeout": "600",
                                                 "log_level": "warning"}}, cephx=False)
        try:
            c.start_mon()
            r = trio.run(slow_run, c)
        finally:
            c.destroy()
        print(f"slow subscribers: FSMap of {r['map_bytes']:,} bytes (JSON); RSS {r['rss0']:.1f}"
              f" MB; after 1,000 epochs, no stuck subscriber (baseline) {r['rss_base']:.1f} MB; "
              f"100 stuck subscribers {r['rss1']:.1f} MB; after 1,000 more epochs "
              f"({r['epochs_s']:,.0f}/s) {r['rss2']:.1f} MB: grew {r['rss2'] - r['rss1']:.1f} MB",
              flush=True)


async def _rtt(c: Cluster) -> float:
    # a monitor saturated by 3,000 daemons can take a while to answer a new connection
    async with AdminClient.open(f"127.0.0.1:{c.port}", timeout=120) as admin:
        return await baseline_rtt(admin)


if __name__ == "__main__":
    main()
