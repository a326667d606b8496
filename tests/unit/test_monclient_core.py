"""The monitor client's decisions with plain values (common/monclient_core.py, common/backoff.py):
which address next, how long to wait, when to give up, what a new session re-sends, which
command a reply answers, when a silent session is dead. Ceph: src/mon/MonClient.cc."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from common import messages as m
from common.backoff import Backoff
from common.monclient_core import MonClientCore, MonUnreachable

ROOT = Path(__file__).resolve().parents[2]


def test_backoff_doubles_up_to_its_cap() -> None:
    b = Backoff(0.2, 2.0)
    assert [b.delay(n) for n in range(6)] == pytest.approx([0.2, 0.4, 0.8, 1.6, 2.0, 2.0])
    assert b.delay(10_000) == 2.0  # no overflow however long a monitor stays away
    assert b.next(None) == 0.2 and b.next(0.8) == pytest.approx(1.6) and b.next(1.9) == 2.0
    assert [Backoff.constant(0.5).delay(n) for n in range(3)] == [0.5, 0.5, 0.5]
    delays = b.delays()  # one retry loop's waits, as the MDS's work, osd and peer loops use
    assert [next(delays) for _ in range(6)] == pytest.approx([0.2, 0.4, 0.8, 1.6, 2.0, 2.0])
    assert next(b.delays()) == 0.2  # a new loop starts over


def test_backoff_jitter_comes_from_the_injected_source() -> None:
    b = Backoff(1.0, 8.0, jitter=0.5)
    assert b.delay(2) == 4.0  # no source, no jitter
    assert b.delay(2, rand=lambda: 0.5) == 3.0
    assert b.delay(3, rand=lambda: 0.999) == pytest.approx(4.004)  # never above the cap
    with pytest.raises(ValueError):
        Backoff(2.0, 1.0)
    with pytest.raises(ValueError):
        Backoff(1.0, 2.0, jitter=1.5)


def test_hunting_tries_each_monitor_in_turn_with_backoff() -> None:
    core = MonClientCore("10.0.0.1:6789,[v2:10.0.0.2:3300/0]", Backoff(1.0, 4.0), None)
    core.start_hunt(now=0.0)
    assert core.deadline is None  # no deadline: a daemon hunts until a monitor answers
    tried, delays = [], []
    for _ in range(4):
        tried.append(core.target())
        delays.append(core.connect_failed("Connection refused"))
    assert tried == [("10.0.0.1", 6789), ("10.0.0.2", 3300)] * 2
    assert delays == [1.0, 2.0, 4.0, 4.0]
    # a refusal does not end a hunt without a deadline: the monitor may change its mind
    core.target()
    assert core.connect_failed("bad key", refused=True) == 4.0


def test_a_tool_gives_up_at_its_deadline_naming_the_last_failure() -> None:
    core = MonClientCore("127.0.0.1:1", Backoff.constant(0.1), give_up_after=3.0)
    core.start_hunt(now=10.0)
    assert core.deadline == 13.0
    core.target()
    core.connect_failed("Connection refused")
    assert str(core.gave_up()) == ("cannot reach the monitor at 127.0.0.1:1 after 3s "
                                   "(127.0.0.1:1: Connection refused)")
    core.target()  # the deadline strikes while this attempt is under way
    assert str(core.gave_up()).endswith("(127.0.0.1:1: no answer)")
    with pytest.raises(MonUnreachable, match="monitor 127.0.0.1:1 refused us: bad key"):
        core.connect_failed("bad key", refused=True)


def test_no_monitor_address_is_a_clear_error() -> None:
    with pytest.raises(MonUnreachable, match=r"no monitor address configured \(mon_host\)"):
        MonClientCore(" , ", Backoff.constant(1.0))


def test_only_the_first_hunt_has_a_deadline_and_the_gid_is_kept() -> None:
    core = MonClientCore("127.0.0.1:6789", Backoff(0.5, 4.0), give_up_after=5.0)
    core.start_hunt(now=0.0)
    core.connected(now=1.0, global_id=4100)
    assert core.lost(now=100.0) == 0.0  # a session that lasted: hunt again at once (Ceph)
    core.start_hunt(now=100.0)
    assert core.deadline is None  # once connected, a reconnecting client never gives up
    core.connected(now=101.0, global_id=4200)
    assert core.global_id == 4100


def test_a_monitor_that_keeps_dropping_us_is_not_hammered() -> None:
    core = MonClientCore("127.0.0.1:6789", Backoff(0.5, 4.0))
    core.start_hunt(now=0.0)
    core.connected(now=0.0, global_id=1)
    delays = []
    for k in range(4):
        delays.append(core.lost(now=k + 0.1))  # every session ends as soon as it began
        core.start_hunt(now=k + 0.1)
        core.connected(now=k + 1.0, global_id=1)
    assert delays == [0.5, 1.0, 2.0, 4.0]


def test_a_new_session_resends_subscriptions_session_messages_and_pending_commands() -> None:
    core = MonClientCore("127.0.0.1:6789", Backoff.constant(1.0))
    assert core.subscribe(["fsmap"]) == m.Subscribe(what=["fsmap"])
    assert core.subscribe(["fsmap", "log"]) == m.Subscribe(what=["log"])
    assert core.subscribe(["log"]) is None  # nothing new to send
    assert core.renew_subs() == m.Subscribe(what=["fsmap", "log"])  # all of them, again
    boot = m.OSDBoot(osd_id=0, addr="127.0.0.1:7000")
    core.set_session_msg("osd_boot", boot)
    first = core.command(["status"])
    second = core.command(["health"], "json")
    assert (first.tid, second.tid) == (1, 2)
    assert core.reply(m.CommandReply(tid=1, rc=0, outs="", outb="ok"))
    assert not core.reply(m.CommandReply(tid=1, rc=0, outs="", outb="again"))  # answered
    assert not core.reply(m.CommandReply(tid=9, rc=0, outs="", outb=""))  # never asked
    assert core.connected(now=0.0, global_id=7) == [m.Subscribe(what=["fsmap", "log"]), boot,
                                                     second]
    core.abandon(second.tid)
    core.drop_session_msg("osd_boot")
    assert core.connected(now=1.0, global_id=7) == [m.Subscribe(what=["fsmap", "log"])]


def test_mon_client_ping_timeout_marks_a_silent_session_dead() -> None:
    core = MonClientCore("127.0.0.1:6789", Backoff.constant(1.0), ping_timeout=3.0)
    assert core.ping_deadline() is None  # no session yet
    core.connected(now=10.0, global_id=1)
    assert core.ping_deadline() == 13.0
    assert not core.silent_too_long(12.9)
    core.heard(12.0)
    assert not core.silent_too_long(14.9) and core.silent_too_long(15.1)
    never = MonClientCore("127.0.0.1:6789", Backoff.constant(1.0))
    never.connected(now=0.0, global_id=1)
    assert never.ping_deadline() is None and not never.silent_too_long(1e9)


def test_the_client_cores_import_no_trio_and_read_no_clock() -> None:
    for name in ("common/monclient_core.py", "common/backoff.py", "common/addr.py",
                 "client/fscore.py"):
        tree = ast.parse((ROOT / name).read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {i for i in imported if i and (i == "common.net" or i.split(".")[0] in
                    ("trio", "time", "socket", "random"))}, name
