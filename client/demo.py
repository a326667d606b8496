"""`make demo` / `mdsemu demo`: a local cluster in the foreground with a live view.

The view redraws on every new map or cluster-log line: the `fs status` table, the grace
database of the NFS heads (`--nfs N`), the health line and the latest cluster-log lines. Ctrl-C stops every daemon cleanly (vstop).
"""

from __future__ import annotations

import argparse
import errno
import os
import signal

import trio
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from client import vstart
from client.admin import AdminClient
from client.fsclient import FSClient, FSClientError
from client.rados import Rados, RadosError
from common import config as cfg
from common import log as logsetup
from common import render
from common.auth import hello_key
from common.net import use_auth
from nfs import grace
from nfs.grace_tool import read as read_grace
from nfs.vstart import NAMESPACE as NFS_NAMESPACE
from vip import view as vipview

LOG_LINES = 12


async def live_view(conf: str, d: str) -> None:
    config = cfg.Config("client.admin", cfg.load_conf(conf))
    use_auth(hello_key(config))  # cephx (vstart's default): every session below uses it
    recent: list[str] = []
    hint = Text.from_markup(
        "[bold]Try, in another terminal:[/]\n"
        f"  export CEPH_CONF={conf}\n"
        f"  kill -9 $(cat {d}/run/mds.a.pid)     [dim]# the active? a standby takes over[/]\n"
        f"  kill -STOP $(cat {d}/run/mds.b.pid)  [dim]# laggy, replaced; -CONT: respawns[/]\n"
        "  mdsemu fs set cephfs max_mds 2       mdsemu mds fail 0       mdsemu health detail\n"
        "[dim]Ctrl-C stops the cluster.[/]"
    )
    async with AdminClient.open(config.get("mon_host"), timeout=10) as admin, \
            Rados.connect(config) as rados, trio.open_nursery() as nursery:
        # the grace database of `vstart --nfs N` (nfs/vstart.py): shown once it exists
        grace_io = rados.ioctx("cephfs_metadata", NFS_NAMESPACE)
        nursery.start_soon(client_load, config.get("mon_host"))
        nursery.start_soon(_tick, admin)
        await admin.subscribe("fsmap", "log")
        with Live(auto_refresh=False, screen=False) as live:
            async for msg in admin.pushes:
                for e in getattr(msg, "entries", []):
                    if e["level"] != "DBG":
                        recent.append(render.log_line(e))
                del recent[:-LOG_LINES]
                _, _, status = await admin.command(["fs", "status"])
                _, _, health = await admin.command(["health"])
                nfs = []
                with trio.move_on_after(1.0):  # the osd may be down: redraw without it
                    try:
                        db, _ = await read_grace(grace_io, grace.DEFAULT_OID)
                        nfs = [Panel(Text(grace.dump(db) + grace.summary(db)),
                                     title="nfs grace database (cephfs_metadata/ganesha)")]
                    except RadosError:
                        pass  # no NFS heads
                parts = [Panel(Text(status), title="fs status"), *nfs,
                         Text(health, style="bold")]
                vips = vipview.rows(await trio.to_thread.run_sync(vipview.collect, d))
                if vips:  # keepalived daemons run (vstart --ingress): who holds each VIP
                    parts.append(Panel(Text("\n".join(vips)), title="virtual IPs"))
                live.update(Group(
                    *parts,
                    Panel(Text("\n".join(recent)), title="cluster log"),
                    hint,
                ), refresh=True)


async def _tick(admin: AdminClient) -> None:
    """Redraw once a second too, so the request rates move between map changes."""
    while True:
        await trio.sleep(1)
        admin.push_send.send_nowait(None)


async def client_load(mon_host: str, rate: float = 20.0) -> None:
    """A small steady client load (mkdir, create, rename, unlink) that rides out failovers."""
    async with FSClient.open(mon_host, fs_name="cephfs", timeout=3600) as fs:
        try:
            await fs.mkdir("/demo")
        except FSClientError:
            pass
        i = 0
        while True:
            try:
                await fs.create(f"/demo/f{i}")
                if i % 4 == 3:
                    await fs.rename(f"/demo/f{i}", f"/demo/r{i}")
                if i % 8 == 7:
                    await fs.unlink(f"/demo/r{i - 4}")
            except FSClientError:
                pass
            i += 1
            await trio.sleep(1 / rate)


def demo(a: argparse.Namespace) -> int:
    a.new = True
    rc = vstart.vstart(a)
    if rc != 0:
        vstart.vstop(a.dir)
        return rc
    d = os.path.abspath(a.dir)
    conf = os.path.join(d, "ceph.conf")
    logsetup.setup("json", os.path.join(d, "out", "client.demo.log"))  # keep the screen clean
    try:
        trio.run(live_view, conf, d)
    except* KeyboardInterrupt:  # Ctrl-C, also when it surfaces through a nursery
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        vstart.vstop(a.dir)
    return 0


def main(argv: list[str]) -> int:
    """`mdsemu demo [vstart's options]`."""
    a = vstart.parse(argv)
    return errno.EINVAL if a is None else demo(a)
