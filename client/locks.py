"""File locks and the reclaim of a previous incarnation's sessions, as the filesystem client
asks the MDS for them (libcephfs's ceph_setlk / ceph_getlk, ceph_start_reclaim with
CEPH_RECLAIM_RESET then ceph_finish_reclaim): `ClientLocks`, a part of FSClient (`fs.locks`;
FSClient's setlk, getlk and reclaim_reset are these). The record of what is held, which a
reconnect to a rank's new holder re-sends (C4), and the requests' form are sans-IO, in
`client.filelock`; the MDS's table is `mds.filelocks`.
"""

from __future__ import annotations

import errno

import trio

from client.filelock import HeldLocks, LockDenied, setlk_args
from client.fscore import FSClientError
from client.mdssession import MDS_CONNECT_TIMEOUT, RETRY_PAUSE
from common import messages as m


class ClientLocks:
    """Sends through its FSClient (`fs`): requests with `fs.request`, the reclaim on the
    session with rank 0's holder."""

    def __init__(self, fs) -> None:
        self.fs = fs
        self.held = HeldLocks()  # re-sent at reconnect, forgotten when evicted

    async def setlk(self, path: str, owner: str, type_: str, start: int = 0,
                    length: int = 0) -> None:
        """Take a read or write lock on [start, start+length) (length 0: to EOF) for
        `owner`, or release it with type "unlock"; LockDenied if another owner holds a
        conflicting one (F_SETLK, no waiting)."""
        args = setlk_args(path, owner, type_, start, length)
        result = await self.fs.request("setfilelock", args)
        ino = int(result.get("ino", 0))
        if type_ == "unlock":
            self.held.unlocked(ino, owner, start, length)
        elif result.get("granted"):
            self.held.granted(ino, owner, type_, start, length)
        else:
            raise LockDenied(path, result.get("holder", {}))

    async def getlk(self, path: str, owner: str, type_: str, start: int = 0,
                    length: int = 0) -> dict:
        """The lock that would stop `owner` from taking this one ({} if none; F_GETLK)."""
        return (await self.fs.request("getfilelock", setlk_args(path, owner, type_, start,
                                                                length))).get("holder", {})

    async def reclaim_reset(self, uuid: str) -> int:
        """The MDS ends the sessions of our previous incarnation (same uuid), evicting them
        and releasing their locks. Returns how many it reset (0 when there was none:
        -ENOENT, which the caller may ignore, as Ganesha does)."""
        fs = self.fs
        with trio.move_on_after(fs.timeout):
            while True:
                _, s = await fs._serving_session(0)
                s.reclaim_reply, s.reclaim_answered = None, trio.Event()
                if await s.send(m.ClientSession("request_reclaim", metadata={
                        "uuid": uuid, "flags": "reset"})):
                    with trio.move_on_after(MDS_CONNECT_TIMEOUT):
                        await s.reclaim_answered.wait()
                reply = s.reclaim_reply
                if reply is not None and reply.get("result") != -errno.EAGAIN:
                    rc = int(reply.get("result", 0))
                    if rc not in (0, -errno.ENOENT):
                        raise FSClientError(-rc, f"reclaim of {uuid} failed")
                    return int(reply.get("sessions", 0))
                await fs._newer_map(fs.fsmap.epoch, RETRY_PAUSE)
        raise FSClientError(errno.ETIMEDOUT, f"no reclaim reply within {fs.timeout:g}s")
