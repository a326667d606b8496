#!/opt/mdsemu/bin/python
"""`mdsemu-clog`: compose.yaml's `watch` service, the cluster log as JSON lines.

Runs `mdsemu -w` (Ceph's `ceph -w`) and prints every cluster-log line it shows as one JSON
line in the daemons' structlog layout, e.g.

    {"event": "Replacing daemon mds.a as rank 0 with standby daemon mds.b",
     "entity": "mon.a", "channel": "cluster", "level": "warning",
     "timestamp": "2026-01-01T10:00:00.000000Z"}

so that `docker compose logs -f` tells the failover with the monitor's own words. When the
monitor goes away (`docker compose restart mon`) it starts `mdsemu -w` again; lines already
printed (the monitor sends its recent log to a new watcher) are not printed twice.
"""

from __future__ import annotations

import collections
import json
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)\+0000 (\S+) \[(\w+)\] (.*)$")
LEVELS = {"DBG": "debug", "INF": "info", "WRN": "warning", "ERR": "error", "SEC": "critical"}

child: subprocess.Popen | None = None


def emit(rec: dict) -> None:
    sys.stdout.write(json.dumps(rec) + "\n")
    sys.stdout.flush()


def stop(signum, frame) -> None:
    if child is not None and child.poll() is None:
        child.terminate()
    sys.exit(0)


def main() -> None:
    global child
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    seen: collections.deque[str] = collections.deque(maxlen=2000)
    seen_set: set[str] = set()
    while True:
        child = subprocess.Popen(["mdsemu", "--connect-timeout", "30", "-w"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert child.stdout is not None
        for line in child.stdout:
            m = LINE.match(line.rstrip("\n"))
            if m is None or line in seen_set:
                continue  # the status block `-w` starts with, or a line printed already
            if len(seen) == seen.maxlen:
                seen_set.discard(seen[0])
            seen.append(line)
            seen_set.add(line)
            stamp, who, level, message = m.groups()
            emit({"event": message, "entity": who, "channel": "cluster",
                  "level": LEVELS.get(level, level.lower()), "timestamp": stamp + "Z"})
        child.wait()
        emit({"event": "lost the monitor; watching again", "entity": "clog",
              "level": "warning",
              "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z")})
        time.sleep(1)


if __name__ == "__main__":
    main()
