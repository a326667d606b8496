"""Several active ranks, in one trio.run under the autojump clock: export pins, forwards,
a failed rank's subtrees waiting while the others serve, up:resolve, and shrinking (X4)."""

from __future__ import annotations

import errno
import json

import pytest
import trio

from client.fsclient import FSClient, FSClientError
from client.load import run_load
from client.verify import read_history, verify
from common import states
from mds import subtree
from tests.inprocess.harness import Cluster
from tests.inprocess.test_sessions import StateLog

pytestmark = pytest.mark.timeout(60)


CLUSTER = {"profile": "fast", "fs": True, "mds": "abc"}  # what conftest.cluster builds


@pytest.fixture
async def cluster(cluster):
    """Two active ranks (and a standby)."""
    await cluster.ok("fs", "set", "cephfs", "max_mds", "2")
    await cluster.wait_for(lambda: cluster.holder_name(rank=1), what="rank 1 active")
    return cluster


def _daemon(c: Cluster, rank: int):
    return c.mds[c.holder_name(rank=rank)].daemon


def _holds(c: Cluster, rank: int, path: str) -> bool:
    ns = _daemon(c, rank).data.ns
    try:
        return subtree.holds(ns, ns.resolve(path).ino)
    except Exception:  # noqa: BLE001 - not there (yet)
        return False


async def _pinned_tree(c: Cluster, fs: FSClient) -> None:
    for d in ("/r0", "/r1"):
        await fs.mkdir(d)
    # Both names hash to rank 1 (the default spread); the pins decide.
    await fs.setattr("/r0", xattrs={subtree.PIN_XATTR: "0"})
    await fs.setattr("/r1", xattrs={subtree.PIN_XATTR: "1"})
    await c.wait_for(lambda: _holds(c, 1, "/r1") and _holds(c, 0, "/r0"),
                     what="rank 1 holding /r1, rank 0 /r0")
    for i in range(40):
        await fs.create(f"/r0/f{i}")
        await fs.create(f"/r1/f{i}")


async def test_R7_export_pin_moves_a_subtree_and_requests_follow_it(cluster, autojump_clock):
    c = cluster
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await _pinned_tree(c, fs)
        assert not _holds(c, 0, "/r1") and _holds(c, 0, "/r0")
        assert fs.core.subtrees.get("/r1") == 1  # learnt from rank 0's forward
        assert sorted(n for n, _ in await fs.ls("/")) == ["r0", "r1"]
        assert len(await fs.ls("/r1")) == 40
        assert _daemon(c, 1).data.requests >= 40
        # Unpinned (-1), the subtree goes back to the rank holding its parent.
        await fs.setattr("/r1", xattrs={subtree.PIN_XATTR: "-1"})
        await c.wait_for(lambda: _holds(c, 0, "/r1"), what="rank 0 holding /r1 again")
        assert len(await fs.ls("/r1")) == 40


async def test_failed_rank_waits_while_the_other_serves_then_resolve(cluster, nursery,
                                                                     autojump_clock):
    c = cluster
    watch = StateLog(c, rank=1)
    nursery.start_soon(watch.run)
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await _pinned_tree(c, fs)
        victim = c.holder_name(rank=1)
        c.mds[victim].kill()
        t0 = trio.current_time()
        slowest = 0.0
        n = 0
        while c.holder_name(rank=1) in (None, victim):  # rank 1 being replaced; rank 0 serves
            start = trio.current_time()
            await fs.create(f"/r0/during{n}")
            slowest = max(slowest, trio.current_time() - start)
            n += 1
            await trio.sleep(0.02)
        assert trio.current_time() - t0 > 0.5 and n > 10  # about the grace (1 s)
        assert slowest < 0.1  # no wait on the failed rank
        names = [n for n, _ in await fs.ls("/r1")]
        assert sorted(names) == sorted(f"f{i}" for i in range(40))
    assert "up:resolve" in watch.states_of(c.holder_name(rank=1))  # R3: two ranks in


async def test_X4_shrinking_hands_subtrees_to_rank_0_and_keeps_every_entry(cluster,
                                                                           autojump_clock):
    c = cluster
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await _pinned_tree(c, fs)
        await c.ok("fs", "set", "cephfs", "max_mds", "1")
        await c.wait_for(lambda: 1 not in c.fsmap.fs_by_name("cephfs").in_,
                         what="rank 1 stopped")
        assert _holds(c, 0, "/r1")
        assert sorted(n for n, _ in await fs.ls("/r1")) == sorted(f"f{i}" for i in range(40))
        await fs.create("/r1/after")
    info = c.fsmap.fs_by_name("cephfs")
    assert info.stopped == {1} and states.name(info.holder(0).state) == "up:active"


async def test_X4_a_stopping_rank_hands_over_a_subtree_a_late_commit_leaves_it(
        cluster, nursery, autojump_clock):
    """Rank 1 prepares, as the witness, the rename of a directory whose contents it holds
    (they stay with it, a new subtree root of its own) while active; the master's commit
    reaches it only once it is up:stopping. It must hand that subtree to rank 0 too, not
    only those it held when it began stopping: else rank 0 forwards every request under it
    to a rank that has stopped (seen under load in test_subtrees.py as a `client verify`
    that got no answer for a minute)."""
    c = cluster
    stopper = c.holder_name(rank=1)
    data = c.mds[stopper].daemon.data
    finish = data.xrank_finish

    async def late_finish(xid, commit):  # the master's decision, delayed until X4 began
        while c.mds[stopper].daemon.state != states.STOPPING:
            await trio.sleep(0.01)
        await finish(xid, commit)

    data.xrank_finish = late_finish
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await _pinned_tree(c, fs)
        await fs.mkdir("/r1/d")
        await fs.create("/r1/d/x")
        renamed = trio.Event()

        async def rename():
            await fs.rename("/r1/d", "/r0/d")  # rank 0 master, rank 1 witness keeping d's
            renamed.set()

        nursery.start_soon(rename)
        await c.wait_for(lambda: data.ns.xpeer, what="rank 1 prepared the rename")
        await c.ok("fs", "set", "cephfs", "max_mds", "1")
        await c.wait_for(lambda: 1 not in c.fsmap.fs_by_name("cephfs").in_,
                         what="rank 1 stopped")
        await c.wait_for(renamed.is_set, what="the rename's answer")
    assert _holds(c, 0, "/r0/d") and _holds(c, 0, "/r1")
    assert _daemon(c, 0).data.ns.exported == {}  # nothing forwarded to the stopped rank
    assert all(s["is_auth"] for s in _subtrees(c, 0).values())
    assert sorted(_daemon(c, 0).data.ns.dentries[_daemon(c, 0).data.ns.resolve("/r0/d").ino]
                  ) == ["x"]


async def test_default_spread_of_top_level_directories(cluster, autojump_clock):
    c = cluster
    assert {subtree.default_rank(n, 2) for n in ("left", "one")} == {0, 1}
    assert subtree.default_rank("one", 1) == 0
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await fs.mkdir("/left")
        await fs.mkdir("/one")
        await c.wait_for(lambda: _holds(c, 1, "/one"), what="/one spread to rank 1")
        await fs.create("/one/f")
        await fs.create("/left/f")
    assert _holds(c, 0, "/left")


def _subtrees(c: Cluster, rank: int) -> dict[str, dict]:
    """`tell mds.<rank> get subtrees`, by path."""
    out = _daemon(c, rank).run_admin(["get", "subtrees"], "json", trio.current_time())
    assert out[0] == 0, out
    return {s["dir"]["path"]: s for s in json.loads(out[2])}


async def test_a_relayed_pin_is_durable_on_the_rank_holding_the_subtree(cluster,
                                                                        autojump_clock):
    """The pin is set through rank 0 (the inode's auth) and relayed to rank 1 (holding the
    contents); rank 1 journals it, so its replacement still shows it after replay."""
    c = cluster
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await _pinned_tree(c, fs)
        assert _subtrees(c, 1)["/r1"]["export_pin"] == 1
        await fs.setattr("/r1", xattrs={subtree.PIN_XATTR: "2"})  # no rank 2: it stays
        await c.wait_for(lambda: _subtrees(c, 1)["/r1"]["export_pin"] == 2,
                         what="rank 1 to show the relayed pin")
        victim = c.holder_name(rank=1)
        c.mds[victim].kill()
        await c.wait_for(lambda: c.holder_name(rank=1) not in (None, victim),
                         what="rank 1 replaced")
        sub = _subtrees(c, 1)["/r1"]
        assert sub["is_auth"] and sub["export_pin"] == 2
        assert len(await fs.ls("/r1")) == 40


# -- cross-rank operations (mds.xrank): rename between ranks, rmdir of an exported root
async def _names(c: Cluster, path: str) -> list[str]:
    """ls as a new client sees it (it learns the subtrees from forwards)."""
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fresh:
        return sorted(n for n, _ in await fresh.ls(path))


def _has(c: Cluster, rank: int, path: str) -> bool:
    """Does rank `rank` itself have this entry (its namespace, not a stub)?"""
    ns = _daemon(c, rank).data.ns
    try:
        node = ns.resolve(path)
    except Exception:  # noqa: BLE001 - not there
        return False
    return subtree.holds(ns, ns.parent[node.ino])


async def test_rename_across_ranks_moves_files_and_directories(cluster, autojump_clock):
    c = cluster
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await _pinned_tree(c, fs)
        await fs.rename("/r0/f1", "/r1/g1")  # a file: rank 1 is master, rank 0 witness
        await fs.rename("/r1/f2", "/r0/g2")  # and the other way
        assert (await fs.stat("/r1/g1"))["mode"] & 0o100000
        await fs.mkdir("/r0/d")
        await fs.create("/r0/d/x")
        await fs.rename("/r0/d", "/r1/d")  # a directory: its contents stay on rank 0
        await fs.create("/r1/d/y")
        assert sorted(n for n, _ in await fs.ls("/r1/d")) == ["x", "y"]
        await fs.rename("/r1/f3", "/r1/f4")  # replaces, within rank 1
        await fs.rename("/r0/f5", "/r1/f4")  # replaces, across ranks
    r0, r1 = await _names(c, "/r0"), await _names(c, "/r1")
    assert "f1" not in r0 and "g1" in r1 and "f2" not in r1 and "g2" in r0
    assert "d" not in r0 and "d" in r1 and "f5" not in r0 and r1.count("f4") == 1
    assert await _names(c, "/r1/d") == ["x", "y"]
    assert not _has(c, 0, "/r0/f1") and _has(c, 1, "/r1/g1")
    assert _has(c, 0, "/r1/d/x") and _subtrees(c, 0)["/r1/d"]["is_auth"]  # a new subtree root
    assert not _subtrees(c, 1)["/r1/d"]["is_auth"]


async def test_rmdir_of_an_exported_subtree_root(cluster, autojump_clock):
    c = cluster
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await _pinned_tree(c, fs)
        with pytest.raises(FSClientError) as e:  # rank 1 holds its 40 files
            await fs.rmdir("/r1")
        assert e.value.code == errno.ENOTEMPTY
        await fs.mkdir("/e")
        await fs.setattr("/e", xattrs={subtree.PIN_XATTR: "1"})
        await c.wait_for(lambda: _holds(c, 1, "/e"), what="rank 1 holding /e")
        await fs.rmdir("/e")
        assert await _names(c, "/") == ["r0", "r1"]
        with pytest.raises(FSClientError) as e:
            await fs.stat("/e")
        assert e.value.code == errno.ENOENT
    assert "/e" not in _subtrees(c, 0) and "/e" not in _subtrees(c, 1)


def _stuck_after(obj, method: str, hit: trio.Event, run_first: bool) -> None:
    """Make `obj.<method>` stop for good (a crash point): after it ran, or instead."""
    orig = getattr(obj, method)

    async def stuck(*args, **kwargs):
        if run_first:
            await orig(*args, **kwargs)
        hit.set()
        await trio.sleep_forever()

    setattr(obj, method, stuck)


@pytest.mark.parametrize(("victim_rank", "method", "run_first", "committed"), [
    (1, "xrank_commit", False, False),  # master dies: witness prepared, no EUpdate
    (1, "_xfinish_once", False, True),  # master dies: EUpdate journaled, witness not told
    (1, "xrank_committed", False, True),  # master dies: both committed, no ECommitted
    (0, "xrank_prepare", True, False),  # witness dies: prepared, master not answered
    (0, "xrank_finish", False, True),  # witness dies: master committed, witness did not
])
async def test_a_crash_between_prepare_and_commit_leaves_the_entry_once(
        cluster, nursery, autojump_clock, victim_rank, method, run_first, committed):
    c = cluster
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=60) as fs:
        await _pinned_tree(c, fs)
        hit = trio.Event()
        daemon = _daemon(c, victim_rank)
        _stuck_after(daemon.peers if method.startswith("_") else daemon.data, method, hit,
                     run_first)
        outcome: list = []

        async def rename():
            try:
                await fs.rename("/r0/f7", "/r1/g7")
                outcome.append(0)
            except FSClientError as e:
                outcome.append(e.code)

        nursery.start_soon(rename)
        with trio.fail_after(30):
            await hit.wait()
        if committed:  # the master's journal has it; what the witness shows is locked
            assert _has(c, 1, "/r1/g7")
        victim = c.holder_name(rank=victim_rank)
        c.mds[victim].kill()
        await c.wait_for(lambda: c.holder_name(rank=victim_rank) not in (None, victim),
                         what=f"rank {victim_rank} replaced")
        await c.wait_for(lambda: outcome, what="the rename's answer")
        assert outcome == [0]  # resent (or retried) by the client, done once
        r0, r1 = await _names(c, "/r0"), await _names(c, "/r1")
        assert "f7" not in r0 and "g7" in r1 and len(r0) == 39 and len(r1) == 41
        assert (await fs.stat("/r1/g7"))["ino"] and not _has(c, 0, "/r0/f7")
        for rank in (0, 1):  # nothing left prepared or locked on either rank
            data = _daemon(c, rank).data
            assert data.ns.xpeer == {} and data.locked() == set()
        await c.wait_for(lambda: not _daemon(c, 1).data.ns.xmaster, what="ECommitted")


async def test_load_with_renames_across_ranks_verifies(cluster, autojump_clock, tmp_path):
    """--pin-ranks: each client's x is on the other rank; the load's renames in and out of it
    cross ranks, and the checker finds every acknowledged one."""
    c = cluster
    history = str(tmp_path / "history.jsonl")
    loaded = await run_load(c.mon_host, 2, 4.0, history, seed=3, pin_ranks=True)
    summary = await verify(c.mon_host, history)
    assert summary.violations == [], summary.text()
    assert loaded.unknown == 0 and summary.acknowledged == loaded.acknowledged > 50
    _, records = read_history(history)
    crossing = [r for r in records if r["type"] == "complete" and r["op"] == "rename"
                and r["result"] == "ok" and
                ("/x/" in r["args"]["src"]) != ("/x/" in r["args"]["dst"])]
    assert len(crossing) >= 3
    assert _holds(c, 1, "/load/c0/x") and _holds(c, 0, "/load/c1/x")


async def test_a_pin_set_while_the_holder_is_down_reaches_its_replacement(cluster,
                                                                         autojump_clock):
    c = cluster
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=30) as fs:
        await _pinned_tree(c, fs)
        victim = c.holder_name(rank=1)
        c.mds[victim].kill()
        await fs.setattr("/r1", xattrs={subtree.PIN_XATTR: "2"})  # rank 0 (the inode's)
        await c.wait_for(lambda: c.holder_name(rank=1) not in (None, victim),
                         what="rank 1 replaced")
        await c.wait_for(lambda: _subtrees(c, 1)["/r1"]["export_pin"] == 2,
                         what="the relayed pin on rank 1's replacement")
