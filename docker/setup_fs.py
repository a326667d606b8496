#!/opt/mdsemu/bin/python
"""`mdsemu-setup`: compose.yaml's one-shot `setup` service.

On the cluster's first start it creates the file system ($MDSEMU_FS, pools <fs>_metadata and
<fs>_data) once the monitor answers and mds.$MDSEMU_FIRST_MDS (a) stands by, so that this
daemon takes rank 0 (`docker compose kill mds-a` then kills the active). On every start it
waits for rank 0 to be up:active, then applies max_mds ($MDSEMU_MAX_MDS) and
allow_standby_replay ($MDSEMU_STANDBY_REPLAY), and exits 0. The other MDS services and the
client wait for it (depends_on: service_completed_successfully). With cephx, it first imports
the key file of any entity the monitor's auth database lacks (client/compose_auth.py).

It only uses the `mdsemu` command, as a user would, and logs JSON lines like the daemons.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime


def log(event: str, level: str = "info", **kv) -> None:
    rec = {"event": event, "entity": "setup", "level": level, **kv,
           "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
    print(json.dumps(rec), file=sys.stderr, flush=True)


def env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def mdsemu(*words: str) -> tuple[int, str, str]:
    try:
        p = subprocess.run(["mdsemu", "--connect-timeout", "5", *words],
                           capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return 110, "", "timed out"
    return p.returncode, p.stdout, p.stderr.strip()


def fs_dump() -> dict | None:
    rc, out, _ = mdsemu("fs", "dump", "-f", "json")
    try:
        return json.loads(out) if rc == 0 else None
    except ValueError:
        return None


def import_missing_keys() -> bool:
    """With cephx: `auth import -i` the key files of /etc/ceph/keys whose entity the monitor
    does not know (an `auth del`, or an entity a newer compose.yaml added), so that every
    daemon's key is the monitor's."""
    if env("MDSEMU_AUTH", "cephx").lower() != "cephx":
        return True
    from client import compose_auth

    rc, out, err = mdsemu("auth", "ls", "-f", "json")
    try:
        known = {e["entity"] for e in json.loads(out)["auth_dump"]} if rc == 0 else None
    except (ValueError, KeyError):
        known = None
    if known is None:
        log("auth ls failed", level="error", error=err, rc=rc)
        return False
    wanted = compose_auth.entities(fs=env("MDSEMU_FS", "cephfs"))
    for entity in compose_auth.missing_from(known, compose_auth.read_files(wanted)):
        rc, _, err = mdsemu("auth", "import", "-i", compose_auth.key_path(entity))
        if rc != 0:
            log("auth import failed", level="error", name=entity, error=err, rc=rc)
            return False
        log("imported a key the monitor did not have", name=entity)
    return True


def rank0(fsmap: dict, fs_name: str) -> dict | None:
    """The info of the daemon holding rank 0 of fs_name, if any."""
    for fs in fsmap["filesystems"]:
        mdsmap = fs["mdsmap"]
        if mdsmap["fs_name"] == fs_name:
            gid = mdsmap["up"].get("mds_0")
            return mdsmap["info"].get(f"gid_{gid}") if gid is not None else None
    return None


def main() -> int:
    fs_name = env("MDSEMU_FS", "cephfs")
    max_mds = env("MDSEMU_MAX_MDS", "1")
    standby_replay = env("MDSEMU_STANDBY_REPLAY", "false").lower()
    first = env("MDSEMU_FIRST_MDS", "a")
    deadline = time.monotonic() + float(env("MDSEMU_SETUP_TIMEOUT", "300"))

    def wait(what: str, check, limit: float | None = None) -> object:
        until = deadline if limit is None else min(deadline, time.monotonic() + limit)
        said = False
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > until:
                return None
            if not said:
                log(f"waiting for {what}")
                said = True
            time.sleep(0.5)

    fsmap = wait("the monitor", fs_dump)
    if fsmap is None:
        log("the monitor did not answer", level="error")
        return 1
    if not import_missing_keys():
        return 1
    if not any(fs["mdsmap"]["fs_name"] == fs_name for fs in fsmap["filesystems"]):
        def first_standby() -> bool:
            m = fs_dump()
            return bool(m) and any(s["name"] == first for s in m["standbys"])

        if not wait(f"mds.{first} to stand by, so that it takes rank 0", first_standby, 60):
            log(f"mds.{first} is not there; creating the file system anyway", level="warning")
        rc, _, err = mdsemu("fs", "new", fs_name, f"{fs_name}_metadata", f"{fs_name}_data")
        if rc != 0:
            log("fs new failed", level="error", error=err, rc=rc)
            return 1
        log("created the file system", fs=fs_name)
    else:
        log("the file system exists", fs=fs_name, fsmap_epoch=fsmap["epoch"])

    def active() -> dict | None:
        m = fs_dump()
        info = rank0(m, fs_name) if m else None
        return info if info and info["state"] == "up:active" else None

    info = wait("rank 0 to be up:active", active)
    if info is None:
        log("rank 0 did not become active", level="error", fs=fs_name)
        return 1
    log("rank 0 is up:active", fs=fs_name, mds=f"mds.{info['name']}", gid=info["gid"])
    for var, value in (("max_mds", max_mds), ("allow_standby_replay", standby_replay)):
        rc, _, err = mdsemu("fs", "set", fs_name, var, value)
        if rc != 0:
            log(f"fs set {var} failed", level="error", error=err, rc=rc)
            return 1
        log("set", fs=fs_name, var=var, value=value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
