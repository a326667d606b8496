"""`mdsemu thrash --compose PROJECT`: the thrasher's cluster shell for a compose project of
compose.yaml. Same methods as `thrash_local.LocalCluster`, done with `docker`: the daemons are the
containers of services mon, osd and mds-*, the monitor is asked from the `watch` service's
container, the load is the `client` service's (its history is copied out at the end and
checked by `verify` inside the watch container). What to run comes from `client.containers`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time

from client import containers
from common import config as cfg

DOCKER_TIMEOUT = 60.0
LOAD_EVERY = 10.0  # seconds between checks that the client service's load runs
LOAD_SILENT = 120.0  # a history that has not grown this long: the load is dead


def docker(*args: str, timeout: float = DOCKER_TIMEOUT) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return subprocess.CompletedProcess(["docker", *args], 125, "", str(e))


class ComposeError(RuntimeError):
    """The project cannot be thrashed (no Docker, no such project); str() says why."""


class ComposeCluster:
    def __init__(self, project: str, fs: str) -> None:
        self.project, self.fs = project, fs
        self.dir = os.path.abspath(f"thrash-{project}")  # the default report directory
        self._ids: dict[str, str] = {}
        self._load_asked = -LOAD_EVERY
        self._load_size = ("", time.monotonic())  # the history's size, and since when
        if not self.container(containers.ASK):
            raise ComposeError(f"no container of service {containers.ASK!r} in compose "
                               f"project {project!r} (is it up? `docker compose -p {project} "
                               f"ps`)")

    # -- the containers
    def container(self, service: str) -> str | None:
        if service not in self._ids:
            ids = docker("ps", "-a", "-q", *containers.labels(self.project, service)).stdout
            if not ids.split():
                return None
            self._ids[service] = ids.split()[0]
        return self._ids[service]

    def names(self) -> list[str]:
        out = docker("ps", "-a", "--format", '{{.Label "com.docker.compose.service"}}',
                     "--filter", f"label=com.docker.compose.project={self.project}").stdout
        return sorted({d for s in out.split() if (d := containers.daemon_of(s))})

    def _state(self, service: str) -> dict:
        cid = self.container(service)
        res = docker("inspect", cid) if cid else None
        try:
            return json.loads(res.stdout)[0] if res and res.returncode == 0 else {}
        except (ValueError, IndexError):
            return {}

    def _docker(self, argvs: list[list[str]]) -> None:
        for argv in argvs:
            docker(*argv)

    # -- what the Thrasher asks (thrash_local.LocalCluster's interface)
    def command(self, *words: str, timeout: float = 2.0) -> tuple[int, str, str]:
        res = docker("exec", self.container(containers.ASK), "mdsemu", "--connect-timeout",
                     f"{timeout:g}", "-f", "json", *words, timeout=timeout + 10)
        return res.returncode, res.stderr, res.stdout

    def dump(self) -> dict | None:
        rc, _, out = self.command("fs", "dump")
        try:
            return json.loads(out) if rc == 0 else None
        except ValueError:
            return None

    def healthy(self) -> bool:
        rc, _, out = self.command("health")
        try:
            return rc == 0 and json.loads(out)["status"] == "HEALTH_OK"
        except (ValueError, KeyError):
            return False

    def asok(self, name: str, *words: str) -> int:
        cid = self.container(containers.service_of(name))
        return docker("exec", cid, "mdsemu", "daemon", name, *words).returncode if cid else 1

    def pid(self, name: str) -> int | None:
        state = self._state(containers.service_of(name)).get("State", {})
        return state.get("Pid") or None if state.get("Running") else None

    def send_signal(self, name: str, sig: int) -> None:
        """SIGSTOP and SIGCONT only: `docker pause` and `unpause` (if paused)."""
        service = containers.service_of(name)
        cid = self.container(service)
        if not cid or sig not in (signal.SIGSTOP, signal.SIGCONT):
            return
        pause, unpause = containers.steps("stop_short", cid, service)
        if sig == signal.SIGSTOP:
            self._docker(pause)
        elif self._state(service).get("State", {}).get("Paused"):
            self._docker(unpause)

    def kill(self, name: str, sig: int = signal.SIGKILL, wait: float = 10.0) -> None:
        service = containers.service_of(name)
        cid = self.container(service)
        if cid:
            self.send_signal(name, signal.SIGCONT)  # a paused container cannot stop
            kind = "kill" if sig == signal.SIGKILL else "restart"
            self._docker(containers.steps(kind, cid, service)[0])

    def start(self, name: str) -> None:
        service = containers.service_of(name)
        cid = self.container(service)
        if cid and not self._state(service).get("State", {}).get("Running"):
            self._docker(containers.steps("kill", cid, service)[1])

    def network_of(self, service: str) -> str:
        nets = self._state(service).get("NetworkSettings", {}).get("Networks", {})
        return next(iter(nets), f"{self.project}_default")

    def disconnect(self, name: str, connect: bool = False) -> None:
        service = containers.service_of(name)
        cid = self.container(service)
        if cid:
            apply, heal = containers.steps("disconnect", cid, service,
                                           self.network_of(service))
            self._docker(heal if connect else apply)

    def grace(self) -> float:
        res = docker("exec", self.container(containers.ASK), "cat", "/etc/ceph/ceph.conf")
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as fh:
            fh.write(res.stdout)
        try:
            return cfg.Config("mds.x", cfg.load_conf(fh.name)).get("mds_beacon_grace")
        finally:
            os.unlink(fh.name)

    # -- the load and its check
    def load_dead(self) -> str | None:
        """Why the client service's load no longer runs (None: it does): its container
        stopped, or its history has not grown for LOAD_SILENT seconds (every client
        stuck). Asked every LOAD_EVERY seconds at most (each question is a docker exec)."""
        now = time.monotonic()
        if now - self._load_asked < LOAD_EVERY:
            return None
        self._load_asked = now
        cid = self.container("client")
        if not cid or not self._state("client").get("State", {}).get("Running"):
            return "the client service's container is not running"
        res = docker("exec", cid, "stat", "-c", "%s", containers.HISTORY)
        size = res.stdout.strip()
        if res.returncode != 0 or size != self._load_size[0]:
            self._load_size = (size, now)
        elif now - self._load_size[1] > LOAD_SILENT:
            return f"the client service's history has not grown for {LOAD_SILENT:g}s"
        return None

    def collect_history(self, dest: str) -> str:
        """Stop the client service's load and copy its history to `dest`."""
        cid = self.container("client")
        if cid:
            docker("stop", "--time", "10", cid)
            docker("cp", f"{cid}:{containers.HISTORY}", dest)
        return dest

    def verify(self, history: str) -> subprocess.CompletedProcess:
        ask = self.container(containers.ASK)
        inside = "/tmp/thrash-history.jsonl"
        docker("cp", history, f"{ask}:{inside}")
        res = docker("exec", ask, "mdsemu", "client", "verify", "--history", inside, "--json",
                     "--fs", self.fs, timeout=180)
        cid = self.container("client")
        if cid:
            docker("start", cid)  # the load goes on, as the project had it
        return res
