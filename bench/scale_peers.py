"""The monitor's peers in bench/mon_scale.py, each kind in processes of its own (issue 14).

    python bench/scale_peers.py --fleet PORT:FIRST:COUNT     (fake MDS daemons)
    python bench/scale_peers.py --subscribers PORT:K:WHAT    (map subscribers)

A fleet worker holds COUNT fake daemons (raw protocol: hello, boot beacon, `mdsmap`
subscription, then a standby beacon every second), at nice FLEET_NICE; the bench talks to it
over stdin/stdout (`Workers`). A subscribers process holds K subscribers of WHAT and reports
when each new epoch reaches them. Keeping both out of the bench's own process means a busy
fleet cannot starve the bench's command connection (at 3,000 daemons in one process the
monitor cut it as a stuck peer).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import messages as m  # noqa: E402
from common import states, wire  # noqa: E402
from common.net import HandshakeError, connect  # noqa: E402

# The fake daemons stand for daemons on other hosts: on this 2-core machine they yield the CPU
# to the monitor and to the processes that measure it, rather than share it equally.
FLEET_NICE = 10


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


def fleet_main(port: int, first: int, count: int) -> None:
    """A worker process: fake daemons first .. first+count-1. Prints "ready", waits for "go"
    on stdin, then prints "booted <perf_counter>" once all of them are in the map, and answers
    each "stats" line with "stats <json>" (booted, beacons sent, hellos retried)."""
    os.nice(FLEET_NICE)
    trio.run(_fleet, port, first, count)


async def _fleet(port: int, first: int, count: int) -> None:
    fleet = Fleet(count)
    commands = lines(trio.lowlevel.FdStream(os.dup(sys.stdin.fileno())))
    print("ready", flush=True)
    if await commands.__anext__() != "go":
        return

    async def report_boot() -> None:
        await fleet.all_booted.wait()
        print(f"booted {time.perf_counter()!r}", flush=True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(report_boot)
        for i in range(first, first + count):
            nursery.start_soon(fake_mds, "127.0.0.1", port, i, fleet)
            if i % 50 == 49:
                await trio.sleep(0)
        async for line in commands:
            if line == "stats":
                print("stats " + json.dumps({"booted": fleet.booted, "beacons": fleet.beacons,
                                             "retries": fleet.retries}), flush=True)
            else:
                break
        nursery.cancel_scope.cancel()


class Workers:
    """The worker processes holding the fake daemons, seen from this process."""

    def __init__(self) -> None:
        self.procs: list[trio.Process] = []
        self.booted_at: list[float] = []
        self._stats: trio.MemorySendChannel | None = None
        self._stats_in: trio.MemoryReceiveChannel | None = None

    async def start(self, nursery: trio.Nursery, port: int, n: int, w: int) -> None:
        self._stats, self._stats_in = trio.open_memory_channel(w)
        ready = trio.Semaphore(0)
        for k in range(w):
            first, last = n * k // w, n * (k + 1) // w
            proc = await trio.lowlevel.open_process(
                [sys.executable, __file__, "--fleet", f"{port}:{first}:{last - first}"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            self.procs.append(proc)
            nursery.start_soon(self._read, proc, ready)
        for _ in range(w):
            await ready.acquire()

    async def _read(self, proc: trio.Process, ready: trio.Semaphore) -> None:
        async for line in lines(proc.stdout):
            if line == "ready":
                ready.release()
            elif line.startswith("booted "):
                self.booted_at.append(float(line.split()[1]))
            elif line.startswith("stats "):
                await self._stats.send(json.loads(line[len("stats "):]))

    async def tell(self, word: str) -> None:
        for proc in self.procs:
            await proc.stdin.send_all(word.encode() + b"\n")

    async def stats(self) -> dict:
        """Booted, beacons and retries summed over the workers."""
        await self.tell("stats")
        total = {"booted": 0, "beacons": 0, "retries": 0}
        for _ in self.procs:
            for key, v in (await self._stats_in.receive()).items():
                total[key] += v
        return total

    async def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            await proc.wait()


def subscribers_main(port: int, k: int, what: str) -> None:
    """A child process of `epoch_reach`: k subscribers; prints "ready" once each has its
    first map, then, for each target epoch read on stdin, prints "armed" once it waits for
    it, then the perf_counters at which
    the first and the last of them received it (CLOCK_MONOTONIC: comparable with the
    parent's) and the CPU seconds it spent reading. Plain sockets and one selector, so that
    what is measured is the monitor's delivery rather than this process waking a thousand
    tasks."""
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
        s.setblocking(False)
    print("ready", flush=True)
    sel = selectors.DefaultSelector()
    for line in sys.stdin:
        target = int(line)
        for s, dec in socks:
            sel.register(s, selectors.EVENT_READ, dec)
        print("armed", flush=True)
        # Every subscriber is sent the same bytes (the monitor encodes an epoch once): once
        # one frame is known to carry the target epoch, the others are compared, not
        # decoded, so one process reading for a thousand subscribers adds as little as it can.
        remaining, first, last, known = k, 0.0, 0.0, None
        cpu0 = time.process_time()
        while remaining:
            for key, _ in sel.select():
                dec = key.data
                dec.feed(key.fileobj.recv(1 << 16))
                while (body := dec.next_raw()) is not None:
                    if body != known:
                        msg = wire.decode_body(body)
                        got = (msg.get("mdsmap") or msg.get("fsmap") or {}).get("epoch", 0)
                        if got < target:
                            continue
                        known = body
                    last = time.perf_counter()
                    first = first or last
                    remaining -= 1
                    sel.unregister(key.fileobj)
                    break
        print(f"{first!r} {last!r} {time.process_time() - cpu0!r}", flush=True)
    for s, _ in socks:
        s.close()


def _next_frame(s: socket.socket, dec: wire.FrameDecoder) -> dict:
    while (msg := dec.next()) is None:
        data = s.recv(1 << 16)
        if not data:
            raise ConnectionError("closed by the monitor")
        dec.feed(data)
    return msg


async def lines(stream):
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        yield line.decode().strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fleet", default="", help="PORT:FIRST:COUNT")
    ap.add_argument("--subscribers", default="", help="PORT:K:WHAT")
    args = ap.parse_args()
    if args.fleet:
        fleet_main(*(int(x) for x in args.fleet.split(":")))
    elif args.subscribers:
        port, k, what = args.subscribers.split(":")
        subscribers_main(int(port), int(k), what)


if __name__ == "__main__":
    main()
