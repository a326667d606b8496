"""A real-process cluster for the integration tests and bench/: a monitor and MDS daemons as OS processes on
127.0.0.1, driven and observed the way a user would (the `mdsemu` CLI, signals, pid files).

Two ways to start one:
- `Cluster.start_mon()` / `start_mds(name)`: each daemon is a child of the test process
  (`python -m mon|mds -c CONF -i NAME --pid-file DIR/run/<name>.pid`, log in DIR/out/), so any
  number of MDS daemons and per-daemon `[mds.X]` conf sections are possible;
- `Cluster.vstart(...)`: `mdsemu vstart -d DIR --profile fast ...`, as in the README.

Observation:
- `fs_dump()`, `health()`, `mds_stat()`, `cli()`: the real `mdsemu` command (a subprocess), for
  the assertions a test makes about what users see;
- `query()`, `dump()`: the same monitor commands and the same JSON, sent from this process
  (much cheaper than a Python start-up per poll), for polling in `wait_for` / `wait_map`.

Every map the harness looks at goes through `check_map` (no two daemons holding one rank, no
name twice, up/in/failed consistent), and `check_history()` runs it over every epoch the
monitor committed in a range (`fs dump <epoch>`).

Resource handling: `destroy()` (the `cluster_factory` fixture calls it, also on failure)
SIGKILLs and waits for every process the cluster knows, every pid in DIR/run/*.pid and every
process whose command line names this cluster's directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import trio

from client.admin import AdminClient, MonUnreachable
from client.fsdump import ClusterError, active, check_map, info_by_name
from client.procs import (
    CEPHX_DEFAULT,
    MDSEMU,
    POLL,
    cmdline,
    free_port,
    pid_alive,
    pid_path,
    pids_mentioning,
    read_pid,
    run_cli,
    spawn,
    wait_for,
    write_conf,
)
from common import config as cfg
from common.auth import hello_key
from common.net import use_auth

FAST_GRACE = 1.0  # the fast profile's mds_beacon_grace
DEFAULT_TIMEOUT = 15.0


class Daemon:
    """One daemon process (`mon.a`, `mds.b`): a child we started, or one found by pid file."""

    def __init__(self, cluster: Cluster, name: str, proc: subprocess.Popen | None = None):
        self.cluster = cluster
        self.name = name
        self.proc = proc

    @property
    def pid(self) -> int:
        if self.proc is not None:
            return self.proc.pid
        pid = read_pid(self.cluster.pid_file(self.name))
        if pid is None:
            raise ClusterError(f"no pid file for {self.name}")
        return pid

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return pid_alive(self.pid)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        os.kill(self.pid, sig)

    def wait_exit(self, timeout: float = DEFAULT_TIMEOUT) -> int | None:
        """Wait for the process to end; its exit status if it is our child (-N for signal N)."""
        if self.proc is not None:
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                raise ClusterError(f"{self.name} (pid {self.pid}) still running after "
                                   f"{timeout:g}s") from None
        wait_for(lambda: not pid_alive(self.pid), timeout, f"{self.name} to exit")
        return None

    def log(self) -> str:
        return self.cluster.log(self.name)


# -- the cluster ----------------------------------------------------------------------------
class Cluster:
    def __init__(self, path: Path | str, profile: str = "fast",
                 conf: dict[str, dict[str, str]] | None = None,
                 cephx: bool = CEPHX_DEFAULT) -> None:
        self.dir = Path(path).resolve()
        self.cephx = cephx  # vstart --cephx: DIR/keyring, every daemon with its own key
        self.profile = profile
        self.conf_sections = conf or {}
        self.conf_path = self.dir / "ceph.conf"
        self.daemons: dict[str, Daemon] = {}
        self.port = 0
        self.last_stat = ""
        for sub in ("run", "out"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)

    # -- configuration
    def write_conf(self, port: int | None = None) -> Path:
        self.port = port or free_port()
        return write_conf(self.dir, self.port, self.profile, self.conf_sections,
                          cephx=self.cephx)

    def pid_file(self, name: str) -> Path:
        return pid_path(self.dir, name)

    def log(self, name: str) -> str:
        try:
            return (self.dir / "out" / f"{name}.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def grace(self) -> float:
        return FAST_GRACE if self.profile == "fast" else 15.0

    # -- starting daemons
    def _spawn(self, kind: str, ident: str, *args: str) -> Daemon:
        name = f"{kind}.{ident}"
        old = self.daemons.get(name)
        if old is not None and old.alive():
            raise ClusterError(f"{name} is already running (pid {old.pid})")
        proc = spawn(self.dir, kind, ident, self.conf_path, *args)
        daemon = Daemon(self, name, proc)
        self.daemons[name] = daemon
        return daemon

    def start_mon(self, ident: str = "a", timeout: float = DEFAULT_TIMEOUT) -> Daemon:
        """Start the monitor and return once it answers commands."""
        if not self.conf_path.exists():
            self.write_conf()
        mon = self._spawn("mon", ident)

        def ready():
            if not mon.alive():
                raise ClusterError(f"mon.{ident} exited with {mon.proc.returncode}: "
                                   f"{mon.log()[-2000:]}")
            return self.query("health", timeout=0.5)[0] == 0

        wait_for(ready, timeout, f"mon.{ident} to answer")
        if "osd.0" not in self.daemons or not self.daemons["osd.0"].alive():
            self.start_osd(timeout=timeout)
        return mon

    def start_osd(self, ident: str = "0", timeout: float = DEFAULT_TIMEOUT) -> Daemon:
        """The metadata pool's osd; returns once the OSDMap has its address."""
        osd = self._spawn("osd", ident)

        def booted():
            if not osd.alive():
                raise ClusterError(f"osd.{ident} exited: {osd.log()[-2000:]}")
            return (self.dir / f"osd.{ident}" / "addr").exists()

        wait_for(booted, timeout, f"osd.{ident} to start")
        return osd

    def start_mds(self, name: str, *args: str, wait: bool = True,
                  timeout: float = DEFAULT_TIMEOUT) -> Daemon:
        """Start mds.<name>; with wait, return once the map has it (any state)."""
        mds = self._spawn("mds", name, *args)
        if wait:
            self.wait_map(lambda d: info_by_name(d, name) is not None, timeout,
                          f"mds.{name} to join the map")
        return mds

    def mds(self, name: str) -> Daemon:
        key = f"mds.{name}"
        if key not in self.daemons:
            self.daemons[key] = Daemon(self, key)  # e.g. started by vstart
        return self.daemons[key]

    @property
    def mon(self) -> Daemon:
        if "mon.a" not in self.daemons:
            self.daemons["mon.a"] = Daemon(self, "mon.a")
        return self.daemons["mon.a"]

    def pid_of(self, name: str) -> int:
        """The pid of mds.<name> (or of `mon.a` given in full), from its pid file."""
        key = name if "." in name else f"mds.{name}"
        pid = read_pid(self.pid_file(key))
        if pid is None:
            raise ClusterError(f"no pid file for {key}")
        return pid

    def new_fs(self, name: str = "cephfs") -> None:
        self.ok("fs", "new", name, f"{name}_metadata", f"{name}_data")

    def start(self, mds: Iterable[str] = ("a", "b", "c"), fs: str | None = "cephfs",
              timeout: float = DEFAULT_TIMEOUT) -> Cluster:
        """mon, a file system, then the MDS daemons: the first becomes rank 0 (so tests and
        their logs read the same every run), the others standbys. Returns once healthy."""
        names = list(mds)
        self.start_mon()
        if fs:
            self.new_fs(fs)
        if names:
            self.start_mds(names[0], wait=False)
            if fs:
                self.wait_map(lambda d: active(d, fs, 0) is not None, timeout,
                              f"mds.{names[0]} to become active")
            for name in names[1:]:
                self.start_mds(name, wait=False)
            self.wait_map(lambda d: all(info_by_name(d, n) for n in names), timeout,
                          "every MDS to join the map")
        return self

    def vstart(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """`mdsemu vstart -d DIR --profile PROFILE ARGS`; fails the test if it fails."""
        res = run_cli(["vstart", "-d", str(self.dir), "--profile", self.profile, *args],
                      timeout=timeout)
        if res.returncode != 0:
            raise ClusterError(f"vstart exited {res.returncode}: {res.stderr.strip()}")
        self.conf_path = self.dir / "ceph.conf"
        return res

    def stop_mon(self, sig: int = signal.SIGKILL, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.mon.kill(sig)
        self.mon.wait_exit(timeout)

    def restart_mon(self, sig: int = signal.SIGKILL, down_for: float = 0.0) -> Daemon:
        """Stop the mon (kill -9 by default), keep it down at least `down_for` seconds (an
        outage of a chosen length, not synchronisation), then start it on the same port and
        data directory."""
        stopped = time.monotonic()
        self.stop_mon(sig)
        remaining = stopped + down_for - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        return self.start_mon()

    # -- the CLI (what users see)
    def cli(self, *words: str, fmt: str | None = None, check: bool = False,
            timeout: float = 30.0) -> subprocess.CompletedProcess:
        """`mdsemu -c CONF [-f FMT] WORDS`; stdout/stderr as text."""
        argv = ["-c", str(self.conf_path)] + (["-f", fmt] if fmt else []) + list(words)
        res = run_cli(argv, timeout=timeout)
        if check and res.returncode != 0:
            raise ClusterError(f"mdsemu {' '.join(words)} exited {res.returncode}: "
                               f"{res.stderr.strip()}")
        return res

    @contextlib.contextmanager
    def load(self, history: Path, *args: str):
        """`mdsemu client load ARGS --history FILE` as its own process, reaped on the way out
        (killed if still running)."""
        proc = subprocess.Popen(
            MDSEMU + ["-c", str(self.conf_path), "client", "load", *args, "--history",
                      str(history)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def verify(self, history: Path) -> dict:
        """`mdsemu client verify -f json`: its summary; asserts it found no violation."""
        res = run_cli(["-c", str(self.conf_path), "client", "verify", "--history",
                       str(history), "-f", "json"], timeout=60)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        summary = json.loads(res.stdout)
        assert summary["violations"] == [], summary["violations"][:20]
        return summary

    def cli_json(self, *words: str) -> Any:
        res = self.cli(*words, fmt="json", check=True)
        try:
            return json.loads(res.stdout)
        except json.JSONDecodeError as e:
            raise ClusterError(f"mdsemu {' '.join(words)} -f json: not JSON ({e}): "
                               f"{res.stdout[:500]!r}") from None

    def fs_dump(self, epoch: int | None = None) -> dict:
        """`mdsemu fs dump [EPOCH] -f json`, parsed and checked (check_map)."""
        dump = self.cli_json("fs", "dump", *([str(epoch)] if epoch is not None else []))
        check_map(dump)
        return dump

    def health(self, detail: bool = True) -> dict:
        """`mdsemu health [detail] -f json`, parsed."""
        return self.cli_json("health", *(["detail"] if detail else []))

    def mds_stat(self) -> str:
        return self.cli("mds", "stat", check=True).stdout.strip()

    # -- in-process queries (same monitor commands and JSON; for polling)
    def query(self, *words: str, fmt: str = "json", timeout: float = 5.0) -> tuple[int, str, str]:
        return trio.run(_commands, self._mon_host(), [list(words)], fmt, timeout,
                        self.auth_key())[0]

    def query_many(self, commands: list[list[str]], fmt: str = "json",
                   timeout: float = 10.0) -> list[tuple[int, str, str]]:
        return trio.run(_commands, self._mon_host(), commands, fmt, timeout, self.auth_key())

    def auth_key(self):
        """client.admin's cephx credentials when the conf asks for cephx (the harness is a
        client too); None with auth off."""
        return hello_key(cfg.Config("client.admin", cfg.load_conf(str(self.conf_path))))

    @contextlib.asynccontextmanager
    async def session(self, timeout: float = 10.0):
        """A client.admin monitor session for in-process clients (OSDClient, a raw
        `connect`): with cephx it fetches the service tickets and makes them this task's
        credentials (net.use_auth) until the block ends."""
        auth = self.auth_key()
        async with AdminClient.open(self._mon_host(), "client.admin", auth,
                                    timeout=timeout) as admin:
            use_auth(auth)
            try:
                if auth:
                    with trio.fail_after(timeout):
                        while not {"mds", "osd"} <= set(auth.tickets):
                            await trio.sleep(0.01)
                yield admin
            finally:
                use_auth(None)

    def ok(self, *words: str) -> str:
        rc, outs, outb = self.query(*words)
        if rc != 0:
            raise ClusterError(f"{' '.join(words)}: rc {rc}: {outs}")
        return outb

    def _mon_host(self) -> str:
        text = self.conf_path.read_text()
        match = re.search(r"^\s*mon[ _-]host\s*=\s*(\S+)", text, re.M)
        if not match:
            raise ClusterError(f"no mon_host in {self.conf_path}")
        return match.group(1)

    def dump(self) -> dict:
        """The current fs dump JSON (in-process), checked with check_map."""
        rc, outs, outb = self.query("fs", "dump")
        if rc != 0:
            raise ClusterError(f"fs dump: rc {rc}: {outs}")
        dump = json.loads(outb)
        check_map(dump)
        return dump

    def health_codes(self) -> set[str]:
        rc, outs, outb = self.query("health", "detail")
        if rc != 0:
            raise ClusterError(f"health detail: rc {rc}: {outs}")
        return set(json.loads(outb)["checks"])

    def describe(self) -> str:
        """The current `mds stat` line (in-process), for error messages."""
        rc, outs, outb = self.query("mds", "stat", fmt="plain", timeout=2.0)
        self.last_stat = outb.strip() if rc == 0 else f"mds stat failed: {outs}"
        return f"mds stat: {self.last_stat}"

    def wait_for(self, predicate: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT,
                 what: str = "a condition") -> Any:
        return wait_for(predicate, timeout, what, self.describe)

    def wait_map(self, predicate: Callable[[dict], Any], timeout: float = DEFAULT_TIMEOUT,
                 what: str = "the map") -> dict:
        """Poll `fs dump` until predicate(dump) is truthy; every dump seen is checked."""
        box: dict = {}

        def probe():
            box["dump"] = self.dump()
            return predicate(box["dump"])

        wait_for(probe, timeout, what, self.describe)
        return box["dump"]

    def holds_for(self, predicate: Callable[[dict], Any], duration: float, what: str) -> None:
        """Poll `fs dump` for `duration` seconds; predicate(dump) must hold every time."""
        deadline = time.monotonic() + duration
        while True:
            dump = self.dump()
            if not predicate(dump):
                raise ClusterError(f"{what} stopped holding at epoch {dump['epoch']}; "
                                   f"{self.describe()}")
            if time.monotonic() >= deadline:
                return
            time.sleep(POLL)

    def epoch(self) -> int:
        return self.dump()["epoch"]

    def check_history(self, first: int, last: int | None = None) -> list[dict]:
        """Fetch every committed map from epoch `first` to `last` (default: the latest) with
        `fs dump <epoch>` and run check_map on each. Returns them, oldest first."""
        last = self.epoch() if last is None else last
        epochs = list(range(first, last + 1))
        replies = self.query_many([["fs", "dump", str(e)] for e in epochs])
        dumps = []
        for e, (rc, outs, outb) in zip(epochs, replies, strict=True):
            if rc != 0:
                raise ClusterError(f"fs dump {e}: rc {rc}: {outs}")
            dump = json.loads(outb)
            check_map(dump)
            dumps.append(dump)
        return dumps

    def active_name(self, fs: str = "cephfs", rank: int = 0, dump: dict | None = None) -> str:
        """The name of the up:active holder of fs:rank (waits for one if dump is None)."""
        if dump is None:
            dump = self.wait_map(lambda d: active(d, fs, rank), DEFAULT_TIMEOUT,
                                 f"an active {fs}:{rank}")
        info = active(dump, fs, rank)
        if info is None:
            raise ClusterError(f"{fs}:{rank} is not active at epoch {dump['epoch']}")
        return info["name"]

    # -- teardown
    def destroy(self, timeout: float = 10.0) -> list[str]:
        """SIGKILL and reap every process of this cluster. Returns what it had to kill."""
        targets: dict[int, str] = {}
        for d in self.daemons.values():
            with contextlib.suppress(ClusterError):
                if d.alive():
                    targets[d.pid] = d.name
        rundir = self.dir / "run"
        if rundir.is_dir():
            for f in rundir.glob("*.pid"):
                pid = read_pid(f)
                if pid and pid_alive(pid) and f"{self.dir}{os.sep}" in cmdline(pid):
                    targets.setdefault(pid, f.stem)
        for pid in pids_mentioning(f"{self.dir}{os.sep}"):
            if pid_alive(pid):
                targets.setdefault(pid, cmdline(pid)[:80])
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for d in self.daemons.values():
            if d.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    d.proc.wait(timeout)
        wait_for(lambda: not any(pid_alive(p) for p in targets), timeout,
                 "every process of the cluster to die")
        return [f"{name} (pid {pid})" for pid, name in targets.items()]

    def log_tails(self, lines: int = 30) -> str:
        out = []
        for f in sorted((self.dir / "out").glob("*.log")):
            tail = f.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"----- {f.name} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(out)


async def _commands(mon_host: str, commands: list[list[str]], fmt: str,
                    timeout: float, auth: str = "") -> list[tuple[int, str, str]]:
    try:
        with trio.fail_after(timeout):
            async with AdminClient.open(mon_host, timeout=timeout, hunt_interval=0.05,
                                        auth=auth) as admin:
                return [await admin.command(words, fmt) for words in commands]
    except trio.TooSlowError:
        raise MonUnreachable(f"no answer from the monitor within {timeout:g}s") from None
