"""The gateway head with the `fs` recovery backend, in one trio.run (autojump clock): a local
grace period of Grace_Period at start (none with Graceless), leases that expire, CephFS errors
as NFSv4 statuses, and bad requests answered, not crashing the head."""

from __future__ import annotations

import pytest
import trio

from common.config import Config
from nfs import ganesha_conf
from nfs.client import NFSClient
from nfs.daemon import NFSServer
from nfs.nfs4 import NFS4Error
from tests.inprocess.harness import Cluster

pytestmark = pytest.mark.timeout(60)

CONF = """NFSv4 {{ RecoveryBackend = fs; Grace_Period = 30; Lease_Lifetime = 10;
Graceless = {graceless}; }}
EXPORT {{ Export_ID = 1; Path = /; Pseudo = /; FSAL {{ Name = CEPH; }} }}"""


CLUSTER = {"profile": "fast", "fs": True, "mds": "a"}  # what conftest.cluster builds


async def head(c: Cluster, graceless: bool) -> NFSServer:
    gconf = ganesha_conf.load_text(CONF.format(graceless=str(graceless).lower()))
    config = Config("client.nfs.x", overrides=c.options())
    return await c.nursery.start(NFSServer(config, gconf, "x", port=0).run)


async def expect(name: str, coro) -> None:
    with pytest.raises(NFS4Error) as e:
        await coro
    assert e.value.name == name, e.value


async def test_local_grace_period_then_service(cluster, autojump_clock):
    server = await head(cluster, graceless=False)
    async with NFSClient.connect(f"127.0.0.1:{server.port}") as c:
        await c.mount("client-1")
        await c.call("reclaim_complete")
        await expect("NFS4ERR_GRACE", c.call("open", path="/f", create=True))
        await expect("NFS4ERR_NO_GRACE", c.call("open", path="/f", claim="previous"))
        t0 = trio.current_time()
        while True:  # renew the lease while waiting for the 30 s grace period to end
            await c.call("sequence")
            try:
                sid = (await c.call("open", path="/f", create=True))["stateid"]
                break
            except NFS4Error as e:
                assert e.name == "NFS4ERR_GRACE"
            await trio.sleep(2)
        assert 30 <= trio.current_time() - t0 < 40
        await c.call("lock", stateid=sid, type="write", offset=0, length=10)
        assert [n for n, _ in (await c.call("readdir", path="/"))["entries"]] == ["f"]
        await expect("NFS4ERR_NOENT", c.call("getattr", path="/nope"))
        await expect("NFS4ERR_EXIST", c.call("mkdir", path="/f"))
        await expect("NFS4ERR_INVAL", c.call("lock", stateid=sid, type="write"))
        await expect("NFS4ERR_OP_ILLEGAL", c.call("frobnicate"))


async def test_graceless_head_and_lease_expiry(cluster, autojump_clock):
    server = await head(cluster, graceless=True)
    async with NFSClient.connect(f"127.0.0.1:{server.port}") as c, \
            NFSClient.connect(f"127.0.0.1:{server.port}") as d:
        await c.mount("client-1")
        await c.call("reclaim_complete")
        sid = (await c.call("open", path="/f", create=True))["stateid"]
        await c.call("lock", stateid=sid, type="write", offset=0, length=10)
        await d.mount("client-2")
        await d.call("reclaim_complete")
        sd = (await d.call("open", path="/f"))["stateid"]
        with pytest.raises(NFS4Error) as e:
            await d.call("lock", stateid=sd, type="read", offset=5, length=1)
        assert e.value.name == "NFS4ERR_DENIED" and e.value.denied["owner"] == "client-1"
        for _ in range(10):  # d renews; c says nothing for 20 s: its lease (10 s) runs out
            await trio.sleep(2)
            await d.call("sequence")
        await expect("NFS4ERR_BADSESSION", c.call("sequence"))
        await d.call("lock", stateid=sd, type="read", offset=5, length=1)
        first = d.session
        await d.call("create_session", clientid=d.clientid)  # a second session of d
        await d.call("destroy_session")  # the one the request names
        await expect("NFS4ERR_BADSESSION", d.call("sequence"))
        assert server.state.sessions and first not in server.state.sessions
