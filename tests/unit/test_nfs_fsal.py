"""What a head asks of CephFS (nfs/fsal.py): its reclaim uuid as FSAL_CEPH names it, the
session timeout it asks for, and NFSv4 ranges as fcntl ranges."""

from __future__ import annotations

from common.config import Config
from nfs.fsal import CephFSAL, cephfs_range, lock_owner, reclaim_uuid
from nfs.nfs4 import TO_EOF


class _FS:
    def __init__(self) -> None:
        self.metadata: dict = {}


def test_reclaim_uuid_is_ganeshas():
    assert reclaim_uuid("a", 100) == "ganesha-a-0064"
    assert reclaim_uuid("nfs.x", 1) == "ganesha-nfs.x-0001"


def test_the_session_metadata_carries_the_uuid_and_the_timeout():
    fs = _FS()
    CephFSAL(fs, "a", 100, 300)
    assert fs.metadata == {"uuid": "ganesha-a-0064", "timeout": "300"}


def test_nfs_ranges_become_fcntl_ranges():
    assert cephfs_range(10, TO_EOF) == (10, 0)
    assert cephfs_range(0, 5) == (0, 5)
    assert lock_owner(0x1234) == "nfs4-1234"


def test_session_timeout_option_is_ganeshas_300_and_5_in_the_fast_profile():
    assert Config("client.nfs.a").get("mdsemu_nfs_session_timeout") == 300
    fast = Config("client.nfs.a", overrides={"mdsemu_profile": "fast"})
    assert fast.get("mdsemu_nfs_session_timeout") == 5
