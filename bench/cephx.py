"""What cephx costs (issue 15): new connections per second and the latency of one command,
on the same machine in the same run, with `auth_cluster_required = none` and `= cephx`.
Prints figures, asserts nothing.

    .venv/bin/python bench/cephx.py [--conns 300] [--commands 1000]

Each setup is a fresh cluster (mon.a, osd.0, mds.a; fast profile). Figures:
  mon conn/s   hello (+ challenge, proof, sealed session key) then close, one at a time;
  osd conn/s   the same to the osd, presenting the service ticket (+ a fresh proof);
  cmd ms       `health` round trips on one open session (signed frames with cephx);
  op ms        `stat` round trips to the osd on one open connection.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from client.localcluster import Cluster  # noqa: E402
from common import config as cfg  # noqa: E402
from common.auth import hello_key  # noqa: E402
from common.monclient import MonClient  # noqa: E402
from common.net import connect  # noqa: E402
from osd.objecter import OSDClient, OSDError  # noqa: E402


async def measure(c: Cluster, conns: int, commands: int) -> dict:
    config = cfg.Config("client.admin", cfg.load_conf(str(c.conf_path)))
    auth = hello_key(config)
    osd_addr = (c.dir / "osd.0" / "addr").read_text().strip()
    host, port = osd_addr.rsplit(":", 1)
    out = {}
    async with MonClient.open(f"127.0.0.1:{c.port}", "client.admin", auth, timeout=10) as monc:
        await monc.command(["health"])
        with trio.fail_after(10):
            while auth and "osd" not in auth.tickets:
                await trio.sleep(0.01)
        t0 = time.perf_counter()
        for _ in range(conns):
            conn, _ = await connect("127.0.0.1", c.port, "client.admin", auth=auth)
            await conn.aclose()
        out["mon conn/s"] = conns / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for i in range(conns):
            conn, _ = await connect(host, int(port), "client.admin", auth=auth,
                                    addr=f"127.0.0.1:0/{i + 1}")
            await conn.aclose()
        out["osd conn/s"] = conns / (time.perf_counter() - t0)
        lat = []
        for _ in range(commands):
            t = time.perf_counter()
            await monc.command(["health"])
            lat.append(time.perf_counter() - t)
        out["cmd ms"] = statistics.median(lat) * 1000
        lat = []
        async with OSDClient.open(osd_addr, "client.admin", "127.0.0.1:0/99", auth=auth) as osd:
            for _ in range(commands):
                t = time.perf_counter()
                try:
                    await osd.stat(1, "nothing")
                except OSDError:
                    pass
                lat.append(time.perf_counter() - t)
        out["op ms"] = statistics.median(lat) * 1000
    return out


def run(cephx: bool, conns: int, commands: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-cephx-") as d:
        c = Cluster(d, cephx=cephx)
        try:
            c.start(("a",))
            return trio.run(measure, c, conns, commands)
        finally:
            c.destroy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=300)
    ap.add_argument("--commands", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2, help="alternating none/cephx setups")
    a = ap.parse_args()
    runs: dict[str, list[dict]] = {"none": [], "cephx": []}
    for i in range(a.rounds):  # alternate, so that a busy machine weighs on both alike
        for name in (("none", "cephx") if i % 2 == 0 else ("cephx", "none")):
            runs[name].append(run(name == "cephx", a.conns, a.commands))
    keys = list(runs["none"][0])
    print(f"{'auth':<7}" + "".join(f"{k:>13}" for k in keys) + "   (median of rounds)")
    for name, rs in runs.items():
        print(f"{name:<7}" + "".join(f"{statistics.median(r[k] for r in rs):>13.2f}"
                                     for k in keys))


if __name__ == "__main__":
    main()
