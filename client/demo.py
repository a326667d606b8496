"""`make demo` / `mdsemu demo`: a local cluster in the foreground with a live view.

The view redraws on every new map or cluster-log line: the `fs status` table, the health line
and the latest cluster-log lines. Ctrl-C stops every daemon cleanly (vstop).
"""

from __future__ import annotations

import argparse
import os
import signal

import trio
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from client import vstart
from client.admin import AdminClient
from client.cli import format_log_entry
from common import config as cfg

LOG_LINES = 12


async def live_view(conf: str, d: str) -> None:
    config = cfg.Config("client.admin", cfg.load_conf(conf))
    recent: list[str] = []
    hint = Text.from_markup(
        "[bold]Try, in another terminal:[/]\n"
        f"  export CEPH_CONF={conf}\n"
        f"  kill -9 $(cat {d}/run/mds.a.pid)     [dim]# the active? a standby takes over[/]\n"
        f"  kill -STOP $(cat {d}/run/mds.b.pid)  [dim]# laggy, replaced; -CONT: respawns[/]\n"
        "  mdsemu fs set cephfs max_mds 2       mdsemu mds fail 0       mdsemu health detail\n"
        "[dim]Ctrl-C stops the cluster.[/]"
    )
    async with AdminClient.open(config.get("mon_host"), timeout=10) as admin:
        await admin.subscribe("fsmap", "log")
        with Live(auto_refresh=False, screen=False) as live:
            async for msg in admin.pushes:
                for e in getattr(msg, "entries", []):
                    if e["level"] != "DBG":
                        recent.append(format_log_entry(e))
                del recent[:-LOG_LINES]
                _, _, status = await admin.command(["fs", "status"])
                _, _, health = await admin.command(["health"])
                live.update(Group(
                    Panel(Text(status), title="fs status"),
                    Text(health, style="bold"),
                    Panel(Text("\n".join(recent)), title="cluster log"),
                    hint,
                ), refresh=True)


def demo(a: argparse.Namespace) -> int:
    a.new = True
    rc = vstart.vstart(a)
    if rc != 0:
        vstart.vstop(a.dir)
        return rc
    d = os.path.abspath(a.dir)
    conf = os.path.join(d, "ceph.conf")
    try:
        trio.run(live_view, conf, d)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        vstart.vstop(a.dir)
    return 0
