"""A whole cluster inside one trio.run: the real MonServer and MDSDaemon code over real
sockets on 127.0.0.1, so that tests can run under the autojump clock (a 15 s grace costs no
real time). A "kill" cancels a daemon without a goodbye, as kill -9 would."""

from __future__ import annotations

import json

import trio

from client.admin import AdminClient
from common.config import Config
from common.fsmap import FSMap
from mds.daemon import MDSDaemon
from mon.server import MonServer


class MDSRunner:
    """Runs one named MDS; restarts it after a respawn, like the re-exec of the real process."""

    def __init__(self, cluster: Cluster, name: str, options: dict) -> None:
        self.cluster = cluster
        self.name = name
        self.options = options
        self.daemon: MDSDaemon | None = None
        self.scope: trio.CancelScope | None = None
        self.respawns = 0
        self.reasons: list[str] = []
        self.config: Config | None = None

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self.config = Config(f"mds.{self.name}", overrides=self.cluster.options(self.options))
        with trio.CancelScope() as self.scope:
            started = False
            while True:
                self.daemon = MDSDaemon(self.config)
                async with trio.open_nursery() as nursery:
                    await nursery.start(self.daemon.run)
                    if not started:
                        started = True
                        task_status.started(self)
                if self.daemon.respawn_reason is None:
                    return
                self.respawns += 1
                self.reasons.append(self.daemon.respawn_reason)

    def kill(self) -> None:
        self.scope.cancel()

    @property
    def gid(self) -> int:
        return self.daemon.gid


class Cluster:
    def __init__(self, nursery: trio.Nursery, data_dir: str, profile: str | None = None,
                 mon_options: dict | None = None) -> None:
        self.nursery = nursery
        self.data_dir = data_dir
        self.profile = profile
        self.mon_options = mon_options or {}
        self.port = 0
        self.mon: MonServer | None = None
        self.mon_scope: trio.CancelScope | None = None
        self.mds: dict[str, MDSRunner] = {}

    def options(self, extra: dict | None = None) -> dict:
        opts = {"mon_host": f"127.0.0.1:{self.port}", "mon_data": f"{self.data_dir}/mon"}
        if self.profile:
            opts["mdsemu_profile"] = self.profile
        opts.update(extra or {})
        return opts

    async def start_mon(self) -> None:
        async def run(task_status=trio.TASK_STATUS_IGNORED):
            with trio.CancelScope() as self.mon_scope:
                config = Config("mon.a", overrides=self.options(self.mon_options))
                self.mon = MonServer(config)
                await self.mon.run(task_status=task_status)

        self.port = await self.nursery.start(run)

    async def start_osd(self) -> None:
        """The metadata pool's osd (osd.0); returns once the OSDMap has its address."""
        from osd.server import OSDServer

        async def run(task_status=trio.TASK_STATUS_IGNORED):
            with trio.CancelScope() as self.osd_scope:
                config = Config("osd.0", overrides=self.options(
                    {"osd_data": f"{self.data_dir}/osd.0"}))
                self.osd = OSDServer(config)
                await self.osd.run(task_status=task_status)

        await self.nursery.start(run)
        await self.wait_for(lambda: self.mon.core.osdmap.osd_addrs, what="osd.0 to boot")

    def stop_mon(self) -> None:
        self.mon_scope.cancel()

    async def start_mds(self, name: str, **options) -> MDSRunner:
        runner = MDSRunner(self, name, options)
        self.mds[name] = runner
        await self.nursery.start(runner.run)
        return runner

    async def command(self, *words: str, fmt: str = "plain") -> tuple[int, str, str]:
        async with AdminClient.open(f"127.0.0.1:{self.port}", timeout=5) as admin:
            return await admin.command(list(words), fmt)

    async def ok(self, *words: str):
        rc, outs, outb = await self.command(*words, fmt="json")
        assert rc == 0, f"{' '.join(words)}: rc={rc} {outs}"
        return json.loads(outb) if outb else None

    @property
    def mon_host(self) -> str:
        """The monitor's address, as a conf's mon_host gives it."""
        return f"127.0.0.1:{self.port}"

    @property
    def fsmap(self) -> FSMap:
        return self.mon.core.fsmap

    def holder_name(self, fs_name: str = "cephfs", rank: int = 0, state: str = "up:active"):
        fs = self.fsmap.fs_by_name(fs_name)
        info = fs.holder(rank) if fs else None
        if info is None or info.state != _state(state):
            return None
        return info.name

    async def past_new_quorum(self) -> None:
        """T3: wait until the monitor's new-quorum window (mds_beacon_mon_down_grace from its
        start) is over, so that a silent daemon is failed after the ordinary grace."""
        down_grace = self.mon.config.get("mds_beacon_mon_down_grace")
        await self.wait_for(
            lambda: trio.current_time() - self.mon.core.beacons.quorum_since >= down_grace,
            what="the end of the new-quorum window (T3)")

    async def wait_for(self, predicate, timeout: float = 120.0, what: str = "condition"):
        """Poll (in virtual time under autojump) until predicate() is truthy."""
        with trio.move_on_after(timeout):
            while True:
                value = predicate()
                if value:
                    return value
                await trio.sleep(0.05)
        from common.summary import mds_stat_plain

        raise AssertionError(f"timed out waiting for {what}; mds stat: "
                             f"{mds_stat_plain(self.fsmap)}")


def _state(name: str) -> int:
    from common import states

    return states.from_name(name)


async def cephfs_cluster(nursery: trio.Nursery, data_dir: str, mds: str = "",
                         **options) -> Cluster:
    """Fast profile: mon, osd.0, fs cephfs, then MDS daemons named by the letters of `mds`,
    each in the map before the next starts.
    With daemons, it returns once rank 0 is active and the new-quorum window (T3) is over."""
    c = Cluster(nursery, data_dir, profile="fast")
    await c.start_mon()
    await c.start_osd()
    await c.ok("fs", "new", "cephfs", "cephfs_metadata", "cephfs_data")
    for name in mds:  # one at a time: the first named takes rank 0 (boots are batched)
        await c.start_mds(name, **options)
        await c.wait_for(lambda n=name: any(i.name == n for i in c.fsmap.all_infos()),
                         what=f"mds.{name} in the map")
    if mds:
        await c.wait_for(lambda: c.holder_name(), what="rank 0 active")
        await c.past_new_quorum()
    return c


async def open_session(conn, addr: str = "", **metadata) -> None:
    """Open a client session on an MDS connection (request_open; C1); `metadata` is the
    client's (e.g. hostname)."""
    import random

    from common.messages import ClientSession

    addr = addr or f"127.0.0.1:0/{random.randint(1, 2**31 - 1)}"
    await conn.send(ClientSession("request_open", metadata={"addr": addr, **metadata}))
    reply = await conn.recv()
    assert isinstance(reply, ClientSession) and reply.op == "open", reply


async def mds_request(cluster: Cluster, op: str, args: dict, fs_name: str = "cephfs",
                      tid: int = 1, entity: str = "client.test"):
    """Send one request to rank 0's holder (no retries: tests that want them use FSClient)."""
    from common.messages import ClientRequest, ClientSession
    from common.net import connect, parse_hostport

    info = cluster.fsmap.fs_by_name(fs_name).holder(0)
    host, port = parse_hostport(info.addr.split("/")[0])
    conn, _ = await connect(host, port, entity)
    try:
        await open_session(conn)
        await conn.send(ClientRequest(tid=tid, op=op, args=args))
        reply = await conn.recv()
        if reply.rc == 0 and not reply.safe:  # an unsafe (early) reply: wait for the safe one,
            await conn.send(ClientSession("request_flush_mdlog"))  # flushed now (Ceph's client)
        while reply.rc == 0 and not reply.safe:
            reply = await conn.recv()
        return reply
    finally:
        await conn.aclose()
