"""Processes of a local cluster: ports, pid files, /proc, the conf file, starting a daemon,
running `mdsemu`, polling with a deadline. Shared by `mdsemu vstart|vstop` (client/vstart.py)
and the harness of the integration tests and benchmarks (client/localcluster.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from client.fsdump import ClusterError
from common.ports import free_tcp_port

POLL = 0.05
PYTHON = sys.executable
_MDSEMU = shutil.which("mdsemu", path=str(Path(sys.executable).parent))
MDSEMU = [_MDSEMU] if _MDSEMU else [PYTHON, "-m", "client"]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_tcp_port("127.0.0.1")


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def proc_state(pid: int) -> str:
    """The one-letter state in /proc/<pid>/stat (R, S, T for stopped, Z, ...), or '' if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return ""


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ancestors() -> set[int]:
    """This process and its parents (never to be killed as a cluster's leftovers)."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def pids_mentioning(text: str) -> list[int]:
    """Processes other than us and our parents whose command line contains `text` (e.g. a
    cluster's unique directory followed by a slash)."""
    found = []
    mine = _ancestors()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in mine and text in cmdline(int(entry)):
            found.append(int(entry))
    return found


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             describe: Callable[[], str] | None = None, interval: float = POLL) -> Any:
    """Poll `predicate` until it returns something truthy (returned) or `timeout` passes.

    Raises ClusterError naming `what`, the last value seen and `describe()` (e.g. the current
    `mds stat`). Exceptions from the predicate count as "not yet" and are reported too.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
        except ClusterError:
            raise
        except Exception as e:  # not ready yet (e.g. the mon is still starting)
            last = f"{type(e).__name__}: {e}"
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            extra = ""
            if describe is not None:
                try:
                    extra = f"; now: {describe()}"
                except Exception as e:
                    extra = f"; (could not describe the cluster: {e})"
            raise ClusterError(f"timed out after {timeout:g}s waiting for {what} "
                               f"(last seen: {_short(last)}){extra}")
        time.sleep(interval)


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def alive(pid: int) -> bool:
    """`pid` runs (a zombie child of ours is reaped and counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done != 0:
            return False
    except ChildProcessError:
        pass
    # A zombie that is not our child (vstop runs after vstart has exited, so the daemons are
    # init's children, reaped whenever init gets round to it) is gone too.
    return proc_state(pid) not in ("Z", "X")


def ours(pid: int, d: str) -> bool:
    """The pid is alive and is a daemon of the cluster in `d` (its command line names the
    cluster's ceph.conf), not an unrelated process that reuses a stale pid file's number."""
    if not alive(pid):
        return False
    cmd = cmdline(pid)
    return proc_state(pid) == "" or any(os.path.join(str(d), f) in cmd
                                        for f in ("ceph.conf", "keepalived."))  # no ceph.conf


def running(d: str) -> dict[str, int]:
    """The daemons of the cluster in `d` that are alive, by name, from their pid files."""
    rundir = os.path.join(d, "run")
    found = {}
    if os.path.isdir(rundir):
        for fn in sorted(os.listdir(rundir)):
            if fn.endswith(".pid"):
                pid = read_pid(Path(rundir) / fn)
                if pid and ours(pid, d):
                    found[fn[:-4]] = pid
    return found


CEPHX_DEFAULT = True  # vstart, demo and the test harness run with cephx, as Ceph's vstart.sh
MDS_KEYS = "abcdefghijklmnopqrstuvwxyz"  # vstart's MDS names: each gets its key up front
OSD_KEYS = 4


def write_keyring(d: Path | str) -> Path:
    """DIR/keyring, as Ceph's vstart.sh writes it with cephx: mon., client.admin and a key for
    every daemon vstart may start, each with its caps (0600). Kept if it exists."""
    from common import keyring
    from mon.auth_monitor import ADMIN_CAPS, DAEMON_CAPS
    from nfs.vstart import nfs_caps

    path = Path(d) / "keyring"
    if path.exists():
        return path
    entries = {"mon.": keyring.Entry(keyring.new_key(), dict(DAEMON_CAPS["mon"])),
               "client.admin": keyring.Entry(keyring.new_key(), dict(ADMIN_CAPS))}
    for i in range(OSD_KEYS):
        entries[f"osd.{i}"] = keyring.Entry(keyring.new_key(), dict(DAEMON_CAPS["osd"]))
    for name in MDS_KEYS:
        entries[f"mds.{name}"] = keyring.Entry(keyring.new_key(), dict(DAEMON_CAPS["mds"]))
    for name in MDS_KEYS:  # NFS heads (vstart --nfs): the grace database of the default fs
        caps = nfs_caps("cephfs_metadata")
        entries[f"client.nfs.{name}"] = keyring.Entry(keyring.new_key(),
                                                      dict(zip(caps[::2], caps[1::2], strict=True)))
    keyring.write(str(path), entries)
    return path


def write_conf(d: Path | str, port: int, profile: str,
               sections: dict[str, dict[str, str]] | None = None, fsid: str = "",
               cephx: bool = False) -> Path:
    """DIR/ceph.conf for a cluster on 127.0.0.1:`port`: daemons log JSON, data and admin
    sockets under DIR; `sections` adds or overrides options ({"mds": {...}, ...}). With
    `cephx`, DIR/keyring too (`write_keyring`), and the conf requires cephx."""
    d = Path(d)
    auth = {"auth_cluster_required": "cephx", "keyring": str(write_keyring(d))} if cephx \
        else {}
    conf: dict[str, dict[str, str]] = {
        "global": {**({"fsid": fsid} if fsid else {}), "mon_host": f"127.0.0.1:{port}",
                   "mdsemu_profile": profile, "log_format": "json",
                   "admin_socket": str(d / "run" / "$name.asok"), **auth},
        "mon": {"mon_data": str(d / "mon.$id"),
                "mon_allow_pool_delete": "true"},  # as Ceph's vstart.sh sets it
        "osd": {"osd_data": str(d / "osd.$id")},
    }
    for name, opts in (sections or {}).items():
        conf.setdefault(name, {}).update(opts)
    path = d / "ceph.conf"
    path.write_text("".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in opts.items())
                            + "\n" for name, opts in conf.items()))
    return path


def pid_path(d: Path | str, name: str) -> Path:
    return Path(d) / "run" / f"{name}.pid"


def spawn(d: Path | str, kind: str, ident: str, conf: Path | str, *args: str,
          detach: bool = False) -> subprocess.Popen:
    """Start `python -m KIND -c CONF -i IDENT --pid-file DIR/run/KIND.IDENT.pid ARGS`, its
    output appended to DIR/out/KIND.IDENT.log. `detach`: in its own session, so that it
    outlives the caller (vstart) and a Ctrl-C of the terminal does not reach it."""
    name = f"{kind}.{ident}"
    with open(Path(d) / "out" / f"{name}.log", "ab") as out:
        return subprocess.Popen(
            [PYTHON, "-m", kind, "-c", str(conf), "-i", ident,
             "--pid-file", str(pid_path(d, name)), *args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=d, env=clean_env(),
            start_new_session=detach,
        )


def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CEPH_CONF", None)
    return env


def run_cli(argv: list[str], timeout: float = 30.0, env: dict | None = None
            ) -> subprocess.CompletedProcess:
    """Run `mdsemu ARGV` and capture its output as text."""
    return subprocess.run(MDSEMU + list(argv), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL,
                          env=env if env is not None else clean_env())
