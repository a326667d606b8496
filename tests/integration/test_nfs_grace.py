"""Seed 004's grace database on a vstart cluster of real processes, through the real console
scripts: `mdsemu osd pool`, `mdsemu rados` and `mdsemu-grace` (ganesha-rados-grace), with
their output and exit codes; and a watcher of the grace object notified of each change."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from client.rados import Rados
from common import config as cfg
from tests.integration.cluster import MDSEMU, free_port

pytestmark = [pytest.mark.processes, pytest.mark.timeout(120)]

_GRACE = shutil.which("mdsemu-grace", path=str(Path(sys.executable).parent))
GRACE = [_GRACE] if _GRACE else [sys.executable, "-m", "nfs.grace_tool"]
RULE = "=" * 54


def grace(c, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*GRACE, "--cephconf", str(c.conf_path), *args], capture_output=True,
                          text=True, timeout=60, input=stdin, stdin=None if stdin else
                          subprocess.DEVNULL)


@pytest.fixture
def vcluster(cluster_factory):
    c = cluster_factory()
    c.vstart("--mds", "1")
    return c


def test_seed_004_grace_db_transcript(vcluster):
    c = vcluster
    res = c.cli("rados", "lspools", check=True)
    assert res.stdout == "cephfs_metadata\ncephfs_data\n"
    db = ["-p", "cephfs_metadata", "-n", "ganesha"]
    for node in ("a", "b"):
        res = grace(c, *db, "add", node)
        assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    res = grace(c, *db)
    assert (res.returncode, res.stdout) == (0, f"cur=1 rec=0\n{RULE}\na\t E\nb\t E\n")
    # the object, as rados sees it: 16 bytes of epochs, one omap key per member
    res = c.cli("rados", "-p", "cephfs_metadata", "-N", "ganesha", "ls", check=True)
    assert res.stdout == "grace\n"
    res = c.cli("rados", "-p", "cephfs_metadata", "-N", "ganesha", "listomapvals", "grace",
                check=True)
    assert res.stdout == ("a\nvalue (1 bytes) :\n00000000  02" + " " * 48 + "|.|\n00000001\n\n"
                          "b\nvalue (1 bytes) :\n00000000  02" + " " * 48 + "|.|\n00000001\n\n")
    # head a restarts: it starts a grace period; b, running, enforces; a lifts: R=0
    assert grace(c, *db, "start", "a").returncode == 0
    assert grace(c, *db, "dump").stdout == f"cur=2 rec=1\n{RULE}\na\tNE\nb\t E\n"
    assert grace(c, *db, "join", "b").returncode == 0  # in a grace period: b joins it
    assert grace(c, *db, "lift", "a").stdout == ""
    assert grace(c, *db).stdout == f"cur=2 rec=1\n{RULE}\na\t E\nb\tNE\n"
    assert grace(c, *db, "lift", "b").returncode == 0
    assert grace(c, *db, "noenforce", "a", "b").returncode == 0
    assert grace(c, *db).stdout == f"cur=2 rec=0\n{RULE}\na\t  \nb\t  \n"
    # errors: Ganesha's messages and exit status 1
    res = grace(c, *db, "member", "a", "zz")
    assert (res.returncode, res.stderr) == (1, "Failure: -2\n")
    res = grace(c, *db, "lift", "zz")
    assert (res.returncode, res.stderr) == (1, "Failure: -126\n")
    res = grace(c, *db, "start")
    assert (res.returncode, res.stderr) == (1, "Need at least one nodeid.\nFailure: -22\n")
    res = grace(c, "-p", "cephfs_metadata", "-n", "elsewhere")  # no grace object there
    assert (res.returncode, res.stdout, res.stderr) == (1, "rados_grace_dump: ret=-2",
                                                        "Failure: -2\n")
    res = grace(c, "-p", "nopool", "dump")
    assert res.returncode == 1
    assert res.stderr == "rados_ioctx_create: -2\nCan't connect to cluster: -2\n"
    # add creates the default pool (nfs-ganesha) and the object in it
    assert grace(c, "add", "x").returncode == 0
    assert grace(c).stdout == f"cur=1 rec=0\n{RULE}\nx\t E\n"
    assert "nfs-ganesha" in c.cli("osd", "pool", "ls", check=True).stdout.split()


def test_watcher_is_notified_of_each_change(vcluster):
    """rados_grace_notify: every write is followed by a notify that each watcher acks."""
    c = vcluster
    db = ["-p", "cephfs_metadata", "-n", "ganesha"]
    assert grace(c, *db, "add", "a", "b").returncode == 0
    config = cfg.Config("client.admin", cfg.load_conf(str(c.conf_path)))

    async def main() -> list:
        seen = []
        async with Rados.connect(config) as rados:
            io = rados.ioctx("cephfs_metadata", "ganesha")
            await io.watch("grace", lambda nid, who, data: seen.append(who))
            for args in (["start", "a"], ["join", "a"], ["lift", "a"], ["dump"]):
                res = await trio.run_process([*GRACE, "--cephconf", str(c.conf_path), *db,
                                              *args], capture_stdout=True, capture_stderr=True)
                assert res.returncode == 0, res.stderr
        return seen

    seen = trio.run(main)
    # start and join wrote (a notify each; join into a grace period still writes), lift
    # ended the grace period; dump only reads
    assert len(seen) == 3 and all(w.startswith("client.admin") for w in seen)


def test_osd_pool_and_rados_commands(vcluster):
    c = vcluster
    res = c.cli("osd", "pool", "create", "scratch")
    assert (res.returncode, res.stderr) == (0, "pool 'scratch' created\n")
    res = subprocess.run([*MDSEMU, "-c", str(c.conf_path), "rados", "-p", "scratch", "put",
                          "obj", "-"], input=b"hello\n", capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    res = c.cli("rados", "-p", "scratch", "get", "obj", "-", check=True)
    assert res.stdout == "hello\n"
    res = c.cli("rados", "-p", "scratch", "stat", "obj", check=True)
    assert res.stdout.startswith("scratch/obj mtime ") and res.stdout.endswith(", size 6\n")
    res = c.cli("rados", "-p", "scratch", "get", "nope", "-")
    assert (res.returncode, res.stderr) == (
        1, "error getting scratch/nope: (2) No such file or directory\n")
    res = c.cli("osd", "pool", "rm", "scratch")
    assert res.returncode == 1 and res.stderr.startswith("Error EPERM: WARNING: this will "
                                                         "*PERMANENTLY DESTROY* all data")
    res = c.cli("osd", "pool", "rm", "scratch", "scratch", "--yes-i-really-really-mean-it")
    assert (res.returncode, res.stderr) == (0, "pool 'scratch' removed\n")  # vstart allows it
    res = c.cli("rados", "-p", "scratch", "ls")
    assert (res.returncode, res.stderr) == (
        1, "error opening pool scratch: (2) No such file or directory\n")
    res = c.cli("osd", "pool", "rm", "cephfs_data", "cephfs_data", "--yes-i-really-really-mean-it")
    assert (res.returncode, res.stderr) == (16, "Error EBUSY: pool 'cephfs_data' is in use by "
                                                "CephFS\n")



def test_tools_without_a_cluster(tmp_path):
    """No monitor: Ganesha's connect-failure lines and exit 1; rados's `couldn't connect`."""
    conf = tmp_path / "ceph.conf"
    conf.write_text(f"[global]\nmon_host = 127.0.0.1:{free_port()}\nmon_client_timeout = 1\n"
                    "mon_client_hunt_interval = 0.1\n")
    res = subprocess.run([*GRACE, "-c", str(conf), "add", "a"], capture_output=True, text=True,
                         timeout=30)
    assert (res.returncode, res.stdout) == (1, "")
    assert res.stderr == "rados_connect: -110\nCan't connect to cluster: -110\n"
    res = subprocess.run([*GRACE, "-c", str(tmp_path / "nope.conf")], capture_output=True,
                         text=True, timeout=30)
    assert (res.returncode, res.stderr) == (
        1, "rados_conf_read_file: -2\nCan't connect to cluster: -2\n")
    res = subprocess.run([*GRACE, "--frob"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and res.stderr.startswith(
        "mdsemu-grace: unrecognized option '--frob'\nUsage:\nmdsemu-grace [ --cephconf ")
    res = subprocess.run([*MDSEMU, "-c", str(conf), "rados", "lspools"], capture_output=True,
                         text=True, timeout=30)
    assert (res.returncode, res.stderr) == (
        1, "couldn't connect to cluster: (110) Connection timed out\n")
