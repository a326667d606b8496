"""The filesystem client's decisions with plain values (client/fscore.py): routing by the
subtrees learnt from forwards, what each reply means, the oldest tid in flight, what is
replayed to a rank's new holder in up:reconnect (C4), and the map queries behind them."""

from __future__ import annotations

import copy
import errno

import pytest

from client.fscore import ClientCore, FSClientError, Outcome, ident, outcome
from common import messages as m
from common import states
from tests.unit.monsim import healthy


def _reply(rc: int = 0, safe: bool = True, **result) -> m.ClientReply:
    return m.ClientReply(tid=1, rc=rc, result=result, safe=safe)


def test_what_each_reply_asks_for() -> None:
    assert outcome(None) is Outcome.LOST
    assert outcome(_reply(safe=False)) is Outcome.UNSAFE
    assert outcome(_reply(safe=False, rc=-errno.ENOENT)) is Outcome.DONE  # errors are final
    assert outcome(_reply(rc=-errno.EREMOTE, forward=1, subtree="/a")) is Outcome.FORWARD
    assert outcome(_reply(rc=-errno.EREMOTE)) is Outcome.DONE  # a forward must name a rank
    for rc in (-errno.EAGAIN, -errno.ESTALE, -errno.ENOTCONN):
        assert outcome(_reply(rc=rc)) is Outcome.RETRY
    assert outcome(_reply(inode={})) is Outcome.DONE


def test_routing_follows_the_deepest_subtree_learnt_from_forwards() -> None:
    core = ClientCore("cephfs")
    tid, rank = core.start("mkdir", {"path": "/a/b/c"})
    assert (tid, rank) == (1, 0)  # nothing learnt: rank 0 holds the root
    assert core.forwarded(_reply(rc=-errno.EREMOTE, forward=1, subtree="/a")) == (1, "/a")
    core.forwarded(_reply(rc=-errno.EREMOTE, forward=2, subtree="/a/b"))
    assert core.route("mkdir", {"path": "/a/b/c"}) == 2  # the parent directory's rank
    assert core.route("mkdir", {"path": "/a/x"}) == 1
    assert core.route("readdir", {"path": "/a/b"}) == 2  # readdir asks the directory's own
    assert core.route("rename", {"src": "/a/y", "dst": "/z"}) == 0  # the destination's rank
    assert core.route("rename", {"src": "/z", "dst": "/a/b/y"}) == 2
    assert core.route("getattr", {"path": "/a"}) == 0  # a subtree root's inode: its parent
    assert core.route("getattr", {}) == 0


def test_oldest_tid_and_the_replay_of_unsafe_requests() -> None:
    core = ClientCore(None)
    t1, _ = core.start("mkdir", {"path": "/a"})
    t2, _ = core.start("mkdir", {"path": "/b"})
    req2 = core.request(t2, "mkdir", {"path": "/b"}, retry=0)
    assert req2.oldest_tid == t1  # t1 is not answered yet
    core.answered_unsafe(t2, 0, req2)
    core.finish(t1)
    assert core.request(t2, "mkdir", {"path": "/b"}, retry=1).oldest_tid == t2
    assert core.replay(1) == []
    assert core.replay(0) == [m.ClientRequest(t2, "mkdir", {"path": "/b"}, 1, replay=True,
                                              oldest_tid=t1)]
    core.finish(t2)
    assert core.replay(0) == [] and core.inflight == set()


def test_C4_a_new_incarnation_in_reconnect_is_reconnected_to_once() -> None:
    c = healthy("a", "b")
    core = ClientCore("cephfs")
    assert core.newer(c.mon.fsmap)
    assert not core.newer(copy.deepcopy(c.mon.fsmap))  # same epoch: ignored
    old = core.holder(0)
    core.had_session.add(0)
    assert core.to_reconnect() == [] and not core.moved(0, ident(old))
    newer = copy.deepcopy(c.mon.fsmap)
    newer.epoch += 1
    info = newer.filesystems[min(newer.filesystems)].holder(0)
    info.state, info.inc = states.RECONNECT, info.inc + 1
    assert core.newer(newer)
    assert core.moved(0, ident(old))
    assert core.serving_holder(0) is None  # up:reconnect does not serve requests
    assert core.to_reconnect() == [(0, info)]
    assert core.to_reconnect() == []  # that incarnation once
    assert core.rank_status(0) == f"rank 0 of cephfs is mds.{info.name} in up:reconnect"


def test_the_file_system_by_name_or_the_default_and_a_stopped_rank() -> None:
    c = healthy("a")
    core = ClientCore("other")
    core.newer(c.mon.fsmap)
    with pytest.raises(FSClientError) as e:
        core.filesystem()
    assert e.value.code == errno.ENOENT and e.value.message == "filesystem 'other' not found"
    assert core.rank_status(0) == "filesystem 'other' not found"
    default = ClientCore(None)
    default.newer(c.mon.fsmap)
    assert default.filesystem().fs_name == "cephfs"
    assert default.usable(3) == 0  # rank 3 is not in: rank 0 has its subtrees
    assert default.renew_interval() == pytest.approx(default.filesystem().session_timeout / 3)


def test_unsafe_requests_until_safe_or_lost() -> None:
    """A request answered unsafe stays in flight (oldest_tid) until its safe reply; one that
    cannot be made safe is recorded lost and handed out once, to the sync that waited."""
    core = ClientCore(None)
    t1, _ = core.start("mkdir", {"path": "/a"})
    t2, _ = core.start("rename", {"src": "/a", "dst": "/b/c"})
    t3, _ = core.start("create", {"path": "/ab"})
    for tid, op, args in ((t1, "mkdir", {"path": "/a"}),
                          (t2, "rename", {"src": "/a", "dst": "/b/c"}),
                          (t3, "create", {"path": "/ab"})):
        core.answered_unsafe(tid, 0, core.request(tid, op, args, retry=0))
    assert core.unsafe_tids() == {t1, t2, t3}
    assert core.unsafe_tids("/a") == {t1, t2}  # an fsync: what names it (not /ab)
    assert core.unsafe_tids("/b") == {t2}  # or something beneath it
    core.finish(t1)  # safe
    lost = core.lose(t2, "session refused")
    assert (lost.tid, lost.op, lost.reason) == (t2, "rename", "session refused")
    assert core.lose(t1, "late") is None  # already safe: not lost
    assert core.inflight == {t3} and core.unsafe_tids() == {t3}
    assert core.take_lost({t1, t2}) == [lost]
    assert core.take_lost({t2}) == []  # handed out once
