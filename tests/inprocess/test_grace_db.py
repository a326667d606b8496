"""The grace database's read-modify-write loop (nfs/grace_tool.update) with several writers at
once, through client/rados.py and the real osd and monitor (autojump clock): no update is lost,
the epochs move as rados_grace.c's, and watchers are notified of each write."""

from __future__ import annotations

import pytest
import trio

from client.rados import Rados, RadosError
from common.config import Config
from nfs import grace
from nfs.grace_tool import read, update
from tests.inprocess.harness import Cluster

pytestmark = pytest.mark.timeout(60)


CLUSTER = {}  # what conftest.cluster builds


def config(c: Cluster) -> Config:
    return Config("client.admin", overrides=c.options())


async def test_concurrent_writers_lose_nothing(cluster, autojump_clock):
    async with Rados.connect(config(cluster)) as r1, Rados.connect(config(cluster)) as r2:
        await r1.pool_create(grace.DEFAULT_POOL)
        # r2 learns of r1's pool from its own osdmap, which may come a moment later (librados
        # waits for the latest osdmap on a pool it does not know)
        await r2.wait_for_map(lambda o: o.pool_by_name(grace.DEFAULT_POOL) is not None, 10)
        io1 = r1.ioctx(grace.DEFAULT_POOL, "ganesha")
        io2 = r2.ioctx(grace.DEFAULT_POOL, "ganesha")
        await io1.operate("grace", grace.create_ops())
        notified = []
        await io1.watch("grace", lambda nid, who, data: notified.append(who))
        conflicts = []
        for io in (io1, io2):
            def counting(oid, ops, _operate=io.operate):
                async def run():
                    try:
                        return await _operate(oid, ops)
                    except RadosError as e:
                        conflicts.append(e.code)
                        raise
                return run()
            io.operate = counting
        nodes = [f"n{i:02d}" for i in range(20)]

        async def add_all(io, mine):
            for node in mine:
                await update(io, "grace", lambda db, n=node: grace.add(db, [n]), data=False)

        async with trio.open_nursery() as n:
            n.start_soon(add_all, io1, nodes[0::2])
            n.start_soon(add_all, io2, nodes[1::2])
        db, _ = await read(io1, "grace")
        assert list(db.flags) == nodes and set(db.flags.values()) == {grace.ENFORCING}
        assert len(notified) == 20  # one notify per write, none for a retried read
        assert conflicts and set(conflicts) == {34}  # ERANGE: the loop did retry

        # two heads start at once: one starts the grace period, the other joins it
        async with trio.open_nursery() as n:
            n.start_soon(update, io1, "grace", lambda db: grace.join(db, ["n00"], True))
            n.start_soon(update, io2, "grace", lambda db: grace.join(db, ["n01"], True))
        db, _ = await read(io1, "grace")
        assert (db.cur, db.rec) == (2, 1)
        assert db.flags["n00"] == db.flags["n01"] == grace.NEED_GRACE | grace.ENFORCING
        async with trio.open_nursery() as n:
            n.start_soon(update, io1, "grace", lambda db: grace.lift(db, ["n00"]))
            n.start_soon(update, io2, "grace", lambda db: grace.lift(db, ["n01"]))
        db, _ = await read(io2, "grace")
        assert (db.cur, db.rec) == (2, 0)  # the second lift cleared the last N
        with pytest.raises(RadosError) as e:
            await update(io1, "grace", lambda db: grace.lift(db, ["zz"]))
        assert e.value.code == 126  # ENOKEY
