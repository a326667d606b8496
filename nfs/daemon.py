"""`mdsemu-nfs -c ceph.conf -f ganesha.conf -i NODEID`: an NFS gateway head (trio shell).

A CephFS client of the cluster (client/fsclient.py) that serves an NFSv4.1-style stateful
protocol as msgpack frames (`nfs_request`/`nfs_reply`, common/messages.py) on NFS_Port (2049;
`--port` overrides). The decisions are sans-IO: nfs/state.py (client ids, sessions, leases,
opens, locks, grace rules), nfs/grace.py and nfs/recovery.py through nfs/backend.py.

Operations (`args`; `session` for all but exchange_id and create_session):
  exchange_id {owner, verifier} -> {clientid}      create_session {clientid} -> {sessionid}
  sequence {}   destroy_session {}   reclaim_complete {}
  open {path, claim: null|previous, create: bool} -> {stateid}     close {stateid}
  lock {stateid, type: read|write, offset, length, reclaim: bool} -> {lock_stateid}
  locku {lock_stateid, offset, length}
  getattr|lookup {path}, readdir {path}, mkdir {path}, create {path}, unlink {path},
  rmdir {path}, rename {src, dst}                   (passed through to CephFS)
Replies carry the NFSv4 status number and name (NFS4ERR_GRACE, NFS4ERR_NO_GRACE, ...).
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import math
import os
import socket
import sys
import time

import structlog
import trio

from client.admin import MonUnreachable, hunt
from client.fsclient import FSClient, FSClientError
from client.rados import Rados, RadosError
from common import config as cfg
from common import daemon as daemon_common
from common import log as logsetup
from common import messages as m
from common.auth import hello_key
from common.net import Connection, ConnectionClosed, ProtocolError, guarded
from nfs import ganesha_conf
from nfs.backend import LocalBackend, NotAMember, RadosClusterBackend
from nfs.fsal import CephFSAL
from nfs.nfs4 import TO_EOF, NFS4Error, from_errno
from nfs.state import Client, NFSState

log = structlog.get_logger("nfs")

REPORT_INTERVAL = 5.0  # to the monitor (mon/nfs_services.py), or at once on a grace change
REAPER_DELAY = 10.0  # nfs_reaper_thread.c: every 10 s, or lease/2 when the lease is < 20 s
SESSION_OPS = {"sequence", "destroy_session", "reclaim_complete", "open", "close", "lock",
               "locku", "getattr", "lookup", "readdir", "mkdir", "create", "unlink", "rmdir",
               "rename"}


class NFSServer:
    def __init__(self, config: cfg.Config, gconf: ganesha_conf.GaneshaConfig, nodeid: str,
                 port: int | None = None) -> None:
        self.config = config
        self.gconf = gconf
        self.nodeid = nodeid
        self.port = gconf.nfs_port if port is None else port
        # this incarnation, in the client ids it hands out (older ones are stale)
        self.state = NFSState(float(gconf.lease_lifetime),
                              boot=(time.time_ns() >> 10) & 0xFFFFFFFF or 1)
        self.backend = None
        self.fs: FSClient | None = None
        self.fsal: CephFSAL | None = None
        self.addr = ""
        # cephadm names the service nfs.<cluster_id> and uses it as the RADOS namespace
        self.cluster_id = gconf.namespace or "nfs"
        self.ingress: dict = {}  # {virtual_ip, port} of keepalived in front (--ingress)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        g = self.gconf
        timeout = self.config.get("mon_client_timeout")
        async with FSClient.open(self.config.get("mon_host"), timeout=timeout,
                                 entity=self.config.name, auth=hello_key(self.config)) as fs:
            self.fs = fs
            export_id = g.exports[0].export_id if g.exports else 1
            self.fsal = CephFSAL(fs, self.nodeid, export_id,
                                 self.config.get("mdsemu_nfs_session_timeout"))
            if g.recovery_backend == "rados_cluster":
                async with Rados.connect(self.config, self.config.name, timeout) as rados:
                    io = rados.ioctx(g.pool, g.namespace)
                    self.backend = RadosClusterBackend(self.state, io, g.grace_oid,
                                                       self.nodeid, g.grace_period, g.graceless,
                                                       g.enable_nlm)
                    await self._serve(task_status)
            else:
                self.backend = LocalBackend(self.state, g.grace_period, g.graceless)
                await self._serve(task_status)

    async def _serve(self, task_status) -> None:
        await self.backend.start(trio.current_time())
        await self.fsal.reclaim_reset()  # once every head enforces (backend.start waited)
        addr = str(self.config.get("public_addr") or "127.0.0.1")  # "IP" or "IP:PORT"
        host = addr.rsplit(":", 1)[0] if addr.count(":") == 1 else addr
        listeners = await trio.open_tcp_listeners(self.port, host=host)
        self.port = listeners[0].socket.getsockname()[1]
        self.addr = f"{listeners[0].socket.getsockname()[0]}:{self.port}"
        log.info("nfs head serving", nodeid=self.nodeid, addr=self.addr,
                 backend=self.gconf.recovery_backend, in_grace=self.state.in_grace)
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self._handle, listeners)
            nursery.start_soon(self._reaper)
            nursery.start_soon(self._report)
            task_status.started(self)

    async def shutdown(self) -> None:
        """SIGTERM: ask for a grace period; the CephFS session is then left open, not closed
        (the run is cancelled before FSClient's unmount), as FSAL_CEPH's ceph_abort_conn
        leaves "state intact on the MDS": its locks wait for the next incarnation's reset."""
        if self.backend is not None:
            await self.backend.shutdown()

    async def _reaper(self) -> None:
        lease = self.state.lease
        delay = lease / 2 if lease < 20 else REAPER_DELAY
        while True:
            with trio.move_on_after(delay):
                await self.backend.wake.wait()
            self.backend.wake = trio.Event()
            now = trio.current_time()
            for c in self.state.expire(now):
                log.info("client lease expired", clientid=hex(c.clientid), owner=c.owner)
                await self.backend.client_gone(c.clientid)
            await self._release_dropped()
            try:
                await self.backend.reap(now)
            except Exception as e:  # the cluster is unreachable for now: try again later
                log.warning("grace database unreachable", error=str(e))

    async def _report(self) -> None:
        """Tell the monitor where this head serves (mon/nfs_services.py: `nfs cluster
        info`), and the grace database as last read, every REPORT_INTERVAL seconds."""
        host, port = self.addr.rsplit(":", 1)
        while True:
            try:
                conn, _ = await hunt(self.config.get("mon_host"), self.config.name,
                                     hello_key(self.config), math.inf, REPORT_INTERVAL)
            except MonUnreachable as e:
                log.warning("cannot report to the monitor", error=str(e))
                await trio.sleep(REPORT_INTERVAL)
                continue
            try:
                while True:
                    await conn.send(m.NFSReport(
                        cluster_id=self.cluster_id, nodeid=self.nodeid,
                        hostname=socket.gethostname(), ip=host, port=int(port),
                        grace=self.backend.grace_view(), ingress=self.ingress))
                    with trio.move_on_after(REPORT_INTERVAL):
                        await self.backend.wake_report.wait()
                    self.backend.wake_report = trio.Event()
            except (ConnectionClosed, OSError):
                pass
            finally:
                await conn.aclose()

    # -- connections
    async def _handle(self, stream: trio.SocketStream) -> None:
        await guarded(Connection(stream, self.config.get("ms_max_message_size")),
                      self._serve_conn, log)

    async def _serve_conn(self, conn: Connection) -> None:
        sock = getattr(conn.stream, "socket", None)
        peer = sock.getpeername()[0] if sock is not None else "(unknown)"
        while True:
            try:
                msg = await conn.recv()
            except ConnectionClosed:
                return
            if not isinstance(msg, m.NFSRequest):
                raise ProtocolError(f"unexpected message {msg.TYPE}")
            try:
                result = await self._op(msg, peer)
                reply = m.NFSReply(tid=msg.tid, status=0, result=result)
            except NFS4Error as e:
                result = {"denied": e.denied} if e.denied else {}
                reply = m.NFSReply(tid=msg.tid, status=e.status, error=e.name, result=result)
            except FSClientError as e:
                name = from_errno(e.code)
                reply = m.NFSReply(tid=msg.tid, status=NFS4Error(name).status, error=name,
                                   result={"message": e.message})
            except RadosError as e:  # the recovery database is unreachable: try again
                reply = m.NFSReply(tid=msg.tid, status=NFS4Error("NFS4ERR_DELAY").status,
                                   error="NFS4ERR_DELAY", result={"message": str(e)})
            except (KeyError, TypeError, ValueError) as e:
                reply = m.NFSReply(tid=msg.tid, status=NFS4Error("NFS4ERR_INVAL").status,
                                   error="NFS4ERR_INVAL", result={"message": f"bad args: {e}"})
            await conn.send(reply)

    async def _release_dropped(self) -> None:
        """The CephFS locks of clients whose state went (lease expired, rebooted client)."""
        released, self.state.released = self.state.released, []
        for clientid, path in released:
            try:
                await self.fsal.unlock(path, clientid, 0, TO_EOF)
            except FSClientError as e:
                log.warning("cannot release the locks of a gone client", path=path,
                            clientid=hex(clientid), error=e.message)

    async def _op(self, req: m.NFSRequest, peer: str) -> dict:
        s, a, now = self.state, req.args, trio.current_time()
        if req.op == "exchange_id":
            clientid = s.exchange_id(str(a["owner"]), str(a["verifier"]), now)
            await self._release_dropped()
            return {"clientid": clientid}
        if req.op == "create_session":
            clientid = int(a["clientid"])
            sid = s.create_session(clientid, now)
            await self.backend.client_confirmed(clientid, peer, s.clients[clientid].owner)
            return {"sessionid": sid, "lease": s.lease}
        if req.op not in SESSION_OPS:
            raise NFS4Error("NFS4ERR_OP_ILLEGAL", f"unknown op {req.op!r}")
        c = s.sequence(req.session, now)
        if req.op == "destroy_session":
            s.destroy_session(req.session)
            return {}
        return await self._session_op(req.op, c, a)

    async def _session_op(self, op: str, c: Client, a: dict) -> dict:
        s, fs = self.state, self.fs
        if op == "sequence":
            return {"in_grace": s.in_grace}
        if op == "reclaim_complete":
            s.reclaim_complete(c)
            return {}
        if op == "open":
            path, claim = str(a["path"]), str(a.get("claim", "null"))
            s.check_claim(c, claim)  # before CephFS: a refused OPEN creates nothing
            if a.get("create") and claim == "null":
                try:
                    await fs.create(path)
                    await _stable(fs, path)
                except FSClientError as e:
                    if e.code != errno.EEXIST:
                        raise
            else:
                await fs.stat(path)
            return {"stateid": s.open(c, path, claim).stateid}
        if op == "close":
            s.close(c, int(a["stateid"]))
            return {}
        if op == "lock":  # checked here, then taken in CephFS, then recorded
            args = (int(a["stateid"]), str(a["type"]), int(a["offset"]), int(a["length"]),
                    bool(a.get("reclaim", False)))
            o = s.check_lock(c, *args)
            await self.fsal.lock(o.path, c.clientid, *args[1:])
            try:  # checked again: a grace period may have begun meanwhile
                return {"lock_stateid": s.lock(c, *args).stateid}
            except NFS4Error:  # undo it in CephFS, unless that would cut an older lock
                if not any(lk.clientid == c.clientid for lk in s.locks_of(o.path)):
                    await self.fsal.unlock(o.path, c.clientid, 0, TO_EOF)
                raise
        if op == "locku":
            offset, length = int(a["offset"]), int(a["length"])
            path = s.locku(c, int(a["lock_stateid"]), offset, length)
            await self.fsal.unlock(path, c.clientid, offset, length)
            return {}
        if op in ("getattr", "lookup"):
            return {"inode": await fs.stat(str(a["path"]))}
        if op == "readdir":
            return {"entries": [[n, i] for n, i in await fs.ls(str(a["path"]))]}
        if op in ("mkdir", "create"):
            inode = await getattr(fs, op)(str(a["path"]))
            await _stable(fs, str(a["path"]))
            return {"inode": inode}
        if op in ("unlink", "rmdir"):
            await getattr(fs, op)(str(a["path"]))
            await _stable(fs, str(a["path"]))
            return {}
        if op == "rename":
            await fs.rename(str(a["src"]), str(a["dst"]))
            await _stable(fs, str(a["dst"]))
            return {}
        raise NFS4Error("NFS4ERR_OP_ILLEGAL", f"unknown op {op!r}")


async def _stable(fs: FSClient, path: str) -> None:
    """NFS answers a change of a directory once it is on stable storage: the client library
    returns on the MDS's unsafe reply, so wait for the safe one (an fsync of `path`)."""
    for lost in await fs.sync(path):
        raise FSClientError(errno.EIO, f"{lost.op} {path}: acknowledged unsafe, then lost "
                                       f"({lost.reason})")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="mdsemu-nfs", description="mdsemu NFS gateway head")
    ap.add_argument("-c", "--conf", default=os.environ.get("CEPH_CONF", "/etc/ceph/ceph.conf"))
    ap.add_argument("-f", "--ganesha-conf", default="/etc/ganesha/ganesha.conf")
    ap.add_argument("-i", "--id", default="", help="nodeid (default: RADOS_KV nodeid, then "
                                                   "the hostname)")
    ap.add_argument("--port", type=int, default=None, help="instead of NFS_Port")
    ap.add_argument("--pid-file", default="")
    ap.add_argument("--public_addr", "--public-addr", default="",
                    help="the address to serve at and report (default 127.0.0.1)")
    ap.add_argument("--ingress", default="", metavar="VIP[:PORT]",
                    help="the ingress (keepalived's VIP) in front of this head, reported to "
                         "the monitor for `nfs cluster info` (port default 2049)")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        gconf = ganesha_conf.load(args.ganesha_conf)
        nodeid = args.id or gconf.nodeid or socket.gethostname()
        overrides = {"public_addr": args.public_addr} if args.public_addr else None
        config = cfg.Config(f"client.nfs.{nodeid}", cfg.load_conf(args.conf),
                            overrides=overrides)
        ingress = _ingress(args.ingress)
    except (ganesha_conf.GaneshaConfError, cfg.ConfError, ValueError) as e:
        print(f"mdsemu-nfs: {e}", file=sys.stderr)
        raise SystemExit(errno.EINVAL) from None
    logsetup.setup(config.get("log_format"), config.get("log_file"), config.get("log_level"))
    logsetup.bind(entity=config.name)
    for w in gconf.warnings:
        log.warning(w)
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    server = NFSServer(config, gconf, nodeid, args.port)
    server.ingress = ingress
    daemon_common.run_foreground(server.run, "nfs", on_signal=server.shutdown,
                                 fatal=(OSError, NotAMember))


def _ingress(spec: str) -> dict:
    """`VIP[:PORT]` -> {virtual_ip, port}; {} for none."""
    if not spec:
        return {}
    vip, _, port = spec.partition(":")
    ipaddress.IPv4Address(vip)  # ValueError names the bad address
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"--ingress: bad port '{port}'")
    return {"virtual_ip": vip, "port": int(port or 2049)}


if __name__ == "__main__":
    main()
