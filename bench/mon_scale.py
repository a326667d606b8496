"""One monitor and N fake MDS daemons (issue 14 item 7). Prints figures, asserts nothing.

    .venv/bin/python bench/mon_scale.py [--n 100,300,1000,3000] [--slow] [--dir DIR]

For each N, a fresh monitor (fast profile, its own process) and, in this process, N raw
protocol clients that say hello, send a boot beacon, subscribe to `mdsmap` as Ceph's MDS does
and then beacon every second (state standby; the file system `cephfs` is not joinable, so
they stay standbys). Figures:
  boot      time until every daemon's boot beacon is acknowledged (it is in the map), the
            FSMap epochs committed meanwhile and the monitor's CPU seconds;
  cpu       the monitor's CPU (user + system, /proc) over 10 s while all of them beacon;
  epoch     time for one new epoch (`fs set cephfs session_timeout`) to reach N client
            subscribers of `mdsmap.<fscid>`, and 10 subscribers of the whole `fsmap` (the
            subscribers run in a process of their own, apart from the fake daemons);
  rss       the monitor's resident memory then.
With --slow, the slow-subscriber run: 1,000 epochs committed with no stuck subscriber (the
baseline), then 1,000 more with 100 subscribers of `fsmap` that never read (ms_send_timeout
raised so they stay connected: what is measured is the coalescing); monitor RSS before and
after each.

Baseline, measured in the same run: the median round trip of one monitor command over an open
connection, and raw trio+msgpack round trips per second on loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from client.admin import AdminClient  # noqa: E402
from client.localcluster import Cluster  # noqa: E402
from common import messages as m  # noqa: E402
from common import states, wire  # noqa: E402
from common.net import Connection, HandshakeError, connect  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
PHASE_TIMEOUT = 180.0


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Fleet:
    def __init__(self, n: int) -> None:
        self.n = n
        self.booted = 0
        self.all_booted = trio.Event()
        self.beacons = 0
        self.retries = 0  # handshakes the monitor dropped (its hello timeout, under load)


async def fake_mds(host: str, port: int, i: int, fleet: Fleet) -> None:
    while True:  # as an MDS does, try again when a busy monitor drops the handshake
        try:
            conn, ok = await connect(host, port, f"mds.f{i}")
            break
        except (HandshakeError, OSError):
            fleet.retries += 1
            await trio.sleep(1.0)
    gid, name, addr = ok.global_id, f"f{i}", f"127.0.0.1:{10000 + i}/{i}"
    epoch, seq = 0, 1
    await conn.send(m.Beacon(global_id=gid, name=name, state=states.BOOT, seq=seq, version=0,
                             addr=addr))
    await conn.send(m.Subscribe(what=["mdsmap"]))

    async def beacons() -> None:
        nonlocal seq
        await trio.sleep(random.random())
        while True:
            seq += 1
            await conn.send(m.Beacon(global_id=gid, name=name, state=states.STANDBY, seq=seq,
                                     version=epoch, addr=addr))
            fleet.beacons += 1
            await trio.sleep(1.0)

    async with trio.open_nursery() as nursery:
        booted = False
        while True:
            msg = await conn.recv()
            if isinstance(msg, m.BeaconAck) and not booted:
                booted = True
                fleet.booted += 1
                if fleet.booted == fleet.n:
                    fleet.all_booted.set()
                nursery.start_soon(beacons)
            elif isinstance(msg, m.MDSMapMsg):
                epoch = msg.mdsmap["epoch"]


def subscribers_main(port: int, k: int, what: str) -> None:
    """The child process of `epoch_reach`: k subscribers; prints "ready" once each has its
    first map, then reads a target epoch on stdin and prints the perf_counter at which the
    last of them received it (CLOCK_MONOTONIC: comparable with the parent's). Plain sockets
    and one selector, so that what is measured is the monitor's delivery rather than this
    process waking a thousand tasks."""
    socks = []
    for i in range(k):
        s = socket.create_connection(("127.0.0.1", port))
        dec = wire.FrameDecoder()
        s.sendall(wire.encode(m.encode(m.Hello(entity=f"client.sub{i}"))))
        _next_frame(s, dec)  # hello_ok
        s.sendall(wire.encode(m.encode(m.Subscribe(what=[what]))))
        socks.append((s, dec))
    for s, dec in socks:
        _next_frame(s, dec)  # the first map
    print("ready", flush=True)
    target = int(sys.stdin.readline())
    sel = selectors.DefaultSelector()
    for s, dec in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, dec)
    remaining, last = k, 0.0
    while remaining:
        for key, _ in sel.select():
            dec = key.data
            dec.feed(key.fileobj.recv(1 << 16))
            while (msg := dec.next()) is not None:
                body = msg.get("mdsmap") or msg.get("fsmap") or {}
                if body.get("epoch", 0) >= target:
                    last = time.perf_counter()
                    remaining -= 1
                    sel.unregister(key.fileobj)
                    break
    print(repr(last), flush=True)
    for s, _ in socks:
        s.close()


def _next_frame(s: socket.socket, dec: wire.FrameDecoder) -> dict:
    while (msg := dec.next()) is None:
        data = s.recv(1 << 16)
        if not data:
            raise ConnectionError("closed by the monitor")
        dec.feed(data)
    return msg


async def epoch_reach(admin: AdminClient, port: int, k: int, what: str,
                      value: int) -> float | None:
    """Seconds from the command that commits a new epoch until all k subscribers (in their
    own process, so the fake daemons' CPU does not slow them) have it."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, __file__, "--subscribers", f"{port}:{k}:{what}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    lines = _lines(proc.stdout)
    try:
        with trio.move_on_after(PHASE_TIMEOUT):
            assert await lines.__anext__() == "ready"
            _, _, dump = await admin.command(["fs", "dump"], "json")
            await proc.stdin.send_all(b"%d\n" % (json.loads(dump)["epoch"] + 1))
            t0 = time.perf_counter()
            await admin.command(["fs", "set", "cephfs", "session_timeout", str(value)])
            return float(await lines.__anext__()) - t0
        return None
    finally:
        proc.kill()
        await proc.wait()


async def _lines(stream):
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        yield line.decode().strip()


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


async def scale_run(c: Cluster, n: int) -> dict:
    host, port, pid = "127.0.0.1", c.port, c.mon.pid
    out: dict = {"n": n}
    async with AdminClient.open(f"{host}:{port}") as admin:
        for words in (["osd", "pool", "create", "meta"], ["osd", "pool", "create", "data"],
                      ["fs", "new", "cephfs", "meta", "data"],
                      ["fs", "set", "cephfs", "joinable", "false"]):
            rc, outs, _ = await admin.command(words)
            assert rc == 0, (words, outs)
        out["rss0"] = rss_mb(pid)
        fleet = Fleet(n)
        epoch0 = await fsmap_epoch(admin)
        async with trio.open_nursery() as nursery:
            t0, cpu_boot = time.perf_counter(), cpu_seconds(pid)
            for i in range(n):
                nursery.start_soon(fake_mds, host, port, i, fleet)
                if i % 50 == 49:
                    await trio.sleep(0)
            with trio.move_on_after(PHASE_TIMEOUT):
                await fleet.all_booted.wait()
            out["boot"] = time.perf_counter() - t0 if fleet.all_booted.is_set() else None
            out["boot_cpu"] = cpu_seconds(pid) - cpu_boot
            out["boot_epochs"] = await fsmap_epoch(admin) - epoch0
            out["booted"] = fleet.booted
            out["retries"] = fleet.retries
            await trio.sleep(2.0)  # every daemon beaconing
            cpu0, b0, w0 = cpu_seconds(pid), fleet.beacons, time.perf_counter()
            await trio.sleep(10.0)
            wall = time.perf_counter() - w0
            out["cpu"] = (cpu_seconds(pid) - cpu0) / wall
            out["beacons_s"] = (fleet.beacons - b0) / wall
            out["epoch_mdsmap"] = await epoch_reach(admin, port, n, "mdsmap.1", 61)
            out["epoch_fsmap10"] = await epoch_reach(admin, port, 10, "fsmap", 62)
            out["rss"] = rss_mb(pid)
            nursery.cancel_scope.cancel()
    return out


def _raw_stuck(port: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    return s


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="100,300,1000,3000")
    ap.add_argument("--slow", action="store_true", help="the slow-subscriber run too")
    ap.add_argument("--dir", default="")
    ap.add_argument("--subscribers", default="", help=argparse.SUPPRESS)  # PORT:K:WHAT
    args = ap.parse_args()
    if args.subscribers:
        port, k, what = args.subscribers.split(":")
        subscribers_main(int(port), int(k), what)
        return
    base = Path(args.dir or tempfile.mkdtemp(prefix="mon_scale."))
    loop = trio.run(loopback_rate)
    print(f"baseline: raw trio+msgpack loopback {loop:,.0f} round trips/s", flush=True)
    print("| daemons | booted | boot | epochs (mon CPU s) in the boot | mon CPU (1 s beacons) "
          "| beacons/s | epoch → N mdsmap subs | epoch → 10 fsmap subs | mon RSS | cmd RTT "
          "| hellos retried |", flush=True)
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for n in [int(x) for x in args.n.split(",")]:
        c = Cluster(base / f"n{n}", conf={"mon": {"log_level": "warning"}},
                    cephx=False)  # auth none: comparable with earlier runs
        try:
            c.start_mon()
            r = trio.run(scale_run, c, n)
            rtt = trio.run(_rtt, c)
        finally:
            c.destroy()
        print(f"| {n:,} | {r['booted']:,} | {fmt(r['boot'], ' s')} | {r['boot_epochs']:,} "
              f"({r['boot_cpu']:.2f} s) | {r['cpu'] * 100:.1f} % | "
              f"{r['beacons_s']:,.0f} | {fmt(r['epoch_mdsmap'], ' ms', 1000, 0)} | "
              f"{fmt(r['epoch_fsmap10'], ' ms', 1000, 0)} | {r['rss']:.0f} MB | "
              f"{rtt * 1000:.2f} ms | {r['retries']} |", flush=True)
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
