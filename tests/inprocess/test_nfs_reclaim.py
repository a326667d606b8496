"""Two NFS heads over one CephFS with the rados_cluster grace database, in one trio.run
(autojump clock): LOCK takes a CephFS lock, so the heads conflict through the MDS; a killed
head's lock stays held by its old session until its next incarnation, once every head
enforces, resets that session (RECLAIM_RESET); its client reclaims under the new one.

Fast profile, with session_autoclose 60 s so that only the reset frees the lock here.
"""

from __future__ import annotations

import pytest
import trio

from client.rados import Rados
from common.config import Config
from nfs import ganesha_conf, grace
from nfs.client import NFSClient
from nfs.daemon import NFSServer
from nfs.grace_tool import read, update
from nfs.nfs4 import TO_EOF, NFS4Error
from tests.inprocess.harness import Cluster

pytestmark = pytest.mark.timeout(60)

CLUSTER = {"profile": "fast", "fs": True, "mds": "a",
           "mon_options": {"mds_session_autoclose": 60}}

CONF = """NFSv4 { RecoveryBackend = rados_cluster; Grace_Period = 20; Lease_Lifetime = 10; }
RADOS_KV { pool = nfs-ganesha; namespace = ganesha; }
EXPORT { Export_ID = 1; Path = /; Pseudo = /; FSAL { Name = CEPH; } }"""


class Head:
    """One head in its own cancel scope: `kill` is a kill -9 (no clean shutdown)."""

    def __init__(self, c: Cluster, nodeid: str, session_timeout: int = 300) -> None:
        self.c, self.nodeid, self.session_timeout = c, nodeid, session_timeout
        self.scope = trio.CancelScope()
        self.server: NFSServer | None = None

    async def start(self) -> NFSServer:
        config = Config(f"client.nfs.{self.nodeid}", overrides=self.c.options(
            {"mdsemu_nfs_session_timeout": self.session_timeout}))
        server = NFSServer(config, ganesha_conf.load_text(CONF), self.nodeid, port=0)

        async def run(task_status=trio.TASK_STATUS_IGNORED) -> None:
            with self.scope:
                await server.run(task_status=task_status)

        self.server = await self.c.nursery.start(run)
        return self.server

    def kill(self) -> None:
        self.scope.cancel()
        self.scope = trio.CancelScope()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.server.port}"


async def expect(name: str, coro) -> None:
    with pytest.raises(NFS4Error) as e:
        await coro
    assert e.value.name == name, e.value


async def out_of_grace(heads: list[Head], clients: list[NFSClient] = ()) -> None:
    """Wait for every head to leave its grace period, renewing the clients' leases."""
    with trio.fail_after(60):
        while any(h.server.state.in_grace for h in heads):
            for cl in clients:
                await cl.call("sequence")
            await trio.sleep(1)


async def grace_db_of_a_and_b(r: Rados):
    """The seed's `ganesha-rados-grace add a b`: the grace object, heads a and b members."""
    await r.pool_create(grace.DEFAULT_POOL)
    io = r.ioctx(grace.DEFAULT_POOL, "ganesha")
    await io.operate("grace", grace.create_ops())
    await update(io, "grace", lambda db: grace.add(db, ["a", "b"]))
    return io


async def test_a_killed_heads_lock_is_denied_then_reclaimed_after_the_reset(cluster,
                                                                           autojump_clock):
    c = cluster
    async with Rados.connect(Config("client.admin", overrides=c.options())) as r:
        io = await grace_db_of_a_and_b(r)
        a, b = Head(c, "a"), Head(c, "b")
        async with trio.open_nursery() as n:
            n.start_soon(a.start)
            n.start_soon(b.start)
        await out_of_grace([a, b])
        async with NFSClient.connect(a.addr) as x, NFSClient.connect(b.addr) as y:
            await x.mount("client-x")
            await x.call("reclaim_complete")
            sx = (await x.call("open", path="/f", create=True))["stateid"]
            await x.call("lock", stateid=sx, type="write", offset=0, length=TO_EOF)
            await y.mount("client-y")
            await y.call("reclaim_complete")
            sy = (await y.call("open", path="/f"))["stateid"]
            # the other head's client: refused through the MDS, not by y's head
            await expect("NFS4ERR_DENIED", y.call("lock", stateid=sy, type="read", offset=0,
                                                  length=1))
        a.kill()
        await trio.sleep(10)  # within the session timeout: the dead head's session holds it
        async with NFSClient.connect(b.addr) as y:
            await y.mount("client-y", verifier="2")  # rebooted: a new client id
            await y.call("reclaim_complete")
            sy = (await y.call("open", path="/f"))["stateid"]
            await expect("NFS4ERR_DENIED", y.call("lock", stateid=sy, type="write", offset=0,
                                                  length=TO_EOF))
            await a.start()  # the next incarnation: grace, b enforces, then the reset
            assert a.server.state.in_grace and (await read(io, "grace"))[0].rec != 0
            await c.wait_for(lambda: b.server.state.in_grace, what="b enforcing")
            await expect("NFS4ERR_GRACE", y.call("lock", stateid=sy, type="write", offset=0,
                                                  length=TO_EOF))
            async with NFSClient.connect(a.addr) as x:
                await x.mount("client-x")  # in the old recovery database: may reclaim
                sx = (await x.call("open", path="/f", claim="previous"))["stateid"]
                await x.call("lock", stateid=sx, type="write", offset=0, length=TO_EOF,
                             reclaim=True)
                await x.call("reclaim_complete")
                await out_of_grace([a, b], [x, y])
                await expect("NFS4ERR_DENIED", y.call("lock", stateid=sy, type="write",
                                                      offset=0, length=TO_EOF))
                lk = (await x.call("lock", stateid=sx, type="write", offset=0, length=10))
                await x.call("locku", lock_stateid=lk["lock_stateid"], offset=0,
                             length=TO_EOF)
                await y.call("lock", stateid=sy, type="write", offset=0, length=TO_EOF)
        a.kill()
        b.kill()


async def test_a_head_down_past_its_session_timeout_loses_its_locks_and_reclaims_conflict(
        cluster, autojump_clock):
    c = cluster
    async with Rados.connect(Config("client.admin", overrides=c.options())) as r:
        await grace_db_of_a_and_b(r)
        a, b = Head(c, "a", session_timeout=20), Head(c, "b")
        async with trio.open_nursery() as n:
            n.start_soon(a.start)
            n.start_soon(b.start)
        await out_of_grace([a, b])
        async with NFSClient.connect(a.addr) as x:
            await x.mount("client-x")
            await x.call("reclaim_complete")
            sx = (await x.call("open", path="/g", create=True))["stateid"]
            await x.call("lock", stateid=sx, type="write", offset=0, length=TO_EOF)
        a.kill()
        t0 = trio.current_time()
        async with NFSClient.connect(b.addr) as y:
            await y.mount("client-y")
            await y.call("reclaim_complete")
            sy = (await y.call("open", path="/g"))["stateid"]
            while True:  # the MDS evicts the dead head's session after its own timeout...
                try:
                    await y.call("lock", stateid=sy, type="write", offset=0, length=TO_EOF)
                    break
                except NFS4Error as e:
                    assert e.name == "NFS4ERR_DENIED"
                await trio.sleep(5)
                await y.call("sequence")
            # ... its own 20 s (mdsemu_nfs_session_timeout), before the autoclose (60 s)
            assert 18 < trio.current_time() - t0 < 30
            log = (await c.command("log", "last", "20"))[2]
            assert "evicting unresponsive client" in log
            # a comes back too late: its client may reclaim (a's old database), but the
            # lock is another's now
            await a.start()
            async with NFSClient.connect(a.addr) as x:
                await x.mount("client-x")
                sx = (await x.call("open", path="/g", claim="previous"))["stateid"]
                await expect("NFS4ERR_RECLAIM_CONFLICT", x.call(
                    "lock", stateid=sx, type="write", offset=0, length=TO_EOF, reclaim=True))
                await x.call("reclaim_complete")
                await out_of_grace([a, b], [x, y])
        a.kill()
        b.kill()
