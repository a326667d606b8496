"""`mdsemu tell mds.<who> <command>`: what a running MDS reports about itself (like Ceph's
`ceph tell mds.X status|session ls|client ls`). Pure: it reads a snapshot of the daemon."""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass, field

from common import states


@dataclass
class Session:
    """A client connected to this daemon (sessions deepen with reconnect and eviction)."""

    entity: str
    addr: str
    opened: float  # monotonic
    requests: int = 0
    state: str = "open"
    metadata: dict = field(default_factory=dict)


def _session_json(s: Session, now: float) -> dict:
    num = int(s.entity.split(".", 1)[1]) if s.entity.split(".", 1)[1].isdigit() else 0
    return {
        "id": num,
        "entity": {"name": {"type": "client", "num": num}, "addr": {"addr": s.addr}},
        "state": s.state,
        "num_leases": 0,
        "num_caps": 0,
        "request_load_avg": s.requests,
        "uptime": round(now - s.opened, 3),
        "inst": f"{s.entity} v1:{s.addr}",
        "client_metadata": s.metadata,
    }


def run(args: list[str], fmt: str, daemon, now: float) -> tuple[int, str, str]:
    """Answer one command: (rc, outs, outb); rc is 0 or a negative errno."""
    words = " ".join(args)
    sm = daemon.sm
    if words == "status":
        fs = daemon.fsmap.fs_of(daemon.gid) if daemon.fsmap else None
        out = {
            "cluster_fsid": daemon.fsid,
            "whoami": sm.rank if sm else -1,
            "id": daemon.gid,
            "want_state": states.name(sm.want_state if sm else states.BOOT),
            "state": states.name(daemon.state),
            "fs_name": fs.fs_name if fs else "",
            "mdsmap_epoch": sm.effective_epoch if sm else 0,
            "osdmap_epoch": daemon.osdmap.epoch,
            "osdmap_epoch_barrier": daemon.data.store.min_epoch if daemon.data else 0,
            "uptime": round(now - daemon.started, 3),
        }
    elif words in ("session ls", "client ls", "session list", "client list"):
        out = [_session_json(s, now) for s in sorted(daemon.sessions.values(),
                                                      key=lambda s: s.entity)]
    else:
        return -errno.EINVAL, f"unrecognized command '{words}'", ""
    text = json.dumps(out, indent=4) if fmt != "json" else json.dumps(out, separators=(",", ":"))
    return 0, "", text
