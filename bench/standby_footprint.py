"""What an idle standby MDS costs: resident memory and CPU. Real processes (mon, osd, an
active MDS and a standby), fast profile. Prints figures, asserts nothing.

    .venv/bin/python bench/standby_footprint.py [--seconds 10]

The standby's RSS (VmRSS) once it has settled in the map, and its CPU (user + system) over
`--seconds` while it only beacons; beside them, in the same run, the RSS of a bare Python
process that imports what every daemon needs (trio, msgpack, structlog) and sleeps in
trio.run, and the active's figures. Target (issue 14): a standby at most 40 MB and under 1 %
of a core.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from client.fsdump import info_by_name  # noqa: E402
from client.localcluster import Cluster  # noqa: E402

BARE = "import msgpack, structlog, trio; print('ready', flush=True); trio.run(trio.sleep, 60)"


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    bare = subprocess.Popen([sys.executable, "-c", BARE], stdout=subprocess.PIPE, text=True)
    try:
        bare.stdout.readline()
        bare_rss = rss_mb(bare.pid)
    finally:
        bare.kill()
        bare.wait()
    print(f"baseline: a bare python importing trio, msgpack, structlog: {bare_rss:.1f} MB RSS; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="mdsemu-bench-") as tmp:
        c = Cluster(Path(tmp) / "c", profile="fast")
        try:
            c.start(("a", "b"))
            c.wait_map(lambda d: (info_by_name(d, "b") or {}).get("state") == "up:standby",
                       30, "mds.b in up:standby")
            time.sleep(3.0)  # settled: maps received, sessions open
            pids = {"standby mds.b": c.pid_of("b"), "active mds.a": c.pid_of("a")}
            before = {k: cpu_s(p) for k, p in pids.items()}
            t0 = time.monotonic()
            time.sleep(a.seconds)
            wall = time.monotonic() - t0
            print(f"{'daemon':>14} {'RSS MB':>7} {'CPU % of a core':>16}")
            for k, p in pids.items():
                share = 100 * (cpu_s(p) - before[k]) / wall
                print(f"{k:>14} {rss_mb(p):>7.1f} {share:>15.2f}%", flush=True)
        finally:
            c.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
