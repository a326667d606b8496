"""Proposals batched as Ceph's PaxosService batches them (issue 14 item 2): beacons that change
the map wait in the pending proposal until `propose_due`, their acks going out with the commit
(B4); commands and the tick commit what is pending at once."""

from __future__ import annotations

import dataclasses

from structlog.testing import capture_logs

from common import states
from common.messages import Beacon
from mon import commands
from tests.unit.monsim import Cluster, healthy

INTERVAL, MIN_WAIT = 1.0, 0.05  # paxos_propose_interval, paxos_min_wait (Ceph's defaults)


def _boot(c: Cluster, name: str, gid: int, seq: int = 1) -> Beacon:
    return Beacon(global_id=gid, name=name, state=states.BOOT, seq=seq, version=0,
                  addr=f"10.0.0.{gid % 250}:6800/{gid}")


def test_boots_wait_in_one_proposal_and_are_acked_when_it_commits() -> None:
    c = Cluster()
    epoch = c.mon.fsmap.epoch
    gids = [c.mon.allocate_gid() for _ in range(10)]
    for i, gid in enumerate(gids):
        out = c.mon.prepare_beacon(_boot(c, f"d{i}", gid), c.t, c.wall, reply_to=gid)
        assert out.reply is None and not out.changed  # nothing committed, nothing sent yet
    assert c.mon.fsmap.epoch == epoch and not c.mon.fsmap.standby_daemons
    # nothing committed for longer than the interval: the batch goes after paxos_min_wait
    assert c.mon.propose_due == c.t + MIN_WAIT
    out = c.mon.propose_pending(c.t + MIN_WAIT, c.wall)
    assert [m.epoch for m in out.fsmaps] == [epoch + 1]  # ten boots, one epoch
    assert sorted(c.mon.fsmap.standby_daemons) == gids
    assert [to for to, _ in out.acks] == gids
    assert all(ack.version == epoch + 1 and not ack.null_map for _, ack in out.acks)
    assert c.mon.propose_due is None


def test_a_change_soon_after_a_commit_waits_for_the_propose_interval() -> None:
    c = Cluster()
    c.mon.prepare_beacon(_boot(c, "a", c.mon.allocate_gid()), c.t, c.wall)
    c.mon.propose_pending(c.t, c.wall)
    c.mon.prepare_beacon(_boot(c, "b", c.mon.allocate_gid()), c.t + 0.3, c.wall)
    assert c.mon.propose_due == c.t + INTERVAL  # Ceph's should_propose: last commit + interval


def test_a_repeated_boot_beacon_joins_the_pending_boot() -> None:
    c = Cluster()
    gid = c.mon.allocate_gid()
    c.mon.prepare_beacon(_boot(c, "a", gid), c.t, c.wall, reply_to="first")
    out = c.mon.prepare_beacon(_boot(c, "a", gid, seq=2), c.t, c.wall, reply_to="again")
    assert out.reply is None
    out = c.mon.propose_pending(c.t + 1, c.wall)
    assert [to for to, _ in out.acks] == ["first", "again"]
    assert list(c.mon.fsmap.standby_daemons) == [gid]


def test_a_command_commits_the_batch_at_once_before_its_own_change() -> None:
    c = healthy("a", "b")
    epoch = c.mon.fsmap.epoch
    gid = c.mon.allocate_gid()
    c.mon.prepare_beacon(_boot(c, "late", gid), c.t, c.wall, reply_to="late")
    out = commands.run(c.mon, ["fs", "set", "cephfs", "session_timeout", "61"], "plain",
                       "client.admin", c.t, c.wall)
    assert out.reply[0] == 0 and c.mon.propose_due is None
    assert [m.epoch for m in out.fsmaps][:2] == [epoch + 1, epoch + 2]
    assert out.acks[0][0] == "late" and out.acks[0][1].version == epoch + 1
    assert gid in c.mon.fsmap.standby_daemons
    assert c.mon.fsmap.filesystems[1].session_timeout == 61


def test_B4_an_ack_sent_while_a_batch_is_pending_carries_the_committed_epoch() -> None:
    c = healthy("a", "b")
    epoch, holder = c.mon.fsmap.epoch, c.daemons[c.holder()]
    c.mon.prepare_beacon(_boot(c, "late", c.mon.allocate_gid()), c.t, c.wall)
    out = c.mon.prepare_beacon(holder.beacon_msg(holder.beacon.sent(c.t)), c.t, c.wall)
    assert out.reply is not None and out.reply.version == c.mon.fsmap.effective_epoch(
        holder.gid) <= epoch  # not the pending epoch


def test_a_state_change_is_acked_with_the_epoch_that_has_it() -> None:
    c = healthy("a", "b")
    holder = c.daemons[c.holder()]
    b = dataclasses.replace(holder.beacon_msg(holder.beacon.sent(c.t)), state=states.STOPPING)
    out = c.mon.prepare_beacon(b, c.t, c.wall, reply_to="holder")
    assert out.reply is None and c.mon.fsmap.info(holder.gid).state == states.ACTIVE
    out = c.mon.propose_pending(c.t + 1, c.wall)
    (to, ack), = out.acks
    assert to == "holder" and c.mon.fsmap.info(holder.gid).state == states.STOPPING
    assert ack.version == c.mon.fsmap.effective_epoch(holder.gid)


def test_H8_a_health_report_alone_is_proposed_and_logged() -> None:
    c = healthy("a", "b")
    holder = c.daemons[c.holder()]
    b = dataclasses.replace(holder.beacon_msg(holder.beacon.sent(c.t)), health=[
        {"type": "MDS_TRIM", "message": "Behind on trimming (300/128)", "severity": "warning"}])
    out = c.mon.prepare_beacon(b, c.t, c.wall, reply_to="holder")
    assert out.reply is not None  # M5: acked at once, the map is unchanged
    assert c.mon.propose_due is not None
    out = c.mon.propose_pending(c.t + 1, c.wall)
    assert not out.fsmaps
    assert any("Health check failed" in msg and "MDS_TRIM" in msg for _, _, msg in out.clog)
    assert not c.mon.tick(c.t + 1, c.wall).changed  # health is not computed again for nothing


def test_T5_no_beacon_is_logged_once_as_the_daemon_turns_laggy_not_at_every_tick() -> None:
    c = healthy("a")
    c.kill("a")  # no standby: it stays in the map, laggy, holding its rank (T6)
    with capture_logs() as logs:
        c.advance(60)  # 15 s grace, then a tick every 5 s
    late = [e for e in logs if e["event"].startswith("no beacon from")]
    assert len(late) == 1 and c.info("a").laggy
