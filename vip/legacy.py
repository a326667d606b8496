"""Seed 000's legacy setup, for comparison: keepalived on each MDS host tracking its local MDS,
with a notify script that acts on the cluster, beside (or instead of) native MDS failover.

- each host's keepalived tracks `kill -0 $(cat mds.<id>.pid)` with weight 0: when the local
  MDS is gone the instance goes to FAULT, sends a priority-0 advert and releases the VIP;
- all instances are `state BACKUP` with `nopreempt`: with preemption a returning host would
  take the VIP back and its notify would fail the healthy active MDS;
- notify_master runs `python -m vip.legacy notify CONF FS LOCAL LOGFILE`: "promote the local
  MDS", i.e. if rank 0 is held by another daemon, `mds fail` it so the mon hands the rank to a
  standby (the local one, if it is the standby). If the local MDS already holds the rank
  (native failover was first), it does nothing. Each run appends a JSON line to LOGFILE.

`notify_action` and `render_conf` decide with plain values; `notify` is the thin shell.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time


def render_conf(name: str, index: int, ips: list[str], vip: str, vrrp_port: int, sock: str,
                pid_file: str, notify: str, advert_int: float = 1.0, interval: float = 1.0,
                fall: int = 2) -> str:
    """keepalived.conf for the host of mds.<name> (the index-th of the hosts at `ips`)."""
    peers = "".join(f"        {ip}\n" for ip in ips if ip != ips[index])
    version = "    vrrp_version 3\n" if advert_int < 1 else ""
    return (
        "global_defs {\n"
        f"    router_id mds-{name}\n{version}"
        f"    mdsemu_vrrp_port {vrrp_port}\n"
        f"    mdsemu_control_socket {sock}\n"
        "}\n\n"
        "vrrp_script check_mds {\n"
        f"    script \"/bin/sh -c 'kill -0 $(cat {pid_file})'\"\n"
        f"    interval {interval:g}\n"
        "    weight 0\n"
        f"    fall {fall}\n"
        "    rise 1\n"
        "}\n\n"
        "vrrp_instance VI_MDS {\n"
        "    state BACKUP\n"
        "    nopreempt\n"
        f"    priority {100 - 10 * index}\n"
        f"    advert_int {advert_int:g}\n"
        "    virtual_router_id 60\n"
        f"    unicast_src_ip {ips[index]}\n"
        f"    unicast_peer {{\n{peers}    }}\n"
        f"    virtual_ipaddress {{\n        {vip}\n    }}\n"
        "    track_script {\n        check_mds\n    }\n"
        f"    notify_master \"{notify}\"\n"
        "}\n"
    )


def notify_action(fsmap: dict, fs: str, local: str) -> str | None:
    """The daemon to `mds fail` so that the local MDS can take rank 0; None if the local MDS
    holds it already (native failover was first) or nobody holds it."""
    for f in fsmap.get("filesystems", []):
        if f["mdsmap"]["fs_name"] != fs:
            continue
        for info in f["mdsmap"]["info"].values():
            if info["rank"] == 0:
                return None if info["name"] == local else info["name"]
    return None


def notify(conf: str, fs: str, local: str, logfile: str) -> int:
    t = time.time()
    mdsemu = [sys.executable, "-m", "client", "-c", conf]
    dump = subprocess.run([*mdsemu, "fs", "dump", "-f", "json"], capture_output=True,
                          text=True, timeout=30)
    victim = notify_action(json.loads(dump.stdout), fs, local) if dump.returncode == 0 \
        else None
    rc = 0
    if victim is not None:
        rc = subprocess.run([*mdsemu, "mds", "fail", victim], capture_output=True,
                            timeout=30).returncode
    with open(logfile, "a") as f:
        f.write(json.dumps({"time": t, "done": time.time(), "local": local,
                            "failed": victim, "rc": rc}) + "\n")
    return rc


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] != "notify":
        print("usage: python -m vip.legacy notify CEPH_CONF FS LOCAL_MDS LOGFILE",
              file=sys.stderr)
        sys.exit(22)
    sys.exit(notify(*sys.argv[2:]))
