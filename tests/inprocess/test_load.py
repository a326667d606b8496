"""The load generator and the history checker against an in-process cluster (autojump clock)."""

from __future__ import annotations

import json

import pytest
import trio

from client.fsclient import FSClient
from client.load import run_load
from client.verify import read_history, verify

pytestmark = pytest.mark.timeout(60)


CLUSTER = {"profile": "fast", "fs": True, "mds": "ab"}  # what conftest.cluster builds


async def test_load_then_verify_finds_no_violation(cluster, autojump_clock, tmp_path):
    c = cluster
    history = str(tmp_path / "history.jsonl")
    loaded = await run_load(c.mon_host, 3, 3.0, history, seed=1)
    assert loaded.acknowledged > 50 and loaded.unknown == 0
    summary = await verify(c.mon_host, history)
    assert summary.violations == [], summary.text()
    assert summary.failed > 0  # the load also makes operations that must fail
    assert (summary.ops, summary.acknowledged) == (loaded.ops, loaded.acknowledged)
    assert set(summary.unavailability) == {"c0", "c1", "c2"}
    ops = {json.loads(line).get("op") for line in open(history)}
    assert {"mkdir", "create", "rename", "setattr", "unlink", "rmdir", "stat"} <= ops
    assert "violations: 0" in summary.text()


async def test_failover_during_load(cluster, autojump_clock, tmp_path):
    c = cluster
    history = str(tmp_path / "history.jsonl")
    killed: list[float] = []

    async def kill_after(seconds: float) -> None:
        await trio.sleep(seconds)
        active = c.holder_name()
        killed.append(trio.current_time())
        c.mds[active].kill()
        await c.wait_for(lambda: c.holder_name() not in (None, active), what="takeover")
        killed.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(kill_after, 1.0)
        loaded = await run_load(c.mon_host, 3, 6.0, history, seed=2)
    outage = killed[1] - killed[0]
    assert outage >= 0.5  # beacons stop; the mon waits for mds_beacon_grace (1 s, fast)
    summary = await verify(c.mon_host, history)
    assert summary.violations == [], summary.text()
    assert summary.acknowledged == loaded.acknowledged > 50
    # every client waited through the failover: the longest silence covers it
    for client, seconds in summary.unavailability.items():
        assert seconds >= outage - 0.1, (client, summary.text())


async def test_operations_with_unknown_outcome(cluster, autojump_clock, tmp_path):
    """A per-operation timeout shorter than the failover: the operations cut short are
    recorded as unknown, and the checker accepts either outcome for them."""
    c = cluster
    history = str(tmp_path / "history.jsonl")

    async def kill_after(seconds: float) -> None:
        await trio.sleep(seconds)
        c.mds[c.holder_name()].kill()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(kill_after, 1.0)
        loaded = await run_load(c.mon_host, 3, 5.0, history, seed=4, op_timeout=0.3)
    assert loaded.unknown >= 3
    summary = await verify(c.mon_host, history)
    assert summary.violations == [], summary.text()
    assert summary.unknown == loaded.unknown
    done = [json.loads(line) for line in open(history)]
    assert any(r.get("result") == "unknown" and "within 0.3s" in r["message"] for r in done)


async def test_verify_detects_tampered_history(cluster, autojump_clock, tmp_path):
    c = cluster
    history = tmp_path / "history.jsonl"
    await run_load(c.mon_host, 2, 2.0, str(history), seed=3)
    assert (await verify(c.mon_host, str(history))).violations == []
    roots, records = read_history(str(history))
    root = roots["c0"]
    t = records[-1]["time"] + 1

    def fake(n: int, op: str, args: dict, **result) -> list[str]:
        base = {"client": "c0", "n": n, "op": op, "args": args, "time": t}
        return [json.dumps(dict(base, type="invoke")),
                json.dumps(dict(base, type="complete", **result))]

    # an acknowledged mkdir whose directory is not there; a failed mkdir whose directory is
    ghost, sneaky = f"{root}/ghost", f"{root}/sneaky"
    lines = fake(10**6, "mkdir", {"path": ghost, "mode": 0o755}, result="ok")
    lines += fake(10**6 + 1, "mkdir", {"path": sneaky, "mode": 0o755}, result="error",
                  errno=5, error="EIO")
    async with FSClient.open(c.mon_host, timeout=10) as fs:
        await fs.mkdir(sneaky)
    with open(history, "a") as f:
        f.write("\n".join(lines) + "\n")
    summary = await verify(c.mon_host, str(history))
    assert not summary.ok
    text = summary.text()
    assert f"{ghost}: missing" in text, text
    assert f"{sneaky}: exists, but no acknowledged operation made it" in text, text
    assert "violations: 0" not in text

    # operations taking effect out of order: an acknowledged create and a later acknowledged
    # unlink of the same file, swapped
    _, records = read_history(str(history))
    done = [r for r in records if r["type"] == "complete" and r["result"] == "ok"]
    pair = next((a, b) for a in done for b in done
                if a["op"] == "create" and b["op"] == "unlink"
                and a["client"] == b["client"] and a["args"]["path"] == b["args"]["path"]
                and b["n"] > a["n"])
    lines = [json.loads(line) for line in open(history)]
    i, j = lines.index(pair[0]), lines.index(pair[1])
    lines[i], lines[j] = lines[j], lines[i]
    history.write_text("".join(json.dumps(r) + "\n" for r in lines))
    summary = await verify(c.mon_host, str(history))
    assert any("acknowledged, but the model says it must fail with ENOENT" in v
               and pair[1]["args"]["path"] in v for v in summary.violations), summary.text()


async def test_pinned_load_pins_each_client_to_a_rank(cluster, autojump_clock, tmp_path):
    """`load --pin-ranks` reads max_mds from the client's map and pins client k's directory to
    rank k mod max_mds (one rank here: all to 0)."""
    c = cluster
    loaded = await run_load(c.mon_host, 2, 2.0, str(tmp_path / "history.jsonl"), seed=5,
                            pin_ranks=True)
    assert loaded.acknowledged > 10 and loaded.unknown == 0
    with trio.fail_after(30):
        async with FSClient.open(c.mon_host, fs_name="cephfs") as fs:
            roots = [name for name, _ in await fs.ls("/load")]
            assert roots == ["c0", "c1"]
            for name in roots:
                inode = await fs.stat(f"/load/{name}")
                assert inode["xattrs"]["ceph.dir.pin"] == "0"
