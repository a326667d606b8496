"""`mdsemu vstart --nfs 2 --ingress VIP:PORT` (issue 12 item 3): one mdsemu-keepalived per
NFS head with cephadm's ingress defaults; the NFS client works through the VIP, and when the
head behind it dies it reconnects through the VIP to the other head, is told its session and
client id are unknown there, and establishes new state. The dead head's CephFS session keeps
its lock in the MDS until it times out (mdsemu_nfs_session_timeout, 5 s in the fast profile;
Ganesha's 300 s: the "I/O hangs for five minutes" of this setup), so the client's new lock is
NFS4ERR_DENIED until then."""

from __future__ import annotations

import os
import random
import re
import signal
import time

import pytest
import trio

from common.net import ConnectionClosed
from nfs.client import NFSClient
from nfs.nfs4 import NFS4Error
from tests.integration.cluster import free_port, pid_alive, run_cli, wait_for
from vip import ingress, view
from vip import status as vipstatus

pytestmark = [pytest.mark.processes, pytest.mark.timeout(150)]


def _state(d, node: str) -> str | None:
    try:
        st = vipstatus.query(str(d / "run" / f"keepalived.{node}.sock"), timeout=2)
    except vipstatus.Unreachable:
        return None
    return st["vrrp"][0]["mdsemu"]["state"]


async def _expect(name: str, coro) -> None:
    with pytest.raises(NFS4Error) as e:
        await coro
    assert e.value.name == name, e.value


def test_ingress_nfs_client_moves_to_the_other_head_through_the_vip(cluster_factory):
    c = cluster_factory()
    vip = f"127.{random.randrange(100, 250)}.{random.randrange(1, 250)}.10"
    port = free_port()
    res = c.vstart("--mds", "1", "--nfs", "2", "--ingress", f"{vip}:{port}", timeout=120)
    assert f"vstart: ingress {vip}:{port} -> nfs.a (keepalived a, b;" in res.stdout
    d = c.dir
    for n in "ab":
        assert int((d / "run" / f"keepalived.{n}.pid").read_text()) > 0
    conf_a = (d / "keepalived.a.conf").read_text()
    conf_b = (d / "keepalived.b.conf").read_text()
    # cephadm's defaults (advert_int 1 in the ceph profile; the fast one uses 0.2)
    assert "state MASTER\n    priority 100\n" in conf_a
    assert "state BACKUP\n    priority 90\n" in conf_b
    assert "weight -20\n    interval 2\n    rise 2\n    fall 2\n" in conf_a
    assert "advert_int 0.2" in conf_a
    assert ingress.read_ingress(str(d)) == {"virtual_ip": vip, "port": port,
                                            "daemons": ["a", "b"]}
    assert (_state(d, "a"), _state(d, "b")) == ("MASTER", "BACKUP")
    # `nfs cluster info` as Ceph's mgr module shows a cluster behind an ingress: the VIP,
    # then the ingress's frontend port (no monitor_port: no haproxy, docs/nfs.md)
    head_ports = sorted(ingress.head_port(str(d / f"ganesha.{n}.conf")) for n in "ab")

    def info():
        return c.cli_json("nfs", "cluster", "info")

    wait_for(lambda: len(info().get("ganesha", {}).get("backend", [])) == 2, 30,
             "both heads in nfs cluster info", info)
    shown = info()["ganesha"]
    assert list(shown) == ["virtual_ip", "backend", "port"]
    assert (shown["virtual_ip"], shown["port"]) == (vip, port)
    assert sorted(b["port"] for b in shown["backend"]) == head_ports
    # the live view's line (mdsemu demo): who holds the VIP
    assert view.rows(view.collect(str(d))) == [
        f"{vip}:{port}  held by a ({ingress.daemon_ips(vip, 1)[0]}, priority 100)  "
        "[a MASTER 100, b BACKUP 90]"]
    head_a = int((d / "run" / "nfs.a.pid").read_text())

    async def scenario() -> tuple[float, float]:
        async with NFSClient.connect(f"{vip}:{port}") as cl:
            await cl.mount("client-1")
            await cl.call("reclaim_complete")
            sid = (await cl.call("open", path="/f", create=True))["stateid"]
            await cl.call("lock", stateid=sid, type="write", offset=0, length=10)
            old_clientid, old_session = cl.clientid, cl.session
            os.kill(head_a, signal.SIGKILL)
            t0 = time.monotonic()
            with pytest.raises((ConnectionClosed, trio.BrokenResourceError, OSError)):
                with trio.fail_after(10):
                    await cl.call("sequence")
        # The client reconnects to the VIP until something answers: while keepalived.a
        # still holds it, the forwarder finds no head behind it and closes the connection.
        with trio.fail_after(60):
            while True:
                try:
                    async with NFSClient.connect(f"{vip}:{port}", timeout=5) as cl:
                        cl.session = old_session
                        await _expect("NFS4ERR_BADSESSION", cl.call("sequence"))
                        served = time.monotonic() - t0
                        await _expect("NFS4ERR_STALE_CLIENTID",
                                      cl.call("create_session", clientid=old_clientid))
                        await cl.mount("client-1")
                        assert cl.clientid != old_clientid
                        await _expect("NFS4ERR_NO_GRACE",
                                      cl.call("open", path="/f", claim="previous"))
                        await cl.call("reclaim_complete")
                        sid = (await cl.call("open", path="/f"))["stateid"]
                        while True:  # the dead head's CephFS session holds it: it times out
                            try:
                                await cl.call("lock", stateid=sid, type="write", offset=0,
                                              length=10)
                                return served, time.monotonic() - t0
                            except NFS4Error as e:
                                assert e.name == "NFS4ERR_DENIED", e
                            await trio.sleep(0.2)
                            await cl.call("sequence")
                except (ConnectionClosed, trio.BrokenResourceError, OSError):
                    await trio.sleep(0.1)

    served, locked = trio.run(scenario)
    print(f"clients served again through the VIP {served:.2f}s after the kill, "
          f"the lock granted again after {locked:.2f}s")
    # a's session renewed at most 1 s (session_timeout/3) before the kill, evicted 5 s after
    assert locked > 3.5, locked
    # fall 2 × interval 2 s of the check, then b's down interval (3 × 0.2 + skew)
    assert 2 < served < 20, served
    wait_for(lambda: (_state(d, "a"), _state(d, "b")) == ("BACKUP", "MASTER"), 10,
             "keepalived.b to be master")
    assert view.rows(view.collect(str(d)))[0].startswith(f"{vip}:{port}  held by b (")
    log_a = (d / "out" / "keepalived.a.log").read_text()
    assert "(VI_0) Changing effective priority from 100 to 80" in log_a
    assert re.search(r"VRRP_Script\(check_backend\) failed", log_a)
    # vstop stops the keepalived daemons with the heads
    ka = [int((d / "run" / f"keepalived.{n}.pid").read_text()) for n in "ab"]
    res = run_cli(["vstop", "-d", str(d)], timeout=60)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: not any(pid_alive(p) for p in ka), 15, "the keepalived daemons to exit")


@pytest.mark.parametrize("spec, message", [
    ("10.1.2.3", "vstart: --ingress: 10.1.2.3 is not in 127.0.0.0/8"),
    ("127.0.0.x", "vstart: --ingress: '127.0.0.x' is not an IPv4 address"),
    ("127.0.0.10:0", "vstart: --ingress: port 0 is out of range (1 to 65535)"),
    ("127.0.0.254", "vstart: --ingress: no room after 127.0.0.254 for 2 daemon addresses"),
])
def test_bad_ingress_is_refused_before_anything_starts(tmp_path, spec, message):
    res = run_cli(["vstart", "-d", str(tmp_path), "--nfs", "2", "--ingress", spec], timeout=30)
    assert res.returncode == 22
    assert res.stderr.startswith(message), res.stderr
    assert not (tmp_path / "run").exists()
