"""`mdsemu thrash -c DIR/ceph.conf`: the thrasher's cluster shell for a local `vstart`
cluster: commands through an AdminClient, the admin socket of a daemon, signals to the pids in
DIR/run/<type>.<id>.pid (ours only), revivals the way vstart starts a daemon, and `verify` of
the client history. `client.thrash_compose` does the same for a compose project.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys

import trio

from client import procs, vstart
from client.admin import AdminClient, MonUnreachable
from common import config as cfg
from common import messages as m
from common.auth import hello_key
from common.net import Connection, ConnectionClosed, ProtocolError


class LocalCluster:
    """What the Thrasher asks of a cluster (ComposeCluster has the same methods)."""

    def __init__(self, conf: str, fs: str) -> None:
        self.conf = os.path.realpath(conf)
        self.dir = os.path.dirname(self.conf)
        self.fs = fs
        self.config = cfg.Config("client.admin", cfg.load_conf(self.conf))

    def command(self, *words: str, timeout: float = 2.0) -> tuple[int, str, str]:
        async def go():
            async with AdminClient.open(self.config.get("mon_host"), auth=hello_key(self.config),
                                        timeout=timeout, hunt_interval=0.1) as admin:
                with trio.fail_after(timeout):
                    return await admin.command(list(words), "json")
        try:
            return trio.run(go)
        except (MonUnreachable, trio.TooSlowError, OSError) as e:
            return -errno.ETIMEDOUT, str(e), ""

    def dump(self) -> dict | None:
        rc, _, out = self.command("fs", "dump")
        return json.loads(out) if rc == 0 else None

    def healthy(self) -> bool:
        rc, _, out = self.command("health")
        return rc == 0 and json.loads(out)["status"] == "HEALTH_OK"

    def asok(self, name: str, *words: str) -> int:
        """`mdsemu daemon NAME WORDS` (the admin socket: works when the mon cannot reach it)."""
        path = cfg.Config(name, cfg.load_conf(self.conf)).get("admin_socket")

        async def go():
            with trio.fail_after(2):
                conn = Connection(await trio.open_unix_socket(path))
                try:
                    await conn.send(m.Command(tid=1, args=list(words), format="json"))
                    return (await conn.recv()).rc
                finally:
                    await conn.aclose()
        try:
            return trio.run(go)
        except (OSError, trio.TooSlowError, ConnectionClosed, ProtocolError):
            return -errno.ENOTCONN

    def pid(self, name: str) -> int | None:
        pid = procs.read_pid(procs.pid_path(self.dir, name))
        return pid if pid and procs.ours(pid, self.dir) else None

    def send_signal(self, name: str, sig: int) -> None:
        pid = self.pid(name)
        if pid is not None:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def kill(self, name: str, sig: int = signal.SIGKILL, wait: float = 10.0) -> None:
        pid = self.pid(name)
        if pid is None:
            return
        self.send_signal(name, sig)
        self.send_signal(name, signal.SIGCONT)  # a stopped daemon handles SIGTERM too
        if vstart._wait_gone([pid], wait):
            os.kill(pid, signal.SIGKILL)
            vstart._wait_gone([pid], 5)

    def start(self, name: str) -> None:
        if self.pid(name) is None:
            kind, _, ident = name.partition(".")
            vstart.start_daemon(self.dir, kind, ident, self.conf)

    def grace(self) -> float:
        return cfg.Config("mds.x", cfg.load_conf(self.conf)).get("mds_beacon_grace")

    def verify(self, history: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "client", "-c", self.conf, "client",
                               "verify", "--history", history, "--json", "--fs", self.fs],
                              capture_output=True, text=True, timeout=180)

    def names(self) -> list[str]:
        run = os.path.join(self.dir, "run")
        return sorted(f[:-4] for f in os.listdir(run) if f.endswith(".pid"))
