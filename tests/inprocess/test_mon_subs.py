"""Subscriptions through the monitor's shell (issue 14 item 1): Ceph's per-fs `mdsmap`, the
whole `fsmap` for tools, and a clear error for a subscription that cannot be served."""

from __future__ import annotations

import errno

import pytest
import trio

from common import messages as m
from common.net import connect
from tests.inprocess.harness import cephfs_cluster

pytestmark = pytest.mark.timeout(60)


async def test_check_sub_mdsmap_per_fs_and_the_whole_fsmap(nursery, tmp_path, autojump_clock):
    c = await cephfs_cluster(nursery, str(tmp_path), mds="ab")
    conn, _ = await connect("127.0.0.1", c.port, "client.sub")
    await conn.send(m.Subscribe(what=["mdsmap.1", "fsmap"]))
    got = {}
    with trio.fail_after(10):
        while len(got) < 2:
            msg = await conn.recv()
            got[msg.TYPE] = msg
    mdsmap, fsmap = got["mdsmap"].mdsmap, got["fsmap"].fsmap
    assert mdsmap["fs_name"] == "cephfs" and [i["name"] for i in mdsmap["mds_info"]] == ["a"]
    assert [f["epoch"] for f in fsmap["filesystems"]] == [mdsmap["epoch"]]
    assert [s[0]["name"] for s in fsmap["standbys"]] == ["b"]  # the FSMap is whole
    # a new epoch of cephfs reaches both subscriptions
    await c.ok("fs", "set", "cephfs", "session_timeout", "61")
    with trio.fail_after(10):
        while True:
            msg = await conn.recv()
            if isinstance(msg, m.MDSMapMsg):
                assert msg.mdsmap["session_timeout"] == 61
                break
    await conn.aclose()


async def test_a_subscription_that_cannot_be_served_is_refused(nursery, tmp_path,
                                                               autojump_clock):
    c = await cephfs_cluster(nursery, str(tmp_path))
    conn, _ = await connect("127.0.0.1", c.port, "client.sub")
    await conn.send(m.Subscribe(what=["mdsmap.cephfs"]))
    with trio.fail_after(10):
        reply = await conn.recv()
    assert isinstance(reply, m.Error) and reply.code == errno.EBADMSG
    assert reply.message == "invalid subscription 'mdsmap.cephfs': want mdsmap.<fscid>"
    await conn.aclose()
