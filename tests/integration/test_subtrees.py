"""Two active ranks with real processes, fast profile: export pins, a failed rank 1 while
rank 0 keeps serving, up:resolve, and shrinking to one rank without losing an entry (X4)."""

from __future__ import annotations

import os
import signal

import pytest
import trio

from client.fsclient import FSClient, FSClientError
from common import states
from tests.integration.cluster import Cluster

pytestmark = [pytest.mark.processes, pytest.mark.timeout(180)]

N = 100


def _holder(dump: dict, rank: int) -> dict | None:
    fs = dump["filesystems"][0]["mdsmap"]
    return next((i for i in fs["info"].values() if i["rank"] == rank), None)


def _active(dump: dict, rank: int) -> dict | None:
    i = _holder(dump, rank)
    return i if i is not None and i["state"] == "up:active" else None


def _auth_paths(c: Cluster, name: str) -> set[str]:
    return {s["dir"]["path"] for s in c.cli_json("tell", f"mds.{name}", "get", "subtrees")
            if s["is_auth"]}


def test_two_ranks_pins_failover_of_rank_1_and_shrink(cluster_factory):
    c = cluster_factory().start(("a", "b", "c"))
    c.ok("fs", "set", "cephfs", "max_mds", "2")
    dump = c.wait_map(lambda d: _active(d, 1) and d, 30, "rank 1 active")
    mon = f"127.0.0.1:{c.port}"

    async def populate():
        async with FSClient.open(mon, fs_name="cephfs", timeout=60, auth=c.auth_key()) as fs:
            for d, rank in (("/r0", "0"), ("/r1", "1")):
                await fs.mkdir(d)
                await fs.setattr(d, xattrs={"ceph.dir.pin": rank})  # export pins
            with trio.fail_after(30):
                while "/r1" not in await trio.to_thread.run_sync(
                        _auth_paths, c, _active(dump, 1)["name"]):
                    await trio.sleep(0.05)
            for i in range(N):
                await fs.create(f"/r0/f{i}")
                await fs.create(f"/r1/f{i}")

    trio.run(populate)
    assert "/r0" not in _auth_paths(c, _active(dump, 1)["name"])

    victim = _active(dump, 1)
    pid = c.pid_of(victim["name"])

    async def during_failover():
        """Rank 0's subtree stays served while rank 1 is replaced."""
        async with FSClient.open(mon, fs_name="cephfs", timeout=60, auth=c.auth_key()) as fs:
            await fs.stat("/r0")
            os.kill(pid, signal.SIGKILL)
            slowest, n = 0.0, 0
            with trio.fail_after(60):
                while True:
                    new = fs.fsmap.fs_by_name("cephfs").holder(1)  # the client's own map
                    if new is not None and new.gid != victim["gid"] and \
                            new.state == states.ACTIVE:
                        break
                    t = trio.current_time()
                    await fs.create(f"/r0/during{n}")
                    slowest = max(slowest, trio.current_time() - t)
                    n += 1
                    await trio.sleep(0.01)
            return slowest, n, [name for name, _ in await fs.ls("/r1")]

    slowest, n, r1 = trio.run(during_failover)
    assert n > 5 and slowest < 0.5, (n, slowest)  # no op on rank 0 waited for the failover
    assert sorted(r1) == sorted(f"f{i}" for i in range(N))
    new = _active(c.fs_dump(), 1)
    assert "resolve_start" in c.log(f"mds.{new['name']}")  # R3: two ranks in: up:resolve

    c.ok("fs", "set", "cephfs", "max_mds", "1")  # X4: rank 1 hands /r1 to rank 0
    c.wait_map(lambda d: 1 in d["filesystems"][0]["mdsmap"]["stopped"], 60, "rank 1 stopped")
    assert _auth_paths(c, _active(c.fs_dump(), 0)["name"]) == {""}  # all of it, from the root

    async def listing():
        async with FSClient.open(mon, fs_name="cephfs", timeout=60, auth=c.auth_key()) as fs:
            return ({name for name, _ in await fs.ls("/r0")},
                    {name for name, _ in await fs.ls("/r1")})

    r0, r1 = trio.run(listing)
    assert {f"f{i}" for i in range(N)} | {f"during{i}" for i in range(n)} == r0
    assert {f"f{i}" for i in range(N)} == r1


@pytest.mark.parametrize("kill_rank", [1, 0])
def test_load_over_two_ranks_through_a_kill_and_a_shrink(cluster_factory, tmp_path, kill_rank):
    """Clients pinned over two ranks; one rank's holder is killed, then max_mds goes to 1
    (rank 1's subtrees move to rank 0 under load): verify finds every acknowledged
    operation."""
    c = cluster_factory().start(("a", "b", "c"))
    c.ok("fs", "set", "cephfs", "max_mds", "2")
    c.wait_map(lambda d: _active(d, 1), 30, "rank 1 active")
    history = tmp_path / "history.jsonl"
    with c.load(history, "--clients", "4", "--duration", "12", "--pin-ranks") as load:
        c.wait_for(lambda: history.exists() and history.stat().st_size > 20000, 30,
                   "the load to get going")
        dump = c.fs_dump()
        victim = _active(dump, kill_rank)
        # /load went to rank 1 by the default spread; the pins of c0 and c2 brought them back
        c.wait_for(lambda: {"/load/c0", "/load/c2"} <= _auth_paths(c, _active(dump, 0)["name"]),
                   30, "c0 and c2 on rank 0")
        assert _auth_paths(c, _active(dump, 1)["name"]) & {"/load", "/load/c1", "/load/c3"}
        os.kill(c.pid_of(victim["name"]), signal.SIGKILL)
        c.wait_map(lambda d: (a := _active(d, kill_rank)) is not None
                   and a["gid"] != victim["gid"], 30, f"rank {kill_rank} replaced")
        c.ok("fs", "set", "cephfs", "max_mds", "1")
        c.wait_map(lambda d: 1 in d["filesystems"][0]["mdsmap"]["stopped"], 60,
                   "rank 1 stopped")
        out, err = load.communicate(timeout=90)
    assert load.returncode == 0, err[-2000:]
    assert c.verify(history)["acknowledged"] > 100


@pytest.mark.parametrize("kill_rank", [1, 0])
def test_renames_across_ranks_through_a_kill_9(cluster_factory, kill_rank):
    """Files renamed from rank 0's /r0 to rank 1's /r1 while one rank's holder is killed
    (-9): each file ends up exactly once, where its rename's answer says. Also a pin relayed
    to rank 1 (the holder of /r1) is still in its `get subtrees` after the replay."""
    c = cluster_factory().start(("a", "b", "c"))
    c.ok("fs", "set", "cephfs", "max_mds", "2")
    dump = c.wait_map(lambda d: _active(d, 1) and d, 30, "rank 1 active")
    mon = f"127.0.0.1:{c.port}"
    n = 60

    async def setup():
        async with FSClient.open(mon, fs_name="cephfs", timeout=60, auth=c.auth_key()) as fs:
            for d, rank in (("/r0", "0"), ("/r1", "1")):
                await fs.mkdir(d)
                await fs.setattr(d, xattrs={"ceph.dir.pin": rank})
            with trio.fail_after(30):
                while "/r1" not in await trio.to_thread.run_sync(
                        _auth_paths, c, _active(dump, 1)["name"]):
                    await trio.sleep(0.05)
            await fs.setattr("/r1", xattrs={"ceph.dir.pin": "2"})  # no rank 2: /r1 stays
            for i in range(n):
                await fs.create(f"/r0/f{i}")

    trio.run(setup)
    victim = _active(dump, kill_rank)
    pid = c.pid_of(victim["name"])

    async def renames():
        done: dict[int, str] = {}
        async with FSClient.open(mon, fs_name="cephfs", timeout=60, auth=c.auth_key()) as fs:
            for i in range(n):
                if i == n // 3:
                    os.kill(pid, signal.SIGKILL)
                try:
                    await fs.rename(f"/r0/f{i}", f"/r1/g{i}")
                    done[i] = "ok"
                except FSClientError as e:
                    done[i] = e.message
            return done, ({name for name, _ in await fs.ls("/r0")},
                          {name for name, _ in await fs.ls("/r1")})

    done, (r0, r1) = trio.run(renames)
    assert set(done.values()) == {"ok"}, done  # the client rode out the failover
    assert r0 == set() and r1 == {f"g{i}" for i in range(n)}
    new = _active(c.fs_dump(), kill_rank)
    assert new["gid"] != victim["gid"] and "resolve_start" in c.log(f"mds.{new['name']}")
    subs = {s["dir"]["path"]: s for s in
            c.cli_json("tell", f"mds.{_active(c.fs_dump(), 1)['name']}", "get", "subtrees")}
    assert subs["/r1"]["is_auth"] and subs["/r1"]["export_pin"] == 2
