"""cephx with real processes (issue 15): every entity has its own key, the monitor, the MDS
and the osd each check who is on the other end and what its caps allow, and every frame after
the handshake is signed. Each attack is refused with a clear error, logged, and changes
nothing. One cluster (vstart --cephx style keyring) serves the module; tickets live 4 s here,
so clients and daemons renew and rotate all through the tests."""

from __future__ import annotations

import errno
import json
import time
from pathlib import Path

import msgpack
import pytest
import trio

from client.fsclient import FSClient, FSClientError
from client.rados import Rados, RadosError
from common import config as cfg
from common import keyring, wire
from common import messages as m
from common.auth import hello_key
from common.cephx import authorizer, client_proof
from common.monclient import MonClient
from common.net import Connection, ConnectionClosed, HandshakeError, ProtocolError, connect
from osd.objecter import OSDClient, OSDError
from tests.integration.cluster import Cluster, active, run_cli
from tests.integration.conftest import _teardown

pytestmark = [pytest.mark.processes, pytest.mark.timeout(120)]

TTL = 4.0


@pytest.fixture(scope="module")
def cx(request, tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cephx"), cephx=True,
                conf={"global": {"auth_service_ticket_ttl": str(TTL)}})
    try:
        c.start(("a", "b"))
        yield c
    finally:
        _teardown([c], request.session.testsfailed > 0)


def mon_host(c: Cluster) -> str:
    return f"127.0.0.1:{c.port}"


def user(c: Cluster, name: str, *caps: str) -> Path:
    """`auth get-or-create` a user and write its keyring (what an admin hands the user)."""
    res = c.cli("auth", "get-or-create", name, *caps, check=True)
    path = c.dir / f"{name}.keyring"
    keyring.write(str(path), keyring.parse(res.stdout))
    return path


def creds(c: Cluster, name: str, path: Path | None = None):
    config = cfg.Config(name, cfg.load_conf(str(c.conf_path)),
                        overrides={"keyring": str(path)} if path else None)
    return config, hello_key(config)


def osd_addr(c: Cluster) -> str:
    return (c.dir / "osd.0" / "addr").read_text().strip()


def mds_addr(c: Cluster) -> tuple[str, int]:
    info = active(c.fs_dump(), "cephfs", 0)
    host, _, port = info["addr"].split("/")[0].rpartition(":")
    return host, int(port)


async def _connect(host: str, port: int, entity: str, auth=None, addr: str = ""):
    conn, _ = await connect(host, port, entity, auth=auth, addr=addr)
    await conn.aclose()


def refused(c: Cluster, host: str, port: int, entity: str, auth=None,
            addr: str = "") -> HandshakeError:
    with pytest.raises(HandshakeError) as e:
        trio.run(_connect, host, port, entity, auth, addr)
    return e.value


def test_keyless_peer_is_refused_by_the_monitor_the_mds_and_the_osd(cx):
    for host, port in [("127.0.0.1", cx.port), mds_addr(cx),
                       tuple(osd_addr(cx).rsplit(":", 1))]:
        e = refused(cx, host, int(port), "client.admin")
        assert e.code == errno.EACCES and "authentication failed" in str(e)
        assert "presented no" in str(e)
    assert "refusing connection" in cx.log("mon.a")
    assert "refusing connection: authentication failed" in cx.log("osd.0")
    assert "refusing connection: authentication failed" in cx.log("mds.a")


def test_wrong_key_fails_with_one_line(cx):
    wrong = cx.dir / "wrong.keyring"
    keyring.write(str(wrong), {"client.admin": keyring.Entry(keyring.new_key())})
    res = run_cli(["-c", str(cx.conf_path), "-k", str(wrong), "--connect-timeout", "2",
                   "fs", "set", "cephfs", "max_mds", "2"])
    assert res.returncode != 0 and "authentication failed" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "bad proof" in cx.log("mon.a")
    assert cx.fs_dump()["filesystems"][0]["mdsmap"]["max_mds"] == 1  # nothing changed
    unknown = run_cli(["-c", str(cx.conf_path), "-n", "client.nobody", "-k", str(wrong),
                       "--connect-timeout", "2", "health"])
    assert unknown.returncode != 0 and "unable to find a keyring" in unknown.stderr


def test_replayed_handshake_fails(cx):
    secret = keyring.secret_for(str(cx.dir / "keyring"), "client.admin")

    async def handshake(req: m.AuthRequest | None):
        conn = Connection(await trio.open_tcp_stream("127.0.0.1", cx.port))
        try:
            await conn.send(m.Hello(entity="client.admin", auth="cephx"))
            chal = await conn.recv()
            if req is None:
                mine = b"c" * 16
                req = m.AuthRequest(challenge=mine, proof=client_proof(
                    secret, "client.admin", chal.challenge, mine))
            await conn.send(req)
            return req, await conn.recv()
        finally:
            await conn.aclose()

    req, first = trio.run(handshake, None)
    assert isinstance(first, m.HelloOk)  # a genuine handshake, recorded
    _, replayed = trio.run(handshake, req)
    assert isinstance(replayed, m.Error) and replayed.code == errno.EACCES
    assert "authentication failed" in replayed.message


def test_tampered_or_injected_frame_closes_that_connection_only(cx):
    _, admin = creds(cx, "client.admin")

    async def attack(frame: bytes) -> str:
        conn, _ = await connect("127.0.0.1", cx.port, "client.admin", auth=admin)
        try:
            await conn.stream.send_all(frame)
            with trio.fail_after(10):
                while True:
                    try:
                        msg = await conn.recv()
                    except (ConnectionClosed, ProtocolError) as e:
                        return f"closed: {e}"
                    if isinstance(msg, m.Error):
                        return msg.message
                    if isinstance(msg, m.CommandReply):
                        return "executed"
        finally:
            await conn.aclose()

    cmd = msgpack.packb(m.encode(m.Command(tid=1, args=["fs", "set", "cephfs", "max_mds", "2"])))
    assert "bad message signature" in trio.run(attack, wire.frame(cmd + b"\0" * 32))
    assert "bad message signature" in trio.run(attack, wire.frame(cmd))  # injected, unsigned
    assert "bad message signature" in cx.log("mon.a")
    assert cx.fs_dump()["filesystems"][0]["mdsmap"]["max_mds"] == 1  # nothing changed
    assert cx.query("health")[0] == 0  # the monitor serves everyone else


def test_expired_ticket_is_refused(cx):
    _, admin = creds(cx, "client.admin")
    host, port = mds_addr(cx)

    async def fetch_then_expire():
        async with MonClient.open(mon_host(cx), "client.admin", admin, timeout=5) as monc:
            await monc.command(["health"])
            with trio.fail_after(10):
                while "mds" not in admin.tickets or \
                        admin.tickets["mds"].expires < time.time() + 1:
                    await trio.sleep(0.05)
            ticket = admin.tickets["mds"]
        with trio.fail_after(3 * TTL):  # no session renews it now: wait for its expiry
            while time.time() <= ticket.expires + 0.2:
                await trio.sleep(0.1)
        # a client would renew; an attacker presents the old ticket as it is
        conn = Connection(await trio.open_tcp_stream(host, port))
        try:
            await conn.send(m.Hello(entity="client.admin", auth="cephx"))
            chal = await conn.recv()
            await conn.send(m.AuthRequest(authorizer=authorizer(ticket, "client.admin",
                                                                chal.challenge)))
            return await conn.recv()
        finally:
            await conn.aclose()

    reply = trio.run(fetch_then_expire)
    assert isinstance(reply, m.Error) and reply.code == errno.EKEYEXPIRED
    assert "expired" in reply.message
    assert "ticket of client.admin expired" in cx.log("mds.a")


def test_read_only_client_reads_but_cannot_write(cx):
    path = user(cx, "client.ro", "mon", "allow r", "mds", "allow r", "osd",
                "allow r pool=cephfs_data")
    ok = run_cli(["-c", str(cx.conf_path), "-n", "client.ro", "-k", str(path), "fs", "dump"])
    assert ok.returncode == 0 and "max_mds" in ok.stdout
    res = run_cli(["-c", str(cx.conf_path), "--id", "ro", "-k", str(path),
                   "fs", "set", "cephfs", "max_mds", "2"])
    assert res.returncode == errno.EACCES and "Error EACCES: access denied" in res.stderr
    assert cx.fs_dump()["filesystems"][0]["mdsmap"]["max_mds"] == 1
    assert "access denied" in cx.log("mon.a")
    _, auth = creds(cx, "client.ro", path)

    async def use():
        async with FSClient.open(mon_host(cx), "cephfs", timeout=20, entity="client.ro",
                                 auth=auth) as fs:
            await fs.ls("/")
            with pytest.raises(FSClientError) as e:
                await fs.mkdir("/ro-was-here")
            return e.value

    e = trio.run(use)
    assert e.code == errno.EACCES and "not in caps" in str(e)
    assert "denied by mds caps" in cx.log("mds.a")
    _, admin = creds(cx, "client.admin")

    async def look():
        async with FSClient.open(mon_host(cx), "cephfs", timeout=20, auth=admin) as fs:
            return [n for n, _ in await fs.ls("/")]

    assert "ro-was-here" not in trio.run(look)


def test_client_tool_runs_as_the_user_it_is_told(cx):
    """`mdsemu client --id X -k KEYRING` (compose's load runs as client.load): it
    authenticates as client.X, and the MDS holds it to client.X's caps."""
    path = user(cx, "client.tool", "mon", "allow r", "mds", "allow r", "osd",
                "allow r pool=cephfs_data")
    conf = ["-c", str(cx.conf_path)]
    ls = run_cli([*conf, "client", "--id", "tool", "-k", str(path), "ls", "/"])
    assert ls.returncode == 0, ls.stderr
    mk = run_cli([*conf, "client", "mkdir", "/tool-was-here", "--id", "tool", "-k", str(path)])
    assert mk.returncode == errno.EACCES, mk.stderr
    assert "mkdir /tool-was-here: Permission denied" in mk.stderr
    assert "tool-was-here" not in run_cli([*conf, "client", "ls", "/"]).stdout


def test_path_restricted_client_stays_in_its_path(cx):
    path = user(cx, "client.bob", "mon", "allow r", "mds", "allow rw path=/bob", "osd",
                "allow rw pool=cephfs_data")
    _, admin = creds(cx, "client.admin")
    _, bob = creds(cx, "client.bob", path)

    async def run():
        async with FSClient.open(mon_host(cx), "cephfs", timeout=20, auth=admin) as fs:
            for d in ("/bob", "/other"):
                try:
                    await fs.mkdir(d)
                except FSClientError as e:
                    assert e.code == errno.EEXIST
        async with FSClient.open(mon_host(cx), "cephfs", timeout=10, entity="client.bob",
                                 auth=bob) as fs:  # mounts the root: refused, as Ceph does
            with pytest.raises(FSClientError) as root:
                await fs.ls("/bob")
        async with FSClient.open(mon_host(cx), "cephfs", timeout=20, entity="client.bob",
                                 auth=bob, root="/bob") as fs:
            await fs.mkdir("/bob/mine")
            with pytest.raises(FSClientError) as outside:
                await fs.mkdir("/other/x")
            with pytest.raises(FSClientError) as listing:
                await fs.ls("/")
        async with FSClient.open(mon_host(cx), "cephfs", timeout=20, auth=admin) as fs:
            return root.value, outside.value, listing.value, \
                [n for n, _ in await fs.ls("/other")], [n for n, _ in await fs.ls("/bob")]

    root, outside, listing, other, mine = trio.run(run)
    assert root.code == errno.EPERM and "non-allowable root" in str(root)
    assert outside.code == errno.EACCES and listing.code == errno.EACCES
    assert other == [] and mine == ["mine"]
    assert "non-allowable root" in cx.log("mds.a")


def test_osd_ops_outside_the_caps_are_refused(cx):
    path = user(cx, "client.grace", "mon", "allow r", "osd",
                "allow rw pool=cephfs_metadata namespace=grace")
    config, _ = creds(cx, "client.grace", path)

    async def run():
        async with Rados.connect(config, "client.grace") as rados:
            await rados.ioctx("cephfs_metadata", "grace").write_full("db", b"ok")
            errors = []
            for pool, ns, op in [("cephfs_metadata", "", "write"), ("cephfs_data", "", "write"),
                                 ("cephfs_metadata", "", "read"), ("cephfs_metadata", "x", "read")]:
                io = rados.ioctx(pool, ns)
                with pytest.raises(RadosError) as e:
                    await (io.write_full("evil", b"x") if op == "write" else io.list())
                errors.append(e.value)
            return errors

    for e in trio.run(run):
        assert e.code == errno.EPERM and "osd caps" in str(e)
    assert "refusing op" in cx.log("osd.0")
    res = cx.cli("rados", "-p", "cephfs_metadata", "ls", check=True)
    assert "evil" not in res.stdout


def test_spoofed_address_is_refused_at_the_osd(cx):
    _, admin = creds(cx, "client.admin")
    pool = cx.cli_json("osd", "dump")["pools"][0]["pool"]

    async def run():
        async with MonClient.open(mon_host(cx), "client.admin", admin, timeout=5):
            with pytest.raises(OSDError) as ip:  # an address on another host than the socket's
                async with OSDClient.open(osd_addr(cx), "client.admin", "10.9.9.9:0/7",
                                          auth=admin):
                    pass
            async with OSDClient.open(osd_addr(cx), "client.admin", "127.0.0.1:0/7",
                                      auth=admin) as osd:
                osd.my_addr = "127.0.0.1:0/8"  # each op now names another instance
                with pytest.raises(OSDError) as op:
                    await osd.write_full(pool, "spoofed", b"x")
            return ip.value, op.value

    ip, op = trio.run(run)
    assert ip.code == errno.EPERM and "not the connection's" in str(ip)
    assert op.code == errno.EPERM and "spoofed address" in str(op)
    assert "spoofed" not in cx.cli("rados", "-p", "cephfs_metadata", "ls", check=True).stdout


def test_fenced_instance_cannot_write_under_any_address(cx):
    path = user(cx, "client.fenced", "mon", "allow r", "osd", "allow rw")
    _, auth = creds(cx, "client.fenced", path)
    pool = cx.cli_json("osd", "dump")["pools"][0]["pool"]
    first, second = "127.0.0.1:0/1111", "127.0.0.1:0/2222"

    async def run():
        async with MonClient.open(mon_host(cx), "client.fenced", auth, timeout=5):
            async with OSDClient.open(osd_addr(cx), "client.fenced", first, auth=auth) as osd:
                await osd.write_full(pool, "fenced-before", b"x")
            cx.cli("osd", "blocklist", "add", first, check=True)
            with trio.fail_after(20):  # until the osd has the map with the entry
                while True:
                    async with OSDClient.open(osd_addr(cx), "client.fenced", first,
                                              auth=auth) as osd:
                        try:
                            await osd.stat(pool, "fenced-before")
                        except OSDError as e:
                            if e.code == errno.ESHUTDOWN:
                                break
                    await trio.sleep(0.1)
            async with OSDClient.open(osd_addr(cx), "client.fenced", second, auth=auth) as osd:
                with pytest.raises(OSDError) as e:
                    await osd.write_full(pool, "fenced-after", b"x")
            return e.value

    e = trio.run(run)
    assert e.code == errno.ESHUTDOWN and "blocklisted at 127.0.0.1:0/1111" in str(e)
    assert "fenced-after" not in cx.cli("rados", "-p", "cephfs_metadata", "ls",
                                        check=True).stdout


def test_auth_commands_with_cephs_output_and_errors(cx):
    res = cx.cli("auth", "get-or-create", "client.cmd", "mon", "allow r", check=True)
    assert res.stdout.startswith("[client.cmd]\n\tkey = AQ")
    same = cx.cli("auth", "get-or-create", "client.cmd", "mon", "allow r", check=True)
    assert same.stdout == res.stdout
    clash = cx.cli("auth", "get-or-create", "client.cmd", "mon", "allow rw")
    assert clash.returncode == errno.EINVAL
    assert "key for client.cmd exists but cap mon does not match" in clash.stderr
    assert cx.cli("auth", "print-key", "client.cmd", check=True).stdout.strip() == \
        res.stdout.split("key = ")[1].strip()
    assert cx.cli("auth", "caps", "client.cmd", "mon", "allow rw",
                  check=True).stderr.strip() == "updated caps for client.cmd"
    got = cx.cli("auth", "get", "client.cmd", check=True)
    assert 'caps mon = "allow rw"' in got.stdout
    listed = json.loads(cx.cli("auth", "ls", fmt="json", check=True).stdout)
    assert "client.cmd" in [e["entity"] for e in listed["auth_dump"]]
    bad = cx.cli("auth", "caps", "client.cmd", "mon", "allow q")
    assert bad.returncode == errno.EINVAL
    assert cx.cli("auth", "del", "client.cmd", check=True).stderr.strip() == "updated"
    missing = cx.cli("auth", "get", "client.cmd")
    assert missing.returncode == errno.ENOENT and "failed to find client.cmd" in missing.stderr
    imported = cx.dir / "import.keyring"
    keyring.write(str(imported), {"client.imp": keyring.Entry(keyring.new_key(),
                                                              {"mon": "allow r"})})
    assert cx.cli("auth", "import", "-i", str(imported), check=True).stderr.strip() == \
        "imported keyring"
    ro = cx.dir / "ro-admin.keyring"
    keyring.write(str(ro), {"client.imp": keyring.parse(imported.read_text())["client.imp"]})
    denied = run_cli(["-c", str(cx.conf_path), "--id", "imp", "-k", str(ro), "auth", "ls"])
    assert denied.returncode == errno.EACCES  # auth commands need x
