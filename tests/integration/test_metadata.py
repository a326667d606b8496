"""Metadata that survives failover, with real processes (fast profile): the journal on the
osd, replay by a cold standby and by a standby-replay follower, fencing of a paused active
(F1–F4), and an osd restart."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import struct
import subprocess

import msgpack
import pytest
import trio

from client.fsclient import FSClient
from tests.integration.cluster import (
    Cluster,
    active,
    follower,
    info_by_name,
    run_cli,
)
from tests.integration.cluster import holder as holder_of

pytestmark = [pytest.mark.processes, pytest.mark.timeout(180)]

# Small segments, so that 2,000 entries also cross trimming and directory write-back (J3).
SMALL_SEGMENTS = {"mds": {"mds_log_events_per_segment": "64", "mds_log_max_segments": "8"}}


def mon_host(c: Cluster) -> str:
    return f"127.0.0.1:{c.port}"


def create(c: Cluster, paths: list[str], clients: int = 16) -> None:
    async def run():
        async with FSClient.open(mon_host(c), fs_name="cephfs", timeout=60, auth=c.auth_key()) as fs:
            async def worker(k: int) -> None:
                for p in paths[k::clients]:
                    await fs.create(p)

            async with trio.open_nursery() as nursery:
                for k in range(clients):
                    nursery.start_soon(worker, k)

    trio.run(run)


def mkdir(c: Cluster, path: str) -> None:
    async def run():
        async with FSClient.open(mon_host(c), fs_name="cephfs", timeout=60, auth=c.auth_key()) as fs:
            await fs.mkdir(path)

    trio.run(run)


def ls(c: Cluster, path: str) -> list[str]:
    async def run():
        async with FSClient.open(mon_host(c), fs_name="cephfs", timeout=60, auth=c.auth_key()) as fs:
            return [name for name, _ in await fs.ls(path)]

    return trio.run(run)


@pytest.mark.parametrize("standby_replay", [False, True], ids=["cold-standby", "standby-replay"])
def test_2000_entries_survive_kill_9_of_the_active(cluster_factory, standby_replay):
    c = cluster_factory(conf=SMALL_SEGMENTS).start(("a", "b", "c"))
    if standby_replay:
        c.ok("fs", "set", "cephfs", "allow_standby_replay", "true")
        c.wait_map(lambda d: follower(d) is not None, 30, "a standby-replay follower")
    mkdir(c, "/d")
    names = [f"f{i}" for i in range(2000)]
    create(c, [f"/d/{n}" for n in names])
    dump = c.fs_dump()
    old = active(dump)
    follower_gid = follower(dump)["gid"] if standby_replay else None
    os.kill(c.pid_of(old["name"]), signal.SIGKILL)
    dump = c.wait_map(lambda d: (a := active(d)) is not None and a["gid"] != old["gid"] and d,
                      30, "another daemon active on rank 0")
    if standby_replay:
        assert active(dump)["gid"] == follower_gid  # S1: the follower takes the rank
    assert sorted(ls(c, "/d")) == sorted(names)


def _raw_send(s: socket.socket, msg: dict) -> None:
    body = msgpack.packb(msg)
    s.sendall(struct.pack(">I", len(body)) + body)


def _raw_recv(s: socket.socket) -> dict:
    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    (length,) = struct.unpack(">I", exactly(4))
    return msgpack.unpackb(exactly(length))


def _raw_sessions(addr: str, n: int) -> list[socket.socket]:
    """n raw client connections to an MDS, each with an open session."""
    host, port = addr.split("/")[0].rsplit(":", 1)
    socks = []
    for i in range(n):
        s = socket.create_connection((host, int(port)), timeout=10)
        socks.append(s)
        _raw_send(s, {"type": "hello", "entity": f"client.{9000 + i}", "proto": 1})
        assert _raw_recv(s)["type"] == "hello_ok"
        _raw_send(s, {"type": "client_session", "op": "request_open",
                      "metadata": {"addr": f"127.0.0.1:0/{9000 + i}"}})
        assert _raw_recv(s)["op"] == "open"
    return socks


def test_paused_active_is_fenced_and_its_late_writes_never_appear(cluster_factory):
    """F1-F4: writes the old active still holds when it is paused go to the osd once it
    resumes, and are refused there (EBLOCKLISTED); it respawns and they never appear.
    As in Ceph's own tests, `mds_log_pause` holds the journal so that some writes are
    pending when the daemon is stopped."""
    c = cluster_factory(cephx=False).start(("a", "b"))  # raw protocol sessions: auth none
    mkdir(c, "/before")
    dump = c.fs_dump()
    old = active(dump)
    who = f"mds.{old['name']}"
    pid = c.pid_of(old["name"])
    late = [f"/late{i}" for i in range(8)]
    socks = _raw_sessions(old["addr"], len(late))
    c.ok("config", "set", who, "mds_log_pause", "true")
    c.wait_for(lambda: c.cli_json("tell", who, "config", "get", "mds_log_pause")
               == {"mds_log_pause": "true"}, 30, "the active to see mds_log_pause")
    try:
        for s, path in zip(socks, late, strict=True):
            _raw_send(s, {"type": "client_request", "tid": 1, "op": "mkdir",
                          "args": {"path": path}})
        for s in socks:  # applied in memory, journal held: an unsafe reply, no safe one
            reply = _raw_recv(s)
            assert reply["rc"] == 0 and reply["safe"] is False, reply
        os.kill(pid, signal.SIGSTOP)
        try:
            c.wait_map(lambda d: (a := active(d)) is not None and a["gid"] != old["gid"],
                       30, "the standby to replace the paused active")
            blocklist = c.cli_json("osd", "blocklist", "ls")
            assert old["addr"] in [e["addr"] for e in blocklist]  # F1: fenced before replaced
            # Release the journal while it sleeps: on SIGCONT its first act is the held write.
            c.ok("config", "set", who, "mds_log_pause", "false")
        finally:
            os.kill(pid, signal.SIGCONT)
        # F4: the osd refuses the write, and the old process respawns (same pid, new gid).
        c.wait_for(lambda: "rejecting op from blocklisted" in c.log("osd.0"), 30,
                   "the osd to refuse the fenced instance's journal write")
        c.wait_map(lambda d: (i := info_by_name(d, old["name"])) is not None
                   and i["gid"] != old["gid"] and i["state"] == "up:standby", 30,
                   f"{who} back as a standby with a new gid")
        assert os.path.exists(f"/proc/{pid}") and c.pid_of(old["name"]) == pid
        # Whichever it heard first, the null map (B8) or EBLOCKLISTED (B9), made it respawn.
        assert "respawn!" in c.log(who)
    finally:
        for s in socks:
            s.close()
    names = ls(c, "/")
    assert "before" in names
    assert not [n for n in names if n.startswith("late")], names


def test_osd_restart_loses_no_acknowledged_entry(cluster_factory):
    c = cluster_factory().start(("a", "b"))
    mkdir(c, "/d")
    create(c, [f"/d/f{i}" for i in range(200)])
    holder = active(c.fs_dump())
    osd = c.daemons["osd.0"]
    osd.kill(signal.SIGKILL)
    osd.wait_exit()
    (c.dir / "osd.0" / "addr").unlink()
    c.start_osd()
    # Like Ceph's objecter, the active resends its ops to the restarted osd (new address,
    # from the OSDMap); a journal append is resent with its offset, so never written twice.
    create(c, [f"/d/g{i}" for i in range(20)], clients=2)
    assert active(c.fs_dump())["gid"] == holder["gid"]  # no failover was needed
    names = set(ls(c, "/d"))
    assert {f"f{i}" for i in range(200)} <= names
    assert {f"g{i}" for i in range(20)} <= names


def test_tell_mds_status_and_errors(cluster_factory):
    c = cluster_factory().start(("a",))
    mkdir(c, "/t")
    for who in ("mds.a", "mds.0", "mds.cephfs:0"):
        res = c.cli("tell", who, "status", fmt="json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["state"] == "up:active"
    res = c.cli("tell", "mds.nosuch", "status")
    assert res.returncode == errno.ENOENT and res.stderr.startswith("Error ENOENT")
    res = c.cli("tell", "mds.a", "frobnicate")
    assert res.returncode == errno.EINVAL


@pytest.mark.parametrize("standby_replay", [False, True], ids=["cold-standby", "standby-replay"])
def test_load_through_a_kill_then_verify_finds_no_violation(cluster_factory, tmp_path,
                                                            standby_replay):
    c = cluster_factory().start(("a", "b", "c"))
    if standby_replay:
        c.ok("fs", "set", "cephfs", "allow_standby_replay", "true")
        c.wait_map(lambda d: follower(d) is not None, 30, "a standby-replay follower")
    history = tmp_path / "history.jsonl"
    with c.load(history, "--clients", "4", "--duration", "6") as load:
        c.wait_for(lambda: history.exists() and history.stat().st_size > 4000, 30,
                   "the load to get going")
        old = active(c.fs_dump())
        os.kill(c.pid_of(old["name"]), signal.SIGKILL)
        out, err = load.communicate(timeout=90)
    assert load.returncode == 0, err[-2000:]
    assert c.verify(history)["acknowledged"] > 0


def test_failover_while_the_osd_is_down_waits_for_it(cluster_factory):
    c = cluster_factory().start(("a", "b"))
    mkdir(c, "/keep")
    osd = c.daemons["osd.0"]
    osd.kill(signal.SIGKILL)
    osd.wait_exit()
    old = active(c.fs_dump())
    os.kill(c.pid_of(old["name"]), signal.SIGKILL)
    # The standby is promoted and waits in up:replay for the metadata pool (no respawn loop).
    dump = c.wait_map(lambda d: (h := holder_of(d)) is not None and h["gid"] != old["gid"]
                      and h["state"] == "up:replay" and d, 30, "the standby in up:replay")
    gid = holder_of(dump)["gid"]
    (c.dir / "osd.0" / "addr").unlink()
    c.start_osd()
    c.wait_map(lambda d: (a := active(d)) is not None and a["gid"] == gid, 30,
               "the same daemon to finish replay once the osd is back")
    assert "keep" in ls(c, "/")



def test_corrupt_journal_damages_the_rank_until_repaired(cluster_factory):
    """F5 with real processes: a checksum failure in replay reports down:damaged; the rank
    is never assigned while damaged; once the object is fixed, `mds repaired` brings it back."""
    from osd.objecter import OSDClient

    c = cluster_factory().start(("a", "b"))
    mkdir(c, "/d")
    create(c, [f"/d/f{i}" for i in range(50)], clients=4)
    pool = c.fs_dump()["filesystems"][0]["mdsmap"]["metadata_pool"]
    osd_addr = (c.dir / "osd.0" / "addr").read_text().strip()

    async def read():
        async with c.session(), OSDClient.open(osd_addr, "client.admin", "127.0.0.1:1/1") as osd:
            return await osd.read(pool, "200.00000001")

    async def write(data: bytes):
        async with c.session(), OSDClient.open(osd_addr, "client.admin", "127.0.0.1:1/1") as osd:
            await osd.write_full(pool, "200.00000001", data)

    good = trio.run(read)
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    old = active(c.fs_dump())
    os.kill(c.pid_of(old["name"]), signal.SIGKILL)
    trio.run(write, bytes(bad))
    c.wait_map(lambda d: 0 in d["filesystems"][0]["mdsmap"]["damaged"], 30, "rank 0 damaged")
    health = c.health()
    assert health["status"] == "HEALTH_ERR" and "MDS_DAMAGE" in health["checks"]
    c.holds_for(lambda d: 0 in d["filesystems"][0]["mdsmap"]["damaged"], 1.0,
                "rank 0 stays damaged")
    trio.run(write, good)
    res = c.cli("mds", "repaired", "cephfs:0")
    assert res.returncode == 0 and "repaired: restoring rank 1:0" in res.stderr
    c.wait_map(lambda d: active(d) is not None, 30, "rank 0 active again")
    assert sorted(ls(c, "/d")) == sorted(f"f{i}" for i in range(50))


def test_cephx_keys_are_required_and_used_by_every_daemon(cluster_factory, tmp_path):
    c = cluster_factory(cephx=True).start(("a", "b"))  # vstart --cephx: a key per daemon
    mkdir(c, "/secure")  # osd, mds and client all got in with their keys
    assert "secure" in ls(c, "/")
    wrong = tmp_path / "wrong.conf"
    wrong.write_text(c.conf_path.read_text().replace(str(c.dir / "keyring"),
                                                     str(tmp_path / "nokey")))
    res = run_cli(["-c", str(wrong), "--connect-timeout", "2", "health"])
    assert res.returncode != 0 and "unable to find a keyring" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def _mon_link_ports(pid: int, mon_port: int) -> list[int]:
    """Local ports of the TCP connections from process `pid` to the monitor."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", "dport", f"= :{mon_port}"],
                         capture_output=True, text=True, check=True).stdout
    ports = []
    for line in out.splitlines():
        if f"pid={pid}," in line:
            ports.append(int(line.split()[2].rsplit(":", 1)[1]))
    return ports


def _iptables(*args: str) -> None:
    subprocess.run(["iptables", *args], check=True, capture_output=True)


@pytest.fixture
def partition():
    """Drop loopback TCP between chosen ports (both directions); rules removed at teardown."""
    if os.geteuid() != 0 or shutil.which("iptables") is None or shutil.which("ss") is None:
        pytest.skip("needs root, iptables and ss to cut a daemon off from the monitor")
    rules: list[list[str]] = []

    def cut(port_a: int, port_b: int) -> None:
        for src, dst in ((port_a, port_b), (port_b, port_a)):
            rule = ["INPUT", "-i", "lo", "-p", "tcp", "--sport", str(src), "--dport", str(dst),
                    "-j", "DROP"]
            _iptables("-I", *rule)
            rules.append(rule)

    yield cut
    for rule in rules:
        subprocess.run(["iptables", "-D", *rule], capture_output=True)


def test_partitioned_active_is_fenced_and_its_held_write_refused(cluster_factory, partition):
    """F1–F4 and B5: the active loses the monitor but not its clients or the osd. Laggy, it
    defers new client requests (B5); the monitor fails and fences it; a journal write it
    still held (mds_log_pause, released through its admin socket) is refused with
    EBLOCKLISTED (the osd logs it), it respawns (same pid, new gid) and neither that entry
    nor one a client sent it after the fence is in the namespace."""
    # mon_client_ping_timeout: the cut-off daemon would otherwise open a new mon session (a
    # new port, which the cut does not cover) after 3 s and respawn on the null map first.
    c = cluster_factory(conf={"mds": {"mon_client_ping_timeout": "30"}},
                        cephx=False).start(("a", "b"))  # raw protocol sessions: auth none
    mkdir(c, "/before")
    old = active(c.fs_dump())
    who = f"mds.{old['name']}"
    pid = c.pid_of(old["name"])
    socks = _raw_sessions(old["addr"], 2)
    try:
        c.ok("config", "set", who, "mds_log_pause", "true")
        c.wait_for(lambda: c.cli_json("tell", who, "config", "get", "mds_log_pause")
                   == {"mds_log_pause": "true"}, 30, "the journal held")
        _raw_send(socks[0], {"type": "client_request", "tid": 1, "op": "mkdir",
                             "args": {"path": "/held"}})
        assert _raw_recv(socks[0])["safe"] is False  # applied, answered unsafe, not journaled
        for port in _mon_link_ports(pid, c.port):
            partition(port, c.port)
        c.wait_map(lambda d: (a := active(d)) is not None and a["gid"] != old["gid"], 30,
                   "the standby to replace the partitioned active")
        c.wait_for(lambda: old["addr"] in json.dumps(c.cli_json("osd", "blocklist", "ls")),
                   10, "the fence")
        _raw_send(socks[1], {"type": "client_request", "tid": 1, "op": "mkdir",
                             "args": {"path": "/after-fence"}})
        c.wait_for(lambda: "laggy, deferring client_request" in c.log(who), 10,
                   "the laggy active to defer the new request (B5)")
        # The map no longer names it, so `tell` cannot find it: its admin socket can.
        res = c.cli("daemon", who, "config", "set", "mds_log_pause", "false")
        assert res.returncode == 0, res.stderr
        c.wait_for(lambda: "rejecting op from blocklisted" in c.log("osd.0"), 30,
                   "the osd to refuse the fenced instance")
        c.wait_for(lambda: "we have been blocklisted (fenced), respawning" in c.log(who), 30,
                   "the old active to respawn")
    finally:
        for s in socks:
            s.close()
    c.wait_map(lambda d: (i := info_by_name(d, old["name"])) is not None
               and i["gid"] != old["gid"] and i["state"] == "up:standby", 30,
               "the old daemon back as a standby with a new gid")
    assert c.pid_of(old["name"]) == pid
    names = ls(c, "/")
    assert "before" in names and "held" not in names and "after-fence" not in names
