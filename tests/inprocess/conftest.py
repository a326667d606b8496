"""Fixtures shared by the in-process tests (a whole cluster inside one trio.run, see
`harness.py`).

`cluster` builds what the test module asks for in a module-level `CLUSTER` dict:
  profile      "fast" or None (Ceph's timings)
  mon_options  extra options of the monitor
  osd          start osd.0 (default True)
  fs           create the file system "cephfs" (default False)
  mds          the MDS daemons to start, one letter each; the fixture returns once rank 0 is
               active and the monitor's new-quorum window (T3) is over
Every task of the cluster is cancelled when the test ends, whatever its outcome.
"""

from __future__ import annotations

import pytest

from tests.inprocess.harness import Cluster


@pytest.fixture
async def cluster(request, nursery, tmp_path):
    spec = getattr(request.module, "CLUSTER", {})
    c = Cluster(nursery, str(tmp_path), profile=spec.get("profile"),
                mon_options=spec.get("mon_options"))
    await c.start_mon()
    if spec.get("osd", True):
        await c.start_osd()
    if spec.get("fs", False):
        await c.ok("fs", "new", "cephfs", "cephfs_metadata", "cephfs_data")
    for name in spec.get("mds", ""):
        await c.start_mds(name)
    if spec.get("mds"):
        await c.wait_for(lambda: c.holder_name(), what="rank 0 active")
        await c.past_new_quorum()
    yield c
    nursery.cancel_scope.cancel()
