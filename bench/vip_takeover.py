"""VIP takeover times of mdsemu-keepalived beside keepalived's formula. Asserts nothing.

    .venv/bin/python bench/vip_takeover.py [--rounds 10] [--advert-int 0.1]

Two daemons on 127.x loopback addresses share VI_1 (priority 150 and 100) and front a local
TCP service each on VIP:PORT. Each round stops the master at t0, by SIGKILL or by SIGTERM
(clean stop: a priority-0 advert), and measures when a new connection to VIP:PORT first
reaches the backup's service. The master is then started again and preempts.

Expected (RFC 5798 §6.1, keepalived's VRRP_MS_DOWN_TIMER, VRRPv3):
  kill -9: up to Master_Down_Interval = 3 × advert_int + (256 − 100) × advert_int / 256
           after the last advert, i.e. between 2 and 3 advert_int + skew after the kill;
  SIGTERM: Skew_Time = (256 − 100) × advert_int / 256.
Baseline of this machine, measured in the same run: one connect-and-read through the VIP.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from client.vipnodes import Nodes, instance, server, who  # noqa: E402
from vip.vrrp import master_down_interval, skew_time  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--advert-int", type=float, default=0.1)
    args = ap.parse_args()
    adv = args.advert_int
    with tempfile.TemporaryDirectory(prefix="vipbench") as d:
        nodes = Nodes(Path(d))
        try:
            a, b = nodes.node("a"), nodes.node("b")
            vip = nodes.ip(10)
            a.write_conf(instance("VI_1", 51, a, [b], 150, vip, adv) + server(vip, nodes.port, a))
            b.write_conf(instance("VI_1", 51, b, [a], 100, vip, adv) + server(vip, nodes.port, b))
            a.start()
            nodes.wait_holder(vip, "a", timeout=30)
            b.start()
            t = time.monotonic()
            for _ in range(100):
                who(vip, nodes.port)
            base = (time.monotonic() - t) / 100
            results: dict[str, list[float]] = {"SIGKILL": [], "SIGTERM": []}
            for i in range(args.rounds):
                sig = signal.SIGKILL if i % 2 == 0 else signal.SIGTERM
                # let b follow a for a few adverts before the next stop
                nodes.stays(vip, "a", 5 * adv)
                t0 = time.monotonic()
                a.kill(sig)
                results[sig.name].append(nodes.wait_holder(vip, "b", timeout=30, since=t0))
                a.start()
                nodes.wait_holder(vip, "a", timeout=30)
        finally:
            nodes.close()
    down, skew = master_down_interval(100, adv, 3), skew_time(100, adv, 3)
    print(f"advert_int {adv} s, backup priority 100, VRRPv3; "
          f"connect through the VIP: {base * 1000:.1f} ms")
    print(f"{'stop':8} {'n':>3} {'min':>8} {'median':>8} {'max':>8}   formula")
    for name, xs in results.items():
        if not xs:
            continue
        ref = (f"≤ {down:.3f} s (3 × adv + skew)" if name == "SIGKILL"
               else f"{skew:.3f} s (skew)")
        print(f"{name:8} {len(xs):3d} {min(xs):8.3f} {statistics.median(xs):8.3f} "
              f"{max(xs):8.3f}   {ref}")


if __name__ == "__main__":
    main()
