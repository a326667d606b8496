"""The filesystem client's decisions, with no I/O: which rank a request goes to (routing by
the subtrees learnt from forwards), what a reply means (done, failed, forwarded, unsafe, or
"retry once a newer map comes"), which tid is the oldest still unanswered, what to replay to a
rank's new holder in up:reconnect (C4), and what the FSMap says about each rank. The trio shell
is `client/fsclient.py`; both follow Ceph's Client (src/client/Client.cc).

A mutation returns to its caller on the unsafe reply (applied in the MDS's memory, J5), as
Ceph's Client::make_request does; the core keeps it as *unsafe* until its safe reply (journaled)
comes, replays it to the rank's next holder after a failover, and records it as *lost* if it
could not be made safe (the session was refused or evicted, the re-execution failed, or no safe
reply came within the request timeout). `sync` waits for the unsafe ones.
"""

from __future__ import annotations

import enum
import errno
import heapq
import itertools
import os
from dataclasses import dataclass

from common import messages as m
from common import states
from common.fsmap import FSMap, MDSInfo, MDSMap

SERVING = (states.ACTIVE, states.CLIENTREPLAY)
EBLOCKLISTED = errno.ESHUTDOWN  # 108, as Ceph names it
NOT_SERVING = (-errno.EAGAIN, -errno.ESTALE, -errno.ENOTCONN)  # "not the rank's server now"


class FSClientError(Exception):
    """A request failed: `code` is a positive errno."""

    def __init__(self, code: int, message: str = "", unknown: bool = False) -> None:
        super().__init__(message or os.strerror(code))
        self.code = code
        self.message = message or os.strerror(code)
        self.unknown = unknown  # the request was sent: it may have taken effect


def stuck_unavailable(fs: MDSMap) -> str | None:
    """Why mounting `fs` cannot succeed now (Ceph's MDSMap::is_cluster_available says
    STUCK_UNAVAILABLE), or None: a damaged rank, no rank at all, or a rank whose holder the
    monitor has marked laggy (we cannot see whether a standby will replace it). A rank that is
    merely failing over is transient: requests wait for it."""
    if fs.damaged:
        return f"rank {min(fs.damaged)} of {fs.fs_name} is damaged"
    if not fs.in_:
        return f"{fs.fs_name} has no MDS ranks (it is down)"
    for rank in sorted(fs.in_):
        info = fs.holder(rank)
        if info is not None and info.laggy:
            return f"rank {rank} of {fs.fs_name} is held by mds.{info.name}, which is laggy"
    return None


def ident(info: MDSInfo) -> tuple:
    """One incarnation of a rank's holder: a new gid, incarnation or address is another (C4)."""
    return (info.gid, info.inc, info.addr)


@dataclass(frozen=True)
class LostRequest:
    """A request answered unsafe (so acknowledged to its caller) that never became safe."""

    tid: int
    op: str
    args: dict
    reason: str


def paths_of(args: dict) -> set[str]:
    """The paths a request names (a rename: both)."""
    return {v for k, v in args.items() if k in ("path", "src", "dst") and isinstance(v, str)}


class Outcome(enum.Enum):
    DONE = "done"  # a final reply: the result, or an error to raise
    UNSAFE = "unsafe"  # applied, not yet journaled: wait for the safe reply
    FORWARD = "forward"  # another rank holds the path: ask it
    RETRY = "retry"  # the holder is not serving the rank now: wait for a newer map, resend
    LOST = "lost"  # the connection went down: resend once a holder serves the rank


def outcome(reply: m.ClientReply | None) -> Outcome:
    """What a request's reply (None: its connection was lost) asks the client to do."""
    if reply is None:
        return Outcome.LOST
    if not reply.safe and reply.rc == 0:
        return Outcome.UNSAFE
    if reply.rc == -errno.EREMOTE and isinstance(reply.result.get("forward"), int):
        return Outcome.FORWARD
    if reply.rc in NOT_SERVING:
        return Outcome.RETRY
    return Outcome.DONE


class ClientCore:
    """The client's state that decides: the newest FSMap, the subtrees learnt, the requests in
    flight and those answered unsafe (tid -> (rank, request)), the ranks we had sessions with."""

    def __init__(self, fs_name: str | None) -> None:
        self.fs_name = fs_name
        self.fsmap: FSMap | None = None
        self.subtrees: dict[str, int] = {}  # subtree root path -> rank (learnt from forwards)
        self.unsafe: dict[int, tuple[int, m.ClientRequest]] = {}
        self.inflight: set[int] = set()  # tids without a final reply yet (oldest_tid)
        self._oldest: list[int] = []  # a heap of those tids, finished ones dropped lazily
        self.lost: dict[int, LostRequest] = {}  # until `take_lost` hands them to a sync
        self.had_session: set[int] = set()  # C4: ranks to reconnect to on a new incarnation
        self.reconnecting: dict[int, tuple] = {}  # rank -> the incarnation we reconnect to
        self._tids = itertools.count(1)

    # -- requests
    def start(self, op: str, args: dict) -> tuple[int, int]:
        """A new request: its tid and the rank to ask first."""
        tid = next(self._tids)
        self.inflight.add(tid)
        heapq.heappush(self._oldest, tid)
        return tid, self.route(op, args)

    def request(self, tid: int, op: str, args: dict, retry: int) -> m.ClientRequest:
        """The message for one send; every tid older than the oldest in flight is answered."""
        oldest = self._oldest  # not min(inflight): a thousand may wait for their safe reply
        while oldest[0] not in self.inflight:
            heapq.heappop(oldest)
        return m.ClientRequest(tid, op, args, retry, oldest_tid=oldest[0])

    def answered_unsafe(self, tid: int, rank: int, req: m.ClientRequest) -> None:
        self.unsafe[tid] = (rank, req)

    def forwarded(self, reply: m.ClientReply) -> tuple[int, str]:
        """Learn the subtree a forward names; the rank to ask now, and the subtree."""
        sub = str(reply.result.get("subtree", "/"))
        rank = self.subtrees[sub] = reply.result["forward"]
        return rank, sub

    def finish(self, tid: int) -> None:
        """A final reply (or giving up): the MDS may forget the tid (oldest_tid moves on)."""
        self.inflight.discard(tid)
        self.unsafe.pop(tid, None)

    def lose(self, tid: int, reason: str) -> LostRequest | None:
        """An unsafe request that cannot be made safe; None if it was not unsafe."""
        entry = self.unsafe.get(tid)
        if entry is None:
            return None
        req = entry[1]
        lost = self.lost[tid] = LostRequest(tid, req.op, req.args, reason)
        self.finish(tid)
        return lost

    def unsafe_tids(self, path: str | None = None) -> set[int]:
        """What a sync (every unsafe request) or an fsync of `path` (those naming it, or
        something beneath it) waits for."""
        if path is None:
            return set(self.unsafe)
        top = path.rstrip("/") + "/"
        return {tid for tid, (_, req) in self.unsafe.items()
                if any(p == path or p.startswith(top) for p in paths_of(req.args))}

    def take_lost(self, tids: set[int]) -> list[LostRequest]:
        """The lost among `tids` (in tid order), handed out once."""
        return [self.lost.pop(t) for t in sorted(tids) if t in self.lost]

    def replay(self, rank: int) -> list[m.ClientRequest]:
        """C4: the requests `rank` answered unsafe, to resend to its new holder (replay)."""
        return [m.ClientRequest(tid, req.op, req.args, req.retry + 1, replay=True,
                                oldest_tid=req.oldest_tid)
                for tid, (r, req) in sorted(self.unsafe.items()) if r == rank]

    def route(self, op: str, args: dict) -> int:
        """The rank to ask first: the deepest subtree root learnt that holds the directory the
        request reads or changes; rank 0 (the root's) when none is known. A rename goes to
        the destination's rank (Ceph's client sends it to the destination dentry's auth)."""
        key = args.get("path") if op == "readdir" else args.get("dst", args.get("path"))
        if not isinstance(key, str):
            return 0
        parts = [p for p in key.split("/") if p]
        if op != "readdir":
            parts = parts[:-1]
        for n in range(len(parts), 0, -1):
            rank = self.subtrees.get("/" + "/".join(parts[:n]))
            if rank is not None:
                return rank
        return self.subtrees.get("/", 0)

    def usable(self, rank: int) -> int:
        """A rank no longer in the file system (stopped) hands its subtrees to rank 0."""
        try:
            fs = self.filesystem()
        except FSClientError:
            return rank
        return rank if rank in fs.in_ else 0

    # -- the map
    def newer(self, fsmap: FSMap) -> bool:
        """Take `fsmap` if it is newer than ours."""
        if self.fsmap is not None and fsmap.epoch <= self.fsmap.epoch:
            return False
        self.fsmap = fsmap
        return True

    def to_reconnect(self) -> list[tuple[int, MDSInfo]]:
        """C4: ranks we had a session with whose new holder is in up:reconnect (each
        incarnation once)."""
        out = []
        for rank in sorted(self.had_session):
            info = self.holder(rank)
            if info is not None and info.state == states.RECONNECT and \
                    self.reconnecting.get(rank) != ident(info):
                self.reconnecting[rank] = ident(info)
                out.append((rank, info))
        return out

    def moved(self, rank: int, incarnation: tuple) -> bool:
        """The map no longer gives `rank` to that incarnation (or to anyone)."""
        info = self.holder(rank)
        return info is None or ident(info) != incarnation

    def filesystem(self) -> MDSMap:
        fsmap = self.fsmap
        if self.fs_name:
            fs = fsmap.fs_by_name(self.fs_name)
            if fs is None:
                raise FSClientError(errno.ENOENT, f"filesystem '{self.fs_name}' not found")
        else:
            fs = fsmap.filesystems.get(fsmap.legacy_client_fscid)
            if fs is None:
                raise FSClientError(errno.ENOENT, "no default filesystem (use --fs NAME)")
        return fs

    def holder(self, rank: int) -> MDSInfo | None:
        try:
            return self.filesystem().holder(rank)
        except FSClientError:
            return None

    def serving_holder(self, rank: int) -> MDSInfo | None:
        info = self.filesystem().holder(rank)
        return info if info is not None and info.state in SERVING else None

    def rank_status(self, rank: int) -> str:
        try:
            fs = self.filesystem()
        except FSClientError as e:
            return e.message
        info = fs.holder(rank)
        where = f"rank {rank} of {fs.fs_name}"
        return f"{where} is failed" if info is None else \
            f"{where} is mds.{info.name} in {states.name(info.state)}"

    def resend_after(self) -> float:
        """A request unanswered for session_timeout is sent again on its session: it, or
        its reply, may have been dropped while the connection stayed up (a one-way
        partition), where Ceph's client would wait until its session is reset."""
        return 3 * self.renew_interval()

    def renew_interval(self) -> float:
        """C5: renew every session_timeout/3."""
        try:
            return max(self.filesystem().session_timeout / 3, 0.05)
        except FSClientError:
            return 1.0
