"""Two NFS heads (mdsemu-nfs) over a vstart cluster, coordinated by the rados_cluster grace
database as in seed 004: they settle at `cur=3 rec=0`; after a kill -9 of a head holding a
client's lock, the restarted head starts a grace period, the other enforces (NFS4ERR_GRACE for
new state), the client reclaims (others get NFS4ERR_NO_GRACE) and the grace period lifts."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from client.procs import spawn
from nfs.client import NFSClient
from nfs.nfs4 import NFS4Error
from tests.integration.cluster import MDSEMU, free_port, pid_alive, wait_for

pytestmark = [pytest.mark.processes, pytest.mark.timeout(120)]

_BIN = Path(sys.executable).parent
GRACE = [shutil.which("mdsemu-grace", path=str(_BIN)) or "mdsemu-grace"]
NFS = [shutil.which("mdsemu-nfs", path=str(_BIN)) or "mdsemu-nfs"]
DB = ["-p", "cephfs_metadata", "-n", "ganesha"]
RULE = "=" * 54

GANESHA_CONF = """\
NFS_CORE_PARAM {{ Enable_NLM = false; Enable_RQUOTA = false; Protocols = 4; NFS_Port = {port}; }}
NFSv4 {{ RecoveryBackend = rados_cluster; Minor_Versions = 1,2; Grace_Period = 20;
        Lease_Lifetime = 4; }}
EXPORT {{ Export_ID = 100; Protocols = 4; Transports = TCP; Path = /; Pseudo = /ceph/;
         Access_Type = RW; FSAL {{ Name = CEPH; }} }}
RADOS_KV {{ pool = "cephfs_metadata"; namespace = "ganesha"; nodeid = "{node}"; }}
"""


class Heads:
    def __init__(self, c) -> None:
        self.c = c
        self.ports = {n: free_port() for n in "ab"}
        self.procs: dict[str, subprocess.Popen] = {}
        for n, port in self.ports.items():
            (c.dir / f"ganesha.{n}.conf").write_text(GANESHA_CONF.format(port=port, node=n))

    def start(self, n: str) -> None:
        self.procs[n] = spawn(self.c.dir, "nfs", n, self.c.conf_path,
                              "-f", str(self.c.dir / f"ganesha.{n}.conf"))

    def kill(self, n: str, sig: int = signal.SIGKILL) -> None:
        self.procs[n].send_signal(sig)
        self.procs[n].wait(timeout=30)

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()

    def addr(self, n: str) -> str:
        return f"127.0.0.1:{self.ports[n]}"

    def dump(self) -> str:
        return subprocess.run([*GRACE, "-c", str(self.c.conf_path), *DB], capture_output=True,
                              text=True, timeout=30).stdout

    def wait_dump(self, expected: str, timeout: float = 30.0) -> None:
        wait_for(lambda: self.dump() == expected, timeout, f"grace db {expected!r}",
                 lambda: self.dump())


@pytest.fixture
def heads(cluster_factory):
    c = cluster_factory()
    c.vstart("--mds", "1")
    res = subprocess.run([*GRACE, "-c", str(c.conf_path), *DB, "add", "a", "b"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    h = Heads(c)
    yield h
    h.stop_all()


async def expect(name: str, coro) -> NFS4Error:
    with pytest.raises(NFS4Error) as e:
        await coro
    assert e.value.name == name, e.value
    return e.value


def test_seed_heads_settle_then_recover_after_kill_9(heads):
    h = heads
    h.start("a")
    h.wait_dump(f"cur=2 rec=0\n{RULE}\na\t  \nb\t E\n")
    h.start("b")
    h.wait_dump(f"cur=3 rec=0\n{RULE}\na\t  \nb\t  \n")  # the seed's state after both start

    async def hold() -> None:
        async with NFSClient.connect(h.addr("a")) as c1, NFSClient.connect(h.addr("b")) as c2:
            await c1.mount("client-1")
            await c1.call("reclaim_complete")
            sid = (await c1.call("open", path="/f", create=True))["stateid"]
            await c1.call("lock", stateid=sid, type="write", offset=0, length=100)
            await c2.mount("client-2")
            await c2.call("reclaim_complete")
            await c2.call("open", path="/g", create=True)

    trio.run(hold)
    h.kill("a")  # within the 4 s lease: client-1's record stays in a's recovery db
    h.start("a")
    h.wait_dump(f"cur=4 rec=3\n{RULE}\na\tNE\nb\t E\n")

    async def recover() -> None:
        async with NFSClient.connect(h.addr("b")) as c3, NFSClient.connect(h.addr("a")) as c1, \
                NFSClient.connect(h.addr("a")) as c4:
            await c3.mount("client-3")
            await c3.call("reclaim_complete")
            await expect("NFS4ERR_GRACE", c3.call("open", path="/h", create=True))  # b enforces
            await c1.mount("client-1")  # the restarted head: a new client id, same owner
            sid = (await c1.call("open", path="/f", claim="previous"))["stateid"]
            await c1.call("lock", stateid=sid, type="write", offset=0, length=100, reclaim=True)
            await expect("NFS4ERR_GRACE", c1.call("open", path="/x", create=True))
            await c4.mount("client-4")  # not in a's old recovery database
            await expect("NFS4ERR_NO_GRACE", c4.call("open", path="/f", claim="previous"))
            await c4.call("reclaim_complete")
            await c1.call("reclaim_complete")  # every reclaimer is done: a lifts early

    trio.run(recover)
    h.wait_dump(f"cur=4 rec=0\n{RULE}\na\t  \nb\t  \n", timeout=15)

    async def after() -> None:
        async with NFSClient.connect(h.addr("b")) as c3:
            await c3.mount("client-3")  # the same client id: its RECLAIM_COMPLETE stands
            await expect("NFS4ERR_COMPLETE_ALREADY", c3.call("reclaim_complete"))
            assert (await c3.call("open", path="/h", create=True))["stateid"]
            assert [e[0] for e in (await c3.call("readdir", path="/"))["entries"]] == \
                ["f", "g", "h"]

    trio.run(after)
    # a clean shutdown asks for a grace period (rados_cluster_shutdown)
    h.kill("b", signal.SIGTERM)
    h.wait_dump(f"cur=5 rec=4\n{RULE}\na\t E\nb\tNE\n", timeout=15)


def test_remove_of_a_dead_member_lifts_a_stuck_grace_period(heads):
    """A head that died again in its grace period leaves its N set: the other head enforces
    until the admin removes the dead one (`remove` clears the last N: R=0)."""
    h = heads
    h.start("a")
    h.wait_dump(f"cur=2 rec=0\n{RULE}\na\t  \nb\t E\n")
    h.start("b")
    h.wait_dump(f"cur=3 rec=0\n{RULE}\na\t  \nb\t  \n")

    async def hold() -> None:
        async with NFSClient.connect(h.addr("a")) as c1:
            await c1.mount("client-1")
            await c1.call("reclaim_complete")
            await c1.call("open", path="/f", create=True)

    trio.run(hold)
    h.kill("a")
    h.start("a")  # client-1 may reclaim here: a keeps its N until it does (or 20 s)
    h.wait_dump(f"cur=4 rec=3\n{RULE}\na\tNE\nb\t E\n")
    h.kill("a")

    async def refused() -> None:
        async with NFSClient.connect(h.addr("b")) as c2:
            await c2.mount("client-2")
            await c2.call("reclaim_complete")
            await expect("NFS4ERR_GRACE", c2.call("open", path="/g", create=True))

    trio.run(refused)
    res = subprocess.run([*GRACE, "-c", str(h.c.conf_path), *DB, "remove", "a"],
                         capture_output=True, text=True, timeout=30)
    assert (res.returncode, res.stderr) == (0, "")
    h.wait_dump(f"cur=4 rec=0\n{RULE}\nb\t  \n", timeout=15)

    async def served() -> None:
        async with NFSClient.connect(h.addr("b")) as c2:
            await c2.mount("client-2")
            assert (await c2.call("open", path="/g", create=True))["stateid"]

    trio.run(served)
    # a head that is no longer a member refuses to start (recovery_rados_cluster init)
    h.start("a")
    assert h.procs["a"].wait(timeout=30) == 1
    assert "is not a member of the grace database" in (h.c.dir / "out" / "nfs.a.log").read_text()


def test_bad_ganesha_conf_is_refused(tmp_path):
    conf = tmp_path / "ganesha.conf"
    conf.write_text("NFSv4 {\n  Grace_Period = 500;\n}\n")
    res = subprocess.run([*NFS, "-c", str(tmp_path / "ceph.conf"), "-f", str(conf), "-i", "a"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 22
    assert res.stderr == (f"mdsemu-nfs: Config File ({conf}:2): Grace_Period: 500 is out of "
                          "range (0 to 180)\n")


def test_vstart_nfs_2_deploys_the_seed(cluster_factory):
    """`vstart --nfs 2`: heads a and b with pid files, the grace db populated as in the seed
    and settled at cur=3 rec=0; vstop stops the heads too."""
    c = cluster_factory()
    res = c.vstart("--mds", "1", "--nfs", "2")
    assert "vstart: nfs.a serves on 127.0.0.1:" in res.stdout
    dump = subprocess.run([*GRACE, "-c", str(c.conf_path), *DB], capture_output=True,
                          text=True, timeout=30).stdout
    assert dump == f"cur=3 rec=0\n{RULE}\na\t  \nb\t  \n"
    pids = {n: int((c.dir / "run" / f"nfs.{n}.pid").read_text()) for n in "ab"}
    port = int(next(line.split("=")[1].strip(" ;") for line in
                    (c.dir / "ganesha.b.conf").read_text().splitlines() if "NFS_Port" in line))

    async def use() -> None:
        async with NFSClient.connect(f"127.0.0.1:{port}") as cl:
            await cl.mount("client-1")
            await cl.call("reclaim_complete")
            await cl.call("open", path="/seed", create=True)

    trio.run(use)
    # `mdsemu nfs-client`, one shot per run; the same owner is the same client
    server = ["nfs-client", "--server", f"127.0.0.1:{port}"]

    def nfs(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*MDSEMU, *server, *args], capture_output=True, text=True,
                              timeout=60)

    res = nfs("--owner", "x", "lock", "/seed", "--offset", "0", "--length", "10")
    assert res.returncode == 0, res.stderr
    assert set(json.loads(res.stdout)) == {"lock_stateid"}
    res = nfs("--owner", "y", "lock", "/seed", "--type", "read", "--offset", "5")
    assert res.returncode == 1
    assert res.stderr.startswith("mdsemu nfs-client: lock /seed: NFS4ERR_DENIED (10010) held "
                                 'by {"offset": 0, "length": 10, "type": 2, "owner": "x"}')
    assert json.loads(nfs("ls", "/").stdout) == {"entries": ["seed"]}
    res = nfs("open", "/seed", "--claim", "previous")
    assert (res.returncode, res.stderr) == (
        1, "mdsemu nfs-client: open /seed: NFS4ERR_NO_GRACE (10033)\n")
    res = subprocess.run([*MDSEMU, "vstop", "-d", str(c.dir)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: not any(pid_alive(p) for p in pids.values()), 15, "the heads to exit")


def test_clean_restart_joins_the_grace_period_it_asked_for(heads):
    """SIGTERM: the head asks for a grace period on its way out (R=C, C+1, its N and E); the
    other head enforces; the restarted head joins that grace period (epochs unchanged), its
    client reclaims from the database it left, and the grace period lifts."""
    h = heads
    h.start("a")
    h.wait_dump(f"cur=2 rec=0\n{RULE}\na\t  \nb\t E\n")
    h.start("b")
    h.wait_dump(f"cur=3 rec=0\n{RULE}\na\t  \nb\t  \n")

    async def hold() -> None:
        async with NFSClient.connect(h.addr("a")) as c1:
            await c1.mount("client-1")
            await c1.call("reclaim_complete")
            sid = (await c1.call("open", path="/f", create=True))["stateid"]
            await c1.call("lock", stateid=sid, type="write", offset=0, length=100)

    trio.run(hold)
    h.kill("a", signal.SIGTERM)
    assert h.procs["a"].returncode == 0
    h.wait_dump(f"cur=4 rec=3\n{RULE}\na\tNE\nb\t E\n")
    h.start("a")

    async def reclaim() -> None:
        async with NFSClient.connect(h.addr("a")) as c1:
            await c1.mount("client-1")
            sid = (await c1.call("open", path="/f", claim="previous"))["stateid"]
            await c1.call("lock", stateid=sid, type="write", offset=0, length=100, reclaim=True)
            await c1.call("reclaim_complete")

    async def connect_and_reclaim() -> None:
        deadline = trio.current_time() + 30
        while True:  # a listens once every head enforces
            try:
                await reclaim()
                return
            except OSError:
                assert trio.current_time() < deadline
                await trio.sleep(0.2)

    trio.run(connect_and_reclaim)
    h.wait_dump(f"cur=4 rec=0\n{RULE}\na\t  \nb\t  \n", timeout=15)
    # SIGTERM left the CephFS session (FSAL_CEPH's ceph_abort_conn); the restarted head reset it
    resets = [json.loads(line)["sessions"] for line in
              (h.c.dir / "out" / "nfs.a.log").read_text().splitlines()
              if line.startswith("{") and "reclaim reset of the previous" in line]
    assert resets == [0, 1], resets


def test_heads_ride_through_an_mds_failover(cluster_factory):
    """The heads are CephFS clients: an MDS failover under them is invisible to NFS clients
    (their locks live in the head; namespace operations wait for the new active)."""
    c = cluster_factory()
    c.vstart("--mds", "2", "--nfs", "1")
    port = int(next(line.split("=")[1].strip(" ;") for line in
                    (c.dir / "ganesha.a.conf").read_text().splitlines() if "NFS_Port" in line))

    async def run() -> None:
        async with NFSClient.connect(f"127.0.0.1:{port}") as c1, \
                NFSClient.connect(f"127.0.0.1:{port}") as c2:
            await c1.mount("client-1")
            await c1.call("reclaim_complete")
            sid = (await c1.call("open", path="/f", create=True))["stateid"]
            await c1.call("lock", stateid=sid, type="write", offset=0, length=100)
            active = c.fs_dump()
            name = next(i["name"] for i in active["filesystems"][0]["mdsmap"]["info"].values()
                        if i["state"] == "up:active")
            res = await trio.run_process([*MDSEMU, "-c", str(c.conf_path), "mds", "fail", name],
                                         capture_stdout=True, capture_stderr=True)
            assert res.returncode == 0, res.stderr
            await c1.call("mkdir", path="/after-failover")  # waits for the new active
            await c2.mount("client-2")
            await c2.call("reclaim_complete")
            s2 = (await c2.call("open", path="/f"))["stateid"]
            await expect("NFS4ERR_DENIED", c2.call("lock", stateid=s2, type="write", offset=50,
                                                   length=1))
            names = [e[0] for e in (await c1.call("readdir", path="/"))["entries"]]
            assert names == ["after-failover", "f"]

    trio.run(run)
