"""An MDS booted while the monitor drops what it sends (the thrasher's one-way partition,
`ms_blackhole_from mds.X` at the monitor): its hello passes, its subscribe is dropped. Once
the partition heals its beacons are acked, but no map ever came: it stayed in up:boot, its
boot beacons ignored (M2), and the monitor removed it as laggy and booted it again every
second, offering it as a replacement each time. Now the acks tell it a map is missing and it
subscribes again (B7)."""

from __future__ import annotations

import pytest
import trio

from common import states

pytestmark = pytest.mark.timeout(60)

CLUSTER = {"profile": "fast", "fs": True, "mds": "a"}  # what conftest.cluster builds


async def test_an_mds_booted_through_a_one_way_partition_subscribes_again(cluster,
                                                                         autojump_clock):
    c = cluster
    await c.ok("config", "set", "mon.a", "ms_blackhole_from", "mds.b")
    b = await c.start_mds("b")
    await trio.sleep(2.0)  # the partition's length: the monitor hears nothing from mds.b
    await c.ok("config", "rm", "mon.a", "ms_blackhole_from")
    await c.wait_for(lambda: b.daemon.sm.state == states.STANDBY, timeout=10,
                     what="mds.b to be told it is a standby")
    gid, epoch = b.gid, c.fsmap.epoch
    await trio.sleep(10.0)
    assert (b.gid, b.respawns) == (gid, 0)
    assert c.fsmap.info(gid).state == states.STANDBY and not c.fsmap.info(gid).laggy
    assert c.fsmap.epoch == epoch  # not removed and booted again, over and over
