"""`mdsemu vstart --nfs N`: NFS heads a, b, ... over the vstart cluster, deployed as seed 004
does: the grace database in the metadata pool, namespace `ganesha`, every head added first;
then one `mdsemu-nfs` per head (DIR/ganesha.<id>.conf, pid file DIR/run/nfs.<id>.pid, log
DIR/out/nfs.<id>.log), each waiting for the one before to settle, as the seed starts them.
"""

from __future__ import annotations

import os
import string
import sys
import time

import trio

from client.procs import free_port, pid_path, spawn
from client.rados import Rados, RadosError
from common import config as cfg
from common import keyring
from common.auth import cephx_on
from nfs import grace
from nfs.grace_tool import read, update

NAMESPACE = "ganesha"
TIMINGS = {"fast": (10, 4), "ceph": (90, 60)}  # Grace_Period, Lease_Lifetime

CONF = """\
NFS_CORE_PARAM {{
\tEnable_NLM = false;
\tEnable_RQUOTA = false;
\tProtocols = 4;
\tNFS_Port = {port};
}}

NFSv4 {{
\tRecoveryBackend = rados_cluster;
\tMinor_Versions = 1,2;
\tGrace_Period = {grace};
\tLease_Lifetime = {lease};
}}

EXPORT {{
\tExport_ID = 100;
\tProtocols = 4;
\tTransports = TCP;
\tPath = /;
\tPseudo = /ceph/;
\tAccess_Type = RW;
\tAttr_Expiration_Time = 0;
\tFSAL {{
\t\tName = CEPH;
\t}}
}}

RADOS_KV {{
\tpool = "{pool}";
\tnamespace = "{ns}";
\tnodeid = "{node}";
}}
"""


async def _db(conf: str, pool: str, nodes: list[str] | None) -> grace.GraceDB:
    """`add` the nodes (creating the database) when given; the database as it stands."""
    config = cfg.Config("client.admin", cfg.load_conf(conf))
    async with Rados.connect(config) as rados:
        io = rados.ioctx(pool, NAMESPACE)
        if nodes:
            try:
                await io.operate(grace.DEFAULT_OID, grace.create_ops())
            except RadosError as e:
                if e.code != 17:  # EEXIST
                    raise
            await update(io, grace.DEFAULT_OID, lambda db: grace.add(db, nodes), data=False)
        return (await read(io, grace.DEFAULT_OID))[0]


def start_heads(d: str, conf: str, fs: str, n: int, profile: str, timeout: float,
                ingress: str = "") -> int:
    """Returns 0, or an errno after a message on stderr. `ingress` (VIP:PORT): the heads
    report it to the monitor (vstart --ingress puts keepalived in front of them)."""
    pool = f"{fs}_metadata"
    nodes = list(string.ascii_lowercase[:n])
    grace_period, lease = TIMINGS.get(profile, TIMINGS["ceph"])
    rc = _nfs_users(conf, pool, nodes)
    if rc:
        return rc
    try:
        trio.run(_db, conf, pool, nodes)
    except RadosError as e:
        print(f"vstart: cannot create the grace database: {e}", file=sys.stderr)
        return e.code
    for node in nodes:
        port = free_port()
        gconf = os.path.join(d, f"ganesha.{node}.conf")
        with open(gconf, "w") as f:
            f.write(CONF.format(port=port, grace=grace_period, lease=lease, pool=pool,
                                ns=NAMESPACE, node=node))
        more = ["--ingress", ingress] if ingress else []
        pid = spawn(d, "nfs", node, conf, "-f", gconf, *more, detach=True).pid
        with open(pid_path(d, f"nfs.{node}"), "w") as f:
            f.write(f"{pid}\n")
        if not _settled(conf, pool, node, timeout):
            print(f"vstart: nfs.{node} did not settle within {timeout:g}s; see "
                  f"{d}/out/nfs.{node}.log", file=sys.stderr)
            return 110  # ETIMEDOUT
        print(f"vstart: nfs.{node} serves on 127.0.0.1:{port} ({gconf})")
    return 0


def nfs_caps(pool: str) -> list[str]:
    """What an NFS head (and its grace tool) may do: read the maps, use the file system, and
    reach only the grace database's pool and namespace (as `ceph nfs cluster create` grants)."""
    return ["mon", "allow r", "osd", f"allow rw pool={pool} namespace={NAMESPACE}",
            "mds", "allow rw"]


def _nfs_users(conf: str, pool: str, nodes: list[str]) -> int:
    """With cephx: a user client.nfs.<node> per head with the caps for `pool`, in the
    cluster keyring (vstart's keyring has them for the default fs already)."""
    config = cfg.Config("client.admin", cfg.load_conf(conf))
    if not cephx_on(config):
        return 0
    from client.vstart import admin

    path = config.get("keyring")
    entries = keyring.load(path)
    for node in nodes:
        who = f"client.nfs.{node}"
        for words in (["auth", "get-or-create", who], ["auth", "caps", who, *nfs_caps(pool)],
                      ["auth", "get", who]):
            rc, outs, out = admin(conf, *words)
            if rc != 0:
                print(f"vstart: cannot set up {who}: {outs}", file=sys.stderr)
                return -rc
        entries.update(keyring.parse(out))
    keyring.write(path, entries)
    return 0


def _settled(conf: str, pool: str, node: str, timeout: float) -> bool:
    """The head started and lifted its grace period: R=0 and its flags clear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            db = trio.run(_db, conf, pool, None)
            if db.rec == 0 and db.flags.get(node) == 0:
                return True
        except (RadosError, grace.GraceError):
            pass
        time.sleep(0.2)
    return False
