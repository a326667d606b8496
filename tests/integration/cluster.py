"""The real-process cluster of the integration tests is the one `bench/` uses too:
`client/localcluster.py` (Cluster, Daemon), with `client/procs.py` (processes, pid files,
`mdsemu` runs, polling) and `client/fsdump.py` (reading and checking `fs dump` JSON). The
tests import these names from here."""

from __future__ import annotations

from client.fsdump import (
    ClusterError,
    active,
    all_active,
    check_map,
    filesystems,
    follower,
    holder,
    info_by_gid,
    info_by_name,
    infos,
    mdsmap,
    standby_names,
)
from client.localcluster import DEFAULT_TIMEOUT, FAST_GRACE, Cluster, Daemon
from client.procs import (
    MDSEMU,
    POLL,
    clean_env,
    cmdline,
    free_port,
    pid_alive,
    pids_mentioning,
    proc_state,
    read_pid,
    run_cli,
    wait_for,
)

__all__ = ["DEFAULT_TIMEOUT", "FAST_GRACE", "MDSEMU", "POLL", "Cluster", "ClusterError",
           "Daemon", "active", "all_active", "check_map", "clean_env", "cmdline", "filesystems",
           "follower", "free_port", "holder", "info_by_gid", "info_by_name", "infos", "mdsmap",
           "pid_alive", "pids_mentioning", "proc_state", "read_pid", "run_cli", "standby_names",
           "wait_for"]
