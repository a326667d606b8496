"""The filesystem client against the real monitor and a fake MDS (autojump clock).

The fake MDS speaks the client protocol (hello, client_request/client_reply) over TCP and keeps
the namespace in a dict shared by every fake, as the metadata pool is shared by every holder of
a rank; it remembers completed requests by (entity, tid) as a real MDS does. It enters the
FSMap by a direct change of the monitor's pending map (no beacons), and the monitor's beacon
grace is huge so that the tick never fails a daemon that does not beacon.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import io
import json
import stat
import subprocess
import sys
import time

import pytest
import trio

from client import fscli
from client.fsclient import FSClient, FSClientError, MonUnreachable, stuck_unavailable
from common import messages as m
from common import states
from common.fsmap import MDSInfo
from common.net import Connection, ConnectionClosed, ProtocolError
from tests.inprocess.harness import Cluster

pytestmark = pytest.mark.timeout(60)


# -- a fake MDS
class FakeNamespace:
    def __init__(self) -> None:
        self.next_ino = 1
        self.inodes = {"/": self._inode(stat.S_IFDIR | 0o755)}
        self.completed: dict[tuple[str, int], m.ClientReply] = {}

    def _inode(self, mode: int) -> dict:
        self.next_ino += 1
        return {"ino": self.next_ino, "mode": mode, "uid": 0, "gid": 0, "size": 0,
                "mtime": 1.5, "ctime": 1.5, "nlink": 1, "xattrs": {}}

    @staticmethod
    def _norm(path: str) -> str:
        return "/" + "/".join(p for p in path.split("/") if p)

    def _children(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return sorted(p for p in self.inodes if p.startswith(prefix) and "/" not in p[len(prefix):]
                      and p != "/")

    def _get(self, path: str) -> dict:
        if path not in self.inodes:
            raise OSError(errno.ENOENT, path)
        return self.inodes[path]

    def _new(self, path: str, mode: int) -> dict:
        parent = self._get(self._norm(path.rsplit("/", 1)[0]))
        if not stat.S_ISDIR(parent["mode"]):
            raise OSError(errno.ENOTDIR, path)
        if path in self.inodes:
            raise OSError(errno.EEXIST, path)
        self.inodes[path] = self._inode(mode)
        return {"inode": self.inodes[path]}

    def run(self, op: str, args: dict) -> dict:
        path = self._norm(args.get("path", "/"))
        is_dir = path in self.inodes and stat.S_ISDIR(self.inodes[path]["mode"])
        if op in ("lookup", "getattr"):
            return {"inode": self._get(path)}
        if op == "readdir":
            if not stat.S_ISDIR(self._get(path)["mode"]):
                raise OSError(errno.ENOTDIR, path)
            return {"entries": [[c.rsplit("/", 1)[1], self.inodes[c]]
                                for c in self._children(path)]}
        if op == "mkdir":
            return self._new(path, stat.S_IFDIR | args.get("mode", 0o755))
        if op == "create":
            return self._new(path, stat.S_IFREG | args.get("mode", 0o644))
        if op in ("unlink", "rmdir"):
            self._get(path)
            if op == "unlink" and is_dir:
                raise OSError(errno.EISDIR, path)
            if op == "rmdir" and not is_dir:
                raise OSError(errno.ENOTDIR, path)
            if self._children(path):
                raise OSError(errno.ENOTEMPTY, path)
            del self.inodes[path]
            return {}
        if op == "rename":
            src, dst = self._norm(args["src"]), self._norm(args["dst"])
            self._get(src)
            for p in [p for p in self.inodes if p == src or p.startswith(src + "/")]:
                self.inodes[dst + p[len(src):]] = self.inodes.pop(p)
            return {}
        if op == "setattr":
            inode = self._get(path)
            for key in ("mode", "uid", "gid", "size", "mtime"):
                if key in args:
                    inode[key] = args[key]
            inode["xattrs"].update(args.get("xattrs", {}))
            return {"inode": inode}
        raise OSError(errno.EINVAL, op)


class FakeMDS:
    def __init__(self, name: str, ns: FakeNamespace) -> None:
        self.name = name
        self.ns = ns
        self.seen: list[tuple[str, int, int, str]] = []  # (entity, tid, retry, op)
        self.session_ops: list[tuple[str, str]] = []
        self.oldest: list[tuple[int, int]] = []  # (tid, oldest_tid) as sent
        self.eagain = 0  # answer this many requests with -EAGAIN
        self.hold: trio.Event | None = None  # requests wait for it (never answered if unset)
        self.after_apply = None  # if set: apply, call it, close the connection without a reply
        self.safe_gate: trio.Event | None = None  # send an unsafe reply, the safe one once set
        self.delays: dict[str, float] = {}  # path -> seconds before answering
        self.conns: set[Connection] = set()
        self.addr = ""
        self.gid = 0

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as self.scope:
            await trio.serve_tcp(self._handle, 0, host="127.0.0.1", task_status=task_status)

    async def start(self, nursery: trio.Nursery) -> FakeMDS:
        listeners = await nursery.start(self.run)
        self.addr = f"127.0.0.1:{listeners[0].socket.getsockname()[1]}/{id(self) % 10**6}"
        return self

    def stop(self) -> None:
        self.scope.cancel()

    async def drop_connections(self) -> None:
        for conn in list(self.conns):
            await conn.aclose()

    async def _handle(self, stream) -> None:
        conn = Connection(stream)
        self.conns.add(conn)
        try:
            async with trio.open_nursery() as nursery:
                try:
                    hello = await conn.recv()
                    await conn.send(m.HelloOk(global_id=0, fsid=""))
                    while True:
                        req = await conn.recv()
                        if isinstance(req, m.ClientRequest):  # in the order received
                            self.seen.append((hello.entity, req.tid, req.retry, req.op))
                        nursery.start_soon(self._answer, conn, hello.entity, req)
                except (ConnectionClosed, ProtocolError):
                    nursery.cancel_scope.cancel()
        finally:
            self.conns.discard(conn)
            await conn.aclose()

    async def _answer(self, conn: Connection, entity: str, req) -> None:
        if isinstance(req, (m.ClientSession, m.ClientReconnect)):  # sessions always open
            self.session_ops.append((entity, getattr(req, "op", "reconnect")))
            answer = {"request_open": "open", "request_renewcaps": "renewcaps",
                      "request_close": "close"}.get(getattr(req, "op", ""), "open")
            with contextlib.suppress(ConnectionClosed):
                await conn.send(m.ClientSession(answer, seq=getattr(req, "seq", 0)))
            return
        self.oldest.append((req.tid, req.oldest_tid))
        reply = self.ns.completed.get((entity, req.tid))
        if reply is None:
            if self.eagain > 0:
                self.eagain -= 1
                await conn.send(m.ClientReply(tid=req.tid, rc=-errno.EAGAIN))
                return
            if self.hold is not None:
                await self.hold.wait()
            await trio.sleep(self.delays.get(req.args.get("path"), 0))
            try:
                reply = m.ClientReply(tid=req.tid, rc=0, result=self.ns.run(req.op, req.args))
            except OSError as e:
                reply = m.ClientReply(tid=req.tid, rc=-e.errno, error=e.strerror)
            self.ns.completed[(entity, req.tid)] = reply
            if self.after_apply is not None:
                self.after_apply()
                await conn.aclose()
                return
            if self.safe_gate is not None and reply.rc == 0:
                await conn.send(m.ClientReply(tid=req.tid, rc=0, result=reply.result, safe=False))
                await self.safe_gate.wait()
                reply = m.ClientReply(tid=req.tid, rc=0)  # the safe reply without a result
        try:
            await conn.send(reply)
        except ConnectionClosed:
            pass


# -- the monitor, and fakes in its map
def publish(c: Cluster, change) -> None:
    """Change the monitor's pending FSMap, commit and publish it."""
    core = c.mon.core
    with core.propose(trio.current_time(), time.time()) as effects:
        change(core, core.pfs, time.time())
    c.mon.carry_out(effects)


def make_holder(c: Cluster, fake: FakeMDS, state: int = states.ACTIVE) -> None:
    """`fake` takes rank 0 of cephfs (its old holder is failed and blocklisted)."""
    def change(core, p, wall):
        fs = p.fs_by_name("cephfs")
        old = fs.holder(0)
        if old is not None:
            core.fail_mds_gid(old.gid, wall)
        fake.gid = core.allocate_gid()
        p.insert(MDSInfo(gid=fake.gid, name=fake.name, addr=fake.addr))
        p.promote(fake.gid, fs, 0, wall)
        p.modify_daemon(fake.gid, wall).state = state

    publish(c, change)


def set_state(c: Cluster, fake: FakeMDS, state: int) -> None:
    publish(c, lambda core, p, wall: setattr(p.modify_daemon(fake.gid, wall), "state", state))


CLUSTER = {"mon_options": {"mds_beacon_grace": 1e9}, "osd": False, "fs": True}  # what conftest.cluster builds


@pytest.fixture
def ns():
    return FakeNamespace()


@pytest.fixture
async def mds_a(cluster, nursery, ns):
    fake = await FakeMDS("a", ns).start(nursery)
    make_holder(cluster, fake)
    return fake


async def wait_until(predicate) -> None:
    while not predicate():
        await trio.sleep(0.01)


# -- requests
async def test_operations(cluster, mds_a, autojump_clock):
    async with FSClient.open(cluster.mon_host) as fs:
        d = await fs.mkdir("/d", 0o700)
        assert d["mode"] == stat.S_IFDIR | 0o700
        await fs.create("/d/f")
        await fs.setattr("/d/f", size=5, xattrs={"user.a": "1"})
        st = await fs.stat("/d/f")
        assert (st["size"], st["xattrs"]) == (5, {"user.a": "1"})
        await fs.rename("/d/f", "/d/g")
        assert [name for name, _ in await fs.ls("/d")] == ["g"]
        await fs.unlink("/d/g")
        await fs.rmdir("/d")
        assert await fs.ls("/") == []
        assert (await fs.request("lookup", {"path": "/"}))["inode"]["ino"] > 0
    entities = {e for e, *_ in mds_a.seen}
    assert len(entities) == 1 and entities.pop().startswith("client.")


async def test_each_client_has_its_own_entity(cluster, mds_a, autojump_clock):
    async with FSClient.open(cluster.mon_host) as one, FSClient.open(cluster.mon_host) as two:
        await one.stat("/")
        await two.stat("/")
        assert one.entity != two.entity
    assert {e for e, *_ in mds_a.seen} == {one.entity, two.entity}
    assert all(e.removeprefix("client.").isdigit() for e, *_ in mds_a.seen)


@pytest.mark.parametrize("op,args,code", [
    ("mkdir", ("/",), errno.EEXIST),
    ("stat", ("/nope",), errno.ENOENT),
    ("mkdir", ("/nope/x",), errno.ENOENT),
    ("rmdir", ("/full",), errno.ENOTEMPTY),
    ("unlink", ("/full",), errno.EISDIR),
])
async def test_errors_carry_the_errno(cluster, mds_a, ns, op, args, code, autojump_clock):
    ns.run("mkdir", {"path": "/full"})
    ns.run("create", {"path": "/full/f"})
    async with FSClient.open(cluster.mon_host) as fs:
        with pytest.raises(FSClientError) as info:
            await getattr(fs, op)(*args)
    assert info.value.code == code


async def test_concurrent_requests_are_matched_by_tid(cluster, mds_a, autojump_clock):
    names = [f"/d{i}" for i in range(8)]
    mds_a.delays = {n: 1.0 - i / 10 for i, n in enumerate(names)}  # answered in reverse order
    results = {}
    async with FSClient.open(cluster.mon_host) as fs:
        async def one(path):
            results[path] = await fs.mkdir(path)
            results[path]["stat"] = await fs.stat(path)

        async with trio.open_nursery() as nursery:
            for n in names:
                nursery.start_soon(one, n)
    for n in names:
        assert results[n]["ino"] == results[n]["stat"]["ino"]
    assert len({r["ino"] for r in results.values()}) == len(names)
    # oldest_tid: the oldest request still unanswered, so the MDS may drop older records
    first = min(t for t, _ in mds_a.oldest)
    assert all(o <= t for t, o in mds_a.oldest)
    assert all(o == first for t, o in mds_a.oldest if t < first + len(names))  # all in flight
    assert max(o for _, o in mds_a.oldest) > first  # later ones: the first was answered


async def test_returns_on_the_unsafe_reply_and_sync_waits_for_the_safe_one(
        cluster, mds_a, autojump_clock):
    """Ceph's client returns on the unsafe reply; sync (and unmount) waits for the safe one,
    and the request stays in flight (oldest_tid) until then."""
    mds_a.safe_gate = trio.Event()
    synced = []
    async with FSClient.open(cluster.mon_host) as fs:
        inode = await fs.mkdir("/x")  # the unsafe reply's result
        assert inode["ino"] == mds_a.ns.inodes["/x"]["ino"]
        await fs.stat("/")
        mkdir_tid = mds_a.oldest[0][0]
        assert mds_a.oldest[-1] == (mkdir_tid + 1, mkdir_tid)  # the mkdir is still unsafe

        async def sync():
            synced.append(await fs.sync())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sync)
            await trio.sleep(5)
            assert not synced  # no safe reply yet
            mds_a.safe_gate.set()
        assert synced == [[]]  # safe, nothing lost
        await fs.stat("/")
        assert mds_a.oldest[-1][1] > mkdir_tid  # the MDS may forget the mkdir now


async def test_an_unsafe_request_that_cannot_be_made_safe_is_reported_lost(
        cluster, mds_a, ns, nursery, autojump_clock):
    """The holder dies between the unsafe and the safe reply; its successor replays the
    request (C4) but fails it (here: the successor has no trace of it and the namespace
    changed meanwhile): the caller was told ok, so the loss is reported, not hidden."""
    mds_a.safe_gate = trio.Event()  # never set: a dies before journaling
    lost_cb = []
    async with FSClient.open(cluster.mon_host, timeout=30) as fs:
        await fs.request("mkdir", {"path": "/x", "mode": 0o755}, on_lost=lost_cb.append)
        tid = mds_a.seen[-1][1]
        del ns.inodes["/x"]  # a's change never reached the journal
        ns.completed.clear()
        ns.inodes["/x"] = ns._inode(stat.S_IFREG | 0o644)  # someone else made /x since
        mds_b = await FakeMDS("b", ns).start(nursery)
        make_holder(cluster, mds_b, states.RECONNECT)
        mds_a.stop()
        await wait_until(lambda: any(t == tid for _, t, _, _ in mds_b.seen))
        set_state(cluster, mds_b, states.ACTIVE)
        lost = await fs.sync()
    assert [(x.tid, x.op) for x in lost] == [(tid, "mkdir")]
    assert "failed: EEXIST" in lost[0].reason
    assert lost_cb == lost


async def test_a_failover_between_unsafe_and_safe_loses_nothing(
        cluster, mds_a, ns, nursery, autojump_clock):
    """C4: what was answered unsafe is replayed to the next holder in up:reconnect, which
    answers it (from its completed requests, or by re-executing it): sync reports no loss."""
    mds_a.safe_gate = trio.Event()
    async with FSClient.open(cluster.mon_host, timeout=30) as fs:
        await fs.mkdir("/x")
        await fs.create("/x/f")
        mds_b = await FakeMDS("b", ns).start(nursery)
        make_holder(cluster, mds_b, states.RECONNECT)
        mds_a.stop()
        await wait_until(lambda: len(mds_b.seen) == 2)
        assert [op for *_, op in mds_b.seen] == ["mkdir", "create"]  # replayed in order
        set_state(cluster, mds_b, states.ACTIVE)
        assert await fs.sync() == []
    assert "/x/f" in ns.inodes


# -- failover
async def test_holder_change_resends_in_flight_request_with_same_tid(
        cluster, mds_a, ns, nursery, autojump_clock):
    async with FSClient.open(cluster.mon_host) as fs:
        await fs.stat("/")
        mds_a.hold = trio.Event()  # a never answers now
        result = []

        async def mkdir():
            result.append(await fs.mkdir("/x"))

        nursery.start_soon(mkdir)
        await wait_until(lambda: any(op == "mkdir" for *_, op in mds_a.seen))
        entity, tid, retry, _ = mds_a.seen[-1]
        assert retry == 0
        mds_b = await FakeMDS("b", ns).start(nursery)
        make_holder(cluster, mds_b, states.REPLAY)  # a is failed; b replays
        mds_a.stop()
        await trio.sleep(10)
        assert not result and mds_b.seen == []  # nobody to talk to until b is active
        set_state(cluster, mds_b, states.RECONNECT)
        set_state(cluster, mds_b, states.ACTIVE)
        await wait_until(lambda: result)
    assert mds_b.seen == [(entity, tid, 1, "mkdir")]
    assert result[0]["mode"] & stat.S_IFDIR


async def test_reply_lost_after_apply_is_answered_from_completed_requests(
        cluster, mds_a, ns, nursery, autojump_clock):
    """The old holder applied the mkdir but its reply was lost: the resend (same tid) must
    be recognised by the new holder, not run again (which would say EEXIST)."""
    mds_b = await FakeMDS("b", ns).start(nursery)

    def failover():
        mds_a.stop()
        make_holder(cluster, mds_b)

    async with FSClient.open(cluster.mon_host) as fs:
        mds_a.after_apply = failover
        inode = await fs.mkdir("/x")
    assert inode["ino"] == ns.inodes["/x"]["ino"]
    (entity, tid, retry, op), = mds_b.seen
    assert (tid, retry, op) == (mds_a.seen[0][1], 1, "mkdir")


async def test_dropped_connection_reconnects_to_the_same_holder(
        cluster, mds_a, nursery, autojump_clock):
    async with FSClient.open(cluster.mon_host) as fs:
        mds_a.hold = trio.Event()

        async def drop_then_answer():
            await wait_until(lambda: mds_a.seen)
            await mds_a.drop_connections()
            mds_a.hold = None

        nursery.start_soon(drop_then_answer)
        await fs.mkdir("/x")
    assert [(tid, retry) for _, tid, retry, _ in mds_a.seen] == [(1, 0), (1, 1)]


async def test_eagain_is_retried(cluster, mds_a, autojump_clock):
    mds_a.eagain = 2
    async with FSClient.open(cluster.mon_host) as fs:
        await fs.mkdir("/x")
    assert [(tid, retry) for _, tid, retry, _ in mds_a.seen] == [(1, 0), (1, 1), (1, 2)]


async def test_follows_the_map_across_a_mon_restart(cluster, mds_a, ns, nursery,
                                                    autojump_clock):
    async with FSClient.open(cluster.mon_host) as fs:
        await fs.mkdir("/x")
        cluster.stop_mon()
        await trio.sleep(10)
        await cluster.start_mon()  # same store, same port
        mds_b = await FakeMDS("b", ns).start(nursery)
        make_holder(cluster, mds_b)
        mds_a.stop()
        assert (await fs.stat("/x"))["ino"] == ns.inodes["/x"]["ino"]
    assert [op for *_, op in mds_b.seen] == ["getattr"]


async def test_no_active_holder_times_out(cluster, mds_a, autojump_clock):
    async with FSClient.open(cluster.mon_host, timeout=30) as fs:
        publish(cluster, lambda core, p, wall: core.fail_mds_gid(mds_a.gid, wall))
        start = trio.current_time()
        with pytest.raises(FSClientError) as info:
            await fs.stat("/")
    assert info.value.code == errno.ETIMEDOUT
    assert "rank 0 of cephfs is failed" in info.value.message
    assert trio.current_time() - start == pytest.approx(30, abs=1)


async def test_unknown_fs_and_unreachable_mon(cluster, mds_a, autojump_clock):
    with pytest.raises(FSClientError) as info:
        async with FSClient.open(cluster.mon_host, fs_name="other"):
            pass
    assert info.value.code == errno.ENOENT
    async with FSClient.open(cluster.mon_host, fs_name="cephfs") as fs:
        await fs.stat("/")
    with pytest.raises(MonUnreachable):
        async with FSClient.open("127.0.0.1:1", connect_timeout=3):
            pass


def _set_laggy(c: Cluster, fake: FakeMDS, laggy: bool) -> None:
    publish(c, lambda core, p, wall: setattr(p.modify_daemon(fake.gid, wall), "laggy_since",
                                             wall if laggy else 0.0))


async def test_mount_fails_at_once_while_the_rank_holder_is_laggy(cluster, mds_a,
                                                                  autojump_clock):
    # Client::mount: MDSMap::is_cluster_available() says STUCK_UNAVAILABLE
    _set_laggy(cluster, mds_a, True)
    start = trio.current_time()
    with pytest.raises(FSClientError) as info:
        async with FSClient.open(cluster.mon_host, fs_name="cephfs", timeout=30):
            pass
    assert info.value.code == errno.EHOSTUNREACH
    assert info.value.message == ("mds cluster unavailable: rank 0 of cephfs is held by mds.a, "
                                  "which is laggy; probably no MDS server is up?")
    assert trio.current_time() - start < 1.0  # not the 30 s request timeout
    async with FSClient.open(cluster.mon_host, timeout=30, require_mds=False):
        pass  # libcephfs's ceph_mount does not require an MDS
    _set_laggy(cluster, mds_a, False)
    async with FSClient.open(cluster.mon_host, fs_name="cephfs", timeout=30) as fs:
        await fs.stat("/")


async def test_mount_fails_at_once_on_a_damaged_or_down_fs(cluster, mds_a, autojump_clock):
    fs = copy.deepcopy(cluster.fsmap.fs_by_name("cephfs"))
    assert stuck_unavailable(fs) is None
    fs.damaged.add(1)
    assert stuck_unavailable(fs) == "rank 1 of cephfs is damaged"
    fs.damaged.clear()
    fs.in_.clear()
    assert stuck_unavailable(fs) == "cephfs has no MDS ranks (it is down)"
    publish(cluster, lambda core, p, wall: core.fail_mds_gid(mds_a.gid, wall))
    assert stuck_unavailable(cluster.fsmap.fs_by_name("cephfs")) is None  # failing over: wait


# -- the command line
def _args(*argv: str):
    return fscli.parse_args(list(argv))


async def test_cli_ops(cluster, mds_a, capsys, autojump_clock):
    out = io.StringIO()

    async def run(*argv: str) -> int:
        out.seek(0)
        out.truncate()
        async with FSClient.open(cluster.mon_host) as fs:
            return await fscli.run_op(fs, _args(*argv), out)

    assert await run("mkdir", "-p", "/a/b") == 0
    assert await run("mkdir", "-p", "/a/b") == 0
    assert await run("touch", "/a/f", "/a/f") == 0
    assert await run("mkdir", "/a", "/c") == errno.EEXIST  # /c is made all the same
    assert await run("setfattr", "-n", "user.k", "-v", "v", "/a/f") == 0
    assert await run("mv", "/a/f", "/a/g") == 0
    capsys.readouterr()
    assert await run("ls", "/a") == 0
    assert out.getvalue() == "b\ng\n"
    assert await run("-f", "json", "stat", "/a/g") == 0
    doc = json.loads(out.getvalue())
    assert (doc["path"], doc["xattrs"]) == ("/a/g", {"user.k": "v"})
    assert await run("rm", "/nope", "/a/g") == errno.ENOENT
    assert capsys.readouterr().err == "mdsemu client: rm /nope: No such file or directory\n"
    assert await run("rmdir", "/a/b", "/a", "/c") == 0
    assert await run("ls") == 0
    assert out.getvalue() == ""


def test_cli_unreachable_mon_exits_110(tmp_path):
    conf = tmp_path / "ceph.conf"
    conf.write_text("[global]\nmon_host = 127.0.0.1:1\nmon_client_hunt_interval = 0.1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "client", "client", "-c", str(conf), "--connect-timeout", "0.5",
         "ls", "/"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == errno.ETIMEDOUT
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mdsemu client: error connecting")


async def test_cli_process(cluster, mds_a, tmp_path):
    """The whole command (`mdsemu client ...` through client.cli), in real time."""
    conf = tmp_path / "ceph.conf"
    conf.write_text(f"[global]\nmon_host = {cluster.mon_host}\n")

    async def run(*argv: str):
        proc = await trio.run_process(
            [sys.executable, "-m", "client", "client", "-c", str(conf), *argv],
            capture_stdout=True, capture_stderr=True, check=False)
        return proc.returncode, proc.stdout.decode(), proc.stderr.decode()

    assert await run("mkdir", "/a") == (0, "", "")
    assert await run("mkdir", "/a") == (errno.EEXIST, "", "mdsemu client: mkdir /a: File exists\n")
    assert await run("ls", "/", "-f", "json") == (0, json.dumps(
        {"path": "/", "entries": [dict(mds_a.ns.inodes["/a"], name="a")]}) + "\n", "")
    assert (await run("--fs", "nope", "ls"))[0] == errno.ENOENT
