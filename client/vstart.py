"""`mdsemu vstart|vstop`: a local cluster of real processes, like Ceph's vstart.sh.

vstart writes DIR/ceph.conf, starts the daemons in the background with pid files
DIR/run/<type>.<id>.pid and logs DIR/out/<type>.<id>.log, creates the file system and returns
once the cluster is healthy (with `--nfs N`, also N NFS heads: nfs/vstart.py). vstop stops them (SIGTERM: a clean shutdown, then SIGKILL).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import string
import sys
import time
import uuid

import trio

from client.admin import AdminClient, MonUnreachable
from client.procs import CEPHX_DEFAULT, alive, free_port, pid_path, running, spawn, write_conf
from common import config as cfg
from common.auth import hello_key

MDS_NAMES = string.ascii_lowercase


def start_daemon(d: str, kind: str, ident: str, conf: str) -> int:
    """A daemon of the cluster in `d`, detached from us; its pid file is written at once."""
    name = f"{kind}.{ident}"
    pid = spawn(d, kind, ident, conf, detach=True).pid
    pid_path(d, name).write_text(f"{pid}\n")
    return pid


async def _admin(conf: str, words: list[str], fmt: str = "plain", timeout: float = 10.0):
    config = cfg.Config("client.admin", cfg.load_conf(conf))
    async with AdminClient.open(config.get("mon_host"), auth=hello_key(config), timeout=timeout,
                                hunt_interval=0.1) as admin:
        return await admin.command(words, fmt)


def admin(conf: str, *words: str, fmt: str = "plain", timeout: float = 10.0):
    return trio.run(_admin, conf, list(words), fmt, timeout)


def cluster_ready(conf: str, mds: int = 0) -> bool:
    """HEALTH_OK, every rank active (or following), and `mds` daemons in the map."""
    rc, _, out = admin(conf, "health", fmt="json")
    if rc != 0 or json.loads(out)["status"] != "HEALTH_OK":
        return False
    rc, _, out = admin(conf, "fs", "dump", fmt="json")
    fsmap = json.loads(out)
    daemons = len(fsmap["standbys"]) + sum(len(fs["mdsmap"]["info"])
                                           for fs in fsmap["filesystems"])
    if daemons < mds:
        return False
    for fs in fsmap["filesystems"]:
        mdsmap = fs["mdsmap"]
        states = [i["state"] for i in mdsmap["info"].values()]
        if len(mdsmap["in"]) != mdsmap["max_mds"] or any(
            s not in ("up:active", "up:standby-replay") for s in states
        ):
            return False
    return True


def vstart(a: argparse.Namespace) -> int:
    d = os.path.realpath(a.dir)
    if running(d):
        print(f"vstart: a cluster is already running in {d}; run `mdsemu vstop -d {d}` first",
              file=sys.stderr)
        return errno.EEXIST
    for sub in ("run", "out"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    conf = os.path.join(d, "ceph.conf")
    if a.new or not os.path.exists(conf):
        port = a.port or free_port()
        conf = str(write_conf(d, port, a.profile, fsid=str(uuid.uuid4()), cephx=a.cephx))
    start_daemon(d, "mon", "a", conf)
    try:
        _, _, out = admin(conf, "fs", "ls", fmt="json", timeout=15)
        if a.fs and not any(fs["name"] == a.fs for fs in json.loads(out)):
            for words in (["fs", "new", a.fs, f"{a.fs}_metadata", f"{a.fs}_data"],
                          ["fs", "set", a.fs, "max_mds", str(a.max_mds)],
                          ["fs", "set", a.fs, "allow_standby_replay",
                           "true" if a.standby_replay else "false"]):
                rc, outs, _ = admin(conf, *words)
                if rc != 0:
                    print(f"vstart: {' '.join(words)}: {outs}", file=sys.stderr)
                    return -rc
    except MonUnreachable as e:
        print(f"vstart: the monitor did not come up: {e}; see {d}/out/mon.a.log",
              file=sys.stderr)
        return errno.ETIMEDOUT
    start_daemon(d, "osd", "0", conf)  # the metadata pool: MDS daemons wait for it
    for i in range(a.mds):
        start_daemon(d, "mds", MDS_NAMES[i], conf)
    if a.mds == 0:  # nothing can become healthy: start MDS daemons by hand (`mdsemu-mds`)
        print(f"vstart: monitor is up in {d} (conf {conf}), no MDS daemons started")
        return 0
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        if cluster_ready(conf, a.mds):
            print(f"vstart: cluster is up in {d} (conf {conf})")
            if getattr(a, "nfs", 0):  # NFS heads as seed 004 deploys them (nfs/vstart.py)
                from nfs.vstart import start_heads

                ingress_spec = ""
                if getattr(a, "ingress", ""):  # validated in main: the heads report it
                    from vip import ingress

                    vip, port = ingress.parse_vip(a.ingress)
                    ingress_spec = f"{vip}:{port}"
                rc = start_heads(d, conf, a.fs, a.nfs, a.profile, a.timeout, ingress_spec)
                if rc:
                    return rc
            if getattr(a, "ingress", ""):  # keepalived in front of the heads (vip/ingress.py)
                from vip import ingress

                rc = ingress.start(d, list(MDS_NAMES[:a.nfs]), a.ingress, a.profile,
                                   a.timeout)
                if rc:
                    return rc
            print(f"  export CEPH_CONF={conf}; mdsemu fs status")
            return 0
        time.sleep(0.2)
    print(f"vstart: the cluster did not become healthy within {a.timeout:g}s; see {d}/out",
          file=sys.stderr)
    return errno.ETIMEDOUT


def vstop(d: str, timeout: float = 10.0) -> int:
    d = os.path.realpath(d)
    procs = running(d)
    # MDS daemons first, so each says down:dne to a live monitor (B10) while the osd still
    # serves a standby that the mon promotes meanwhile; then the osd; the mon last.
    stages = [[n for n in procs if n.startswith(("nfs.", "keepalived."))],  # heads first
              [n for n in procs if n.startswith("mds.")],
              [n for n in procs if not n.startswith(("mds.", "mon.", "nfs.", "keepalived."))],
              [n for n in procs if n.startswith("mon.")]]
    for stage in stages:
        for name in sorted(stage):
            try:
                os.kill(procs[name], signal.SIGTERM)
                os.kill(procs[name], signal.SIGCONT)  # a stopped (kill -STOP) daemon too
            except ProcessLookupError:
                pass
        _wait_gone([procs[n] for n in stage], timeout / 2)
    leftover = _wait_gone(list(procs.values()), timeout / 2)
    for pid in leftover:
        os.kill(pid, signal.SIGKILL)
    _wait_gone(leftover, 5)
    rundir = os.path.join(d, "run")
    for fn in os.listdir(rundir) if os.path.isdir(rundir) else []:
        if fn.endswith(".pid"):  # ours, and stale ones of daemons killed earlier
            try:
                os.unlink(os.path.join(rundir, fn))
            except FileNotFoundError:
                pass
    print(f"vstop: stopped {len(procs)} daemons in {d}")
    return 0


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [p for p in pids if alive(p)]
        if not pids:
            return []
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mdsemu")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("vstart", "demo"):
        p = sub.add_parser(name)
        p.add_argument("-d", "--dir", default="run/demo" if name == "demo" else "run/vstart")
        p.add_argument("--mds", type=int, default=3)
        p.add_argument("--fs", default="cephfs")
        p.add_argument("--max-mds", type=int, default=1)
        p.add_argument("--standby-replay", action="store_true")
        p.add_argument("--profile", choices=sorted(cfg.PROFILES),
                       default="fast" if name == "demo" else "ceph")
        p.add_argument("--port", type=int, default=0)
        p.add_argument("--new", action="store_true", help="write a fresh ceph.conf")
        p.add_argument("--timeout", type=float, default=60.0)
        p.add_argument("--nfs", type=int, default=0, help="NFS heads a, b, ... (seed 004)")
        p.add_argument("--cephx", action=argparse.BooleanOptionalAction, default=CEPHX_DEFAULT,
                       help="cephx: DIR/keyring with a key per daemon (--no-cephx: auth none)")
        p.add_argument("--ingress", default="", metavar="VIP[:PORT]",
                       help="keepalived in front of the NFS heads (cephadm's ingress)")
    p = sub.add_parser("vstop")
    p.add_argument("-d", "--dir", default="run/vstart")
    return ap


def parse(argv: list[str]) -> argparse.Namespace | None:
    """The arguments of vstart, vstop or demo; None (the reason printed) if out of range."""
    a = parser().parse_args(argv)
    if a.cmd != "vstop" and getattr(a, "nfs", 0) and (
            a.nfs > 26 or a.nfs < 0 or not a.fs or a.mds == 0):
        print("vstart: --nfs must be 0..26 and needs a file system with MDS daemons",
              file=sys.stderr)
        return None
    if a.cmd != "vstop" and getattr(a, "ingress", ""):
        from vip import ingress

        try:
            vip, _ = ingress.parse_vip(a.ingress)
            ingress.daemon_ips(vip, max(a.nfs, 1))
        except ingress.IngressError as e:
            print(f"vstart: {e}", file=sys.stderr)
            return None
        if a.nfs < 1:
            print("vstart: --ingress needs NFS heads (--nfs N)", file=sys.stderr)
            return None
    if a.cmd != "vstop" and (a.mds < 0 or a.mds > len(MDS_NAMES) or a.max_mds < 1):
        print("vstart: --mds must be 0..26 and --max-mds at least 1", file=sys.stderr)
        return None
    return a


def main(argv: list[str]) -> int:
    """`mdsemu vstart|vstop ...` (`mdsemu demo` is client/demo.py, built on this module)."""
    a = parse(argv)
    if a is None:
        return errno.EINVAL
    return vstop(a.dir) if a.cmd == "vstop" else vstart(a)
