"""What a head does through its CephFS client (NFS-Ganesha's FSAL_CEPH): its session's reclaim
uuid and timeout, the reset of its previous incarnation's session, and the NFSv4 locks taken
as CephFS locks, so that two heads' clients conflict through the MDS (mds.filelocks).

- The session's client metadata carries the uuid `ganesha-<nodeid>-<export id as %04x>` and
  the "timeout" Ganesha asks for (300 s; `mdsemu_nfs_session_timeout`): a head that dies
  keeps its session, and its locks, that long unless its next incarnation resets it (C5).
- `reclaim_reset` (ceph_start_reclaim with CEPH_RECLAIM_RESET, then ceph_finish_reclaim) ends
  the previous incarnation's session with the same uuid; the head calls it only once every
  member of the cluster enforces the grace period (cephfs-reclaim.rst: before it, a head not
  enforcing could hand out the state it releases).
- A lock's owner in CephFS is the NFS client id, so the clients of one head, which share its
  session, conflict with one another in CephFS as well.
"""

from __future__ import annotations

import structlog

from client.fsclient import FSClient, LockDenied
from nfs.nfs4 import TO_EOF, NFS4Error

log = structlog.get_logger("nfs")

CEPH_TYPES = {"read": "read", "readw": "read", "write": "write", "writew": "write"}


def reclaim_uuid(nodeid: str, export_id: int) -> str:
    """FSAL_CEPH's uuid of a head's mount: "ganesha-%s-%04x" of the nodeid and export id."""
    return f"ganesha-{nodeid}-{export_id:04x}"


def lock_owner(clientid: int) -> str:
    return f"nfs4-{clientid:x}"


def cephfs_range(offset: int, length: int) -> tuple[int, int]:
    """An NFSv4 range (length all ones: to EOF) as fcntl's (length 0: to EOF)."""
    return offset, 0 if length == TO_EOF else length


class CephFSAL:
    def __init__(self, fs: FSClient, nodeid: str, export_id: int,
                 session_timeout: float) -> None:
        self.fs = fs
        self.uuid = reclaim_uuid(nodeid, export_id)
        # before the first request opens the session: the metadata goes with request_open
        fs.metadata.update(uuid=self.uuid, timeout=str(int(session_timeout)))

    async def reclaim_reset(self) -> int:
        reset = await self.fs.reclaim_reset(self.uuid)
        log.info("reclaim reset of the previous incarnation's session", uuid=self.uuid,
                 sessions=reset)
        return reset

    async def lock(self, path: str, clientid: int, type_: str, offset: int, length: int,
                   reclaim: bool) -> None:
        """NFS4ERR_DENIED when another owner (on any head) holds a conflicting CephFS lock;
        NFS4ERR_RECLAIM_CONFLICT for a reclaim."""
        start, n = cephfs_range(offset, length)
        try:
            await self.fs.setlk(path, lock_owner(clientid), CEPH_TYPES[type_], start, n)
        except LockDenied as e:
            h = e.holder
            if reclaim:
                raise NFS4Error("NFS4ERR_RECLAIM_CONFLICT", str(e)) from None
            raise NFS4Error("NFS4ERR_DENIED", str(e), denied={
                "offset": h.get("start", 0),
                "length": h.get("length", 0) or TO_EOF,
                "type": 2 if h.get("type") == "write" else 1,
                "owner": f"{h.get('client', '')}/{h.get('owner', '')}"}) from None

    async def unlock(self, path: str, clientid: int, offset: int, length: int) -> None:
        start, n = cephfs_range(offset, length)
        await self.fs.setlk(path, lock_owner(clientid), "unlock", start, n)
