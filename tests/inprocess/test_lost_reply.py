"""A reply lost with its connection while the request is still being journaled (what
ms_inject_socket_failures on an MDS does to its clients): the client's resend on a new
connection waits for the original, as Ceph's Server does with a dup request in progress, and
gets its answer; it is not done a second time (that gave EEXIST for a mkdir that worked)."""

from __future__ import annotations

import pytest
import trio

from common.messages import ClientRequest
from common.net import connect, parse_hostport
from tests.inprocess.test_metadata import _cephfs_with, _session

pytestmark = pytest.mark.timeout(60)


CLUSTER = {"profile": "fast"}  # what conftest.cluster builds


def _pause(daemon, paused: bool) -> None:
    daemon.config.set_override("mds_log_pause", str(paused).lower())
    daemon.config_changed(["mds_log_pause"])


async def test_resend_while_the_original_is_journaled_waits_for_it(cluster, autojump_clock):
    c = cluster
    await _cephfs_with(c, "a", "b")
    await c.past_new_quorum()  # T3
    daemon = c.mds[c.holder_name()].daemon
    first = await _session(c, "client.r", "open")
    _pause(daemon, True)  # the journal write of the mkdir hangs: applied, not journaled
    await first.send(ClientRequest(tid=9, op="mkdir", args={"path": "/x"}))
    unsafe = await first.recv()
    assert unsafe.rc == 0 and not unsafe.safe
    await first.aclose()  # the reply path is gone; the client resends on a new connection

    info = c.fsmap.fs_by_name("cephfs").holder(0)
    second, _ = await connect(*parse_hostport(info.addr.split("/")[0]), "client.r")
    await second.send(ClientRequest(tid=9, op="mkdir", args={"path": "/x"}, retry=1))
    with trio.move_on_after(2):
        early = await second.recv()
        pytest.fail(f"the resend was answered before the original was journaled: {early}")
    _pause(daemon, False)
    again = await second.recv()
    assert (again.rc, again.safe, again.result) == (0, True, unsafe.result)
    await second.send(ClientRequest(tid=10, op="mkdir", args={"path": "/x"}))
    assert (await second.recv()).rc == -17  # a new request: EEXIST
    await second.aclose()


async def test_a_request_dropped_by_a_one_way_partition_is_resent_and_done_once(
        cluster, autojump_clock):
    """partition_client: the active drops what its clients send (ms_blackhole_from client)
    while their connections stay up. The client sends the request again after
    session_timeout without a reply, on the same session; once the partition heals it is
    answered, and only once (a second mkdir would say EEXIST)."""
    from client.fsclient import FSClient

    c = cluster
    await _cephfs_with(c, "a", "b")
    await c.past_new_quorum()  # T3
    daemon = c.mds[c.holder_name()].daemon
    async with FSClient.open(c.mon_host, fs_name="cephfs", timeout=60) as fs:
        await fs.mkdir("/before")
        daemon.config.set_override("ms_blackhole_from", "client")
        done = trio.Event()

        async def mkdir() -> None:
            await fs.mkdir("/during")
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(mkdir)
            with trio.move_on_after(5):
                await done.wait()
                pytest.fail("answered through the partition")
            daemon.config.set_override("ms_blackhole_from", "")  # healed
            with trio.fail_after(10):  # the next resend, session_timeout (3 s) at most
                await done.wait()
        assert [n for n, _ in await fs.ls("/")] == ["before", "during"]
