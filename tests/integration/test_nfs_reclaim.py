"""What the MDS does for the NFS heads (issue 11 item 5), with real processes: LOCK takes a
CephFS lock through the head's session, so a lock held through a head that was killed -9 is
refused on the other head (NFS4ERR_DENIED, through the MDS) until the restarted head, once
every head enforces the grace period, resets its previous incarnation's session
(RECLAIM_RESET); its client reclaims under the new session. A head that stays down past its
session timeout (mdsemu_nfs_session_timeout: 5 s in the fast profile, Ganesha's 300 s
otherwise) has its session evicted by the MDS, and its locks go. An MDS failover keeps the
heads' locks (journaled, and re-sent by the heads' reconnect)."""

from __future__ import annotations

import subprocess
import time

import pytest
import trio

from nfs.client import NFSClient
from nfs.nfs4 import TO_EOF, NFS4Error
from tests.integration.cluster import MDSEMU, wait_for
from tests.integration.test_nfs_heads import DB, GRACE, RULE, Heads, expect

pytestmark = [pytest.mark.processes, pytest.mark.timeout(150)]


def _heads(cluster_factory, *vstart: str) -> Heads:
    c = cluster_factory()
    c.vstart("--mds", "1", *vstart)
    res = subprocess.run([*GRACE, "-c", str(c.conf_path), *DB, "add", "a", "b"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return Heads(c)


def _settle(h: Heads) -> None:
    h.start("a")
    h.wait_dump(f"cur=2 rec=0\n{RULE}\na\t  \nb\t E\n")
    h.start("b")
    h.wait_dump(f"cur=3 rec=0\n{RULE}\na\t  \nb\t  \n")


async def _listening(addr: str) -> None:
    host, port = addr.rsplit(":", 1)
    with trio.fail_after(30):
        while True:
            try:
                stream = await trio.open_tcp_stream(host, int(port))
                await stream.aclose()
                return
            except OSError:
                await trio.sleep(0.1)


async def _wait_dump(h: Heads, expected: str, *clients: NFSClient) -> None:
    """Wait for the grace database to read `expected`, renewing the clients' leases (4 s)."""
    with trio.fail_after(30):
        while await trio.to_thread.run_sync(h.dump) != expected:
            for cl in clients:
                await cl.call("sequence")
            await trio.sleep(0.2)


def _clog(h: Heads) -> str:
    return h.c.cli("log", "last", "100").stdout


WRITE_ALL = {"type": "write", "offset": 0, "length": TO_EOF}


def test_kill_9_lock_denied_on_the_other_head_until_the_reset_then_reclaimed(cluster_factory):
    h = _heads(cluster_factory)
    try:
        # only the reset may free the dead head's lock here, not its session timing out
        h.c.cli("fs", "set", "cephfs", "session_autoclose", "120", check=True)
        with open(h.c.conf_path, "a") as conf:
            conf.write("\n[client.nfs.a]\nmdsemu_nfs_session_timeout = 120\n")
        _settle(h)

        async def hold() -> None:
            async with NFSClient.connect(h.addr("a")) as x, \
                    NFSClient.connect(h.addr("b")) as y:
                await x.mount("client-x")
                await x.call("reclaim_complete")
                sx = (await x.call("open", path="/f", create=True))["stateid"]
                await x.call("lock", stateid=sx, **WRITE_ALL)
                await y.mount("client-y")
                await y.call("reclaim_complete")
                sy = (await y.call("open", path="/f"))["stateid"]
                e = await expect("NFS4ERR_DENIED", y.call("lock", stateid=sy, **WRITE_ALL))
                assert e.denied["owner"].startswith("client.")  # a CephFS session holds it

        trio.run(hold)
        h.kill("a")

        async def while_down_and_back() -> None:
            async with NFSClient.connect(h.addr("b")) as y:
                await y.mount("client-y")
                sy = (await y.call("open", path="/f"))["stateid"]
                # the dead head's session still holds the lock in CephFS
                await expect("NFS4ERR_DENIED", y.call("lock", stateid=sy, **WRITE_ALL))
                assert "Evicting" not in _clog(h)
                h.start("a")
                await _wait_dump(h, f"cur=4 rec=3\n{RULE}\na\tNE\nb\t E\n", y)
                with trio.fail_after(30):  # b enforces: no new locks
                    while True:
                        try:
                            await y.call("lock", stateid=sy, **WRITE_ALL)
                        except NFS4Error as e:
                            if e.name == "NFS4ERR_GRACE":
                                break
                            assert e.name == "NFS4ERR_DENIED"
                        await trio.sleep(0.1)
                await _listening(h.addr("a"))  # once every head enforces and it reset
                async with NFSClient.connect(h.addr("a")) as x:
                    await x.mount("client-x")
                    sx = (await x.call("open", path="/f", claim="previous"))["stateid"]
                    await x.call("lock", stateid=sx, reclaim=True, **WRITE_ALL)
                    await x.call("reclaim_complete")
                    await _wait_dump(h, f"cur=4 rec=0\n{RULE}\na\t  \nb\t  \n", x, y)
                    # reclaimed under a's new session: still refused through the MDS
                    await expect("NFS4ERR_DENIED", y.call("lock", stateid=sy, **WRITE_ALL))
                    lk = await x.call("lock", stateid=sx, type="write", offset=0, length=1)
                    await x.call("locku", lock_stateid=lk["lock_stateid"], offset=0,
                                 length=TO_EOF)
                    await y.call("lock", stateid=sy, **WRITE_ALL)

        trio.run(while_down_and_back)
        assert "Evicting (and blocklisting) client session" in _clog(h)  # the reset
        assert "reclaim reset of the previous incarnation's session" in h.c.log("nfs.a")
    finally:
        h.stop_all()


def test_a_head_down_past_its_session_timeout_loses_its_locks(cluster_factory):
    h = _heads(cluster_factory)
    try:
        _settle(h)

        async def run() -> float:
            async with NFSClient.connect(h.addr("a")) as x:
                await x.mount("client-x")
                await x.call("reclaim_complete")
                sx = (await x.call("open", path="/g", create=True))["stateid"]
                await x.call("lock", stateid=sx, **WRITE_ALL)
            h.kill("a")
            t0 = time.monotonic()
            async with NFSClient.connect(h.addr("b")) as y:
                await y.mount("client-y")
                await y.call("reclaim_complete")
                sy = (await y.call("open", path="/g"))["stateid"]
                with trio.fail_after(60):
                    while True:  # "I/O hangs" until the MDS evicts the dead head's session
                        try:
                            await y.call("lock", stateid=sy, **WRITE_ALL)
                            return time.monotonic() - t0
                        except NFS4Error as e:
                            assert e.name == "NFS4ERR_DENIED", e
                        await trio.sleep(0.2)

        waited = trio.run(run)
        assert 3.0 < waited < 20.0, waited  # the fast profile's 5 s session timeout
        assert "evicting unresponsive client" in _clog(h)
    finally:
        h.stop_all()


def test_heads_locks_survive_an_mds_failover(cluster_factory):
    c = cluster_factory()
    c.vstart("--mds", "2", "--nfs", "2")
    ports = {n: int(next(line.split("=")[1].strip(" ;") for line in
                         (c.dir / f"ganesha.{n}.conf").read_text().splitlines()
                         if "NFS_Port" in line)) for n in "ab"}

    async def run() -> None:
        async with NFSClient.connect(f"127.0.0.1:{ports['a']}") as x, \
                NFSClient.connect(f"127.0.0.1:{ports['b']}") as y:
            await x.mount("client-x")
            await x.call("reclaim_complete")
            sx = (await x.call("open", path="/f", create=True))["stateid"]
            await x.call("lock", stateid=sx, **WRITE_ALL)
            old = await trio.to_thread.run_sync(c.active_name)
            res = await trio.run_process([*MDSEMU, "-c", str(c.conf_path), "mds", "fail", old],
                                         capture_stdout=True, capture_stderr=True)
            assert res.returncode == 0, res.stderr
            await trio.to_thread.run_sync(
                lambda: wait_for(lambda: c.active_name() not in ("", old), 30,
                                 "a new active"))
            await y.mount("client-y")
            await y.call("reclaim_complete")
            sy = (await y.call("open", path="/f"))["stateid"]  # waits for the new active
            await expect("NFS4ERR_DENIED", y.call("lock", stateid=sy, **WRITE_ALL))
            await x.call("sequence")
            lk = await x.call("lock", stateid=sx, type="write", offset=0, length=1)
            await x.call("locku", lock_stateid=lk["lock_stateid"], offset=0, length=TO_EOF)
            await y.call("lock", stateid=sy, **WRITE_ALL)

    trio.run(run)
