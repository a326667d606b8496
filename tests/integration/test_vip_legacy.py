"""Seed 000's legacy setup (issue 12 item 4), with real processes: keepalived on each MDS host
tracking its local MDS, its notify script acting on the cluster. With mds_beacon_grace 60 s
the monitors stay quiet, so the failover after a kill -9 of the active comes from keepalived:
the dead host's instance goes to FAULT, the other host's becomes MASTER and its notify script
runs `mds fail a`, and the mon gives rank 0 to mds.b."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys

import pytest

from client.vipnodes import free_udp_port
from tests.integration.cluster import active, wait_for
from vip import legacy
from vip import status as vipstatus

pytestmark = [pytest.mark.processes, pytest.mark.timeout(120)]


def test_keepalived_notify_promotes_the_standby_when_the_mon_is_slow(cluster_factory):
    c = cluster_factory(conf={"global": {"mds_beacon_grace": "60"}})
    c.start(("a", "b"))
    net = f"127.{random.randrange(100, 250)}.{random.randrange(1, 250)}"
    ips = [f"{net}.11", f"{net}.12"]
    port = free_udp_port(*ips)
    log = c.dir / "out" / "notify.log"
    procs = []

    def state(n: str) -> str | None:
        try:
            st = vipstatus.query(str(c.dir / "run" / f"keepalived.{n}.sock"), timeout=2)
        except vipstatus.Unreachable:
            return None
        return st["vrrp"][0]["mdsemu"]["state"]

    try:
        for i, n in enumerate("ab"):
            conf = c.dir / f"keepalived.{n}.conf"
            conf.write_text(legacy.render_conf(
                n, i, ips, f"{net}.10", port, str(c.dir / "run" / f"keepalived.{n}.sock"),
                str(c.pid_file(f"mds.{n}")),
                f"{sys.executable} -m vip.legacy notify {c.conf_path} cephfs {n} {log}"))
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "vip", "-f", str(conf), "--log-file",
                 str(c.dir / "out" / f"keepalived.{n}.log"), "--log-format", "json"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            if n == "a":  # the active's host first: whoever is master first fails the other
                wait_for(lambda: state("a") == "MASTER", 20, "keepalived a to be master")

        wait_for(lambda: (state("a"), state("b")) == ("MASTER", "BACKUP"), 20,
                 "keepalived on host a to be master")
        c.mds("a").kill(signal.SIGKILL)
        c.mds("a").wait_exit(10)
        wait_for(lambda: (active(c.dump()) or {}).get("name") == "b", 30,
                 "mds.b active through keepalived's notify", lambda: c.dump())
        assert (state("a"), state("b")) == ("FAULT", "MASTER")

        def notes() -> list[dict]:  # written once `mds fail` has returned
            return [json.loads(line) for line in log.read_text().splitlines()]

        wait_for(lambda: notes()[-1]["failed"] == "a", 30, "the notify script's record",
                 notes)
        assert {"local": "b", "failed": "a", "rc": 0}.items() <= notes()[-1].items()
    finally:
        for p in procs:
            p.kill()
            p.wait()
