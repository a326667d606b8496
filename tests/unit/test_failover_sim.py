"""Failovers with the MDS's own cores against the monitor core, in virtual time (monsim):
the daemons' state machine, lagginess, session map and reconnect window are the real ones,
only the sockets and the clock are not."""

from __future__ import annotations

from common import states
from mds.rank import RankStateMachine
from tests.unit.monsim import healthy


def test_the_simulated_daemons_are_made_of_the_mds_cores() -> None:
    c = healthy("a", "b")
    d = c.daemons[c.holder()]
    assert isinstance(d.sm, RankStateMachine) and d.sm.state == states.ACTIVE
    assert "Monitors have assigned me to become a standby." in c.daemons[c.standbys()[0]].log


def test_C1_a_failover_keeps_the_sessions_of_clients_that_reconnect() -> None:
    c = healthy("a", "b")
    holder, spare = c.holder(), c.standbys()[0]
    assert c.mount("client.4200") == "journal" and c.mount("client.4201") == "journal"
    assert c.mount("client.4200") == "open"  # a known session: nothing to journal
    c.kill(holder)
    c.until(lambda: c.holder() == spare and c.all_active(), within=60)
    assert c.sessions() == ["client.4200", "client.4201"]
    assert c.daemons[spare].history[-4:] == ["up:replay", "up:reconnect", "up:rejoin",
                                             "up:active"]
    assert not c.mon.osdmap.is_blocklisted("192.168.0.1:0/1")


def test_C2_a_dead_client_holds_reconnect_for_the_timeout_then_is_evicted() -> None:
    c = healthy("a", "b")
    spare = c.standbys()[0]
    c.mount("client.4200")
    c.mount("client.4201")
    c.kill_client("client.4201")
    c.kill(c.holder())
    c.until(lambda: c.state(spare) == "up:reconnect", within=60)
    entered = c.t
    c.until(lambda: c.state(spare) != "up:reconnect", within=120, step=0.5)
    assert c.t - entered >= c.opt("mds_reconnect_timeout")
    c.until(lambda: c.all_active(), within=10)
    assert c.sessions() == ["client.4200"]
    assert c.mon.osdmap.is_blocklisted(c.clients["client.4201"].addr)
    assert any(level == "WRN" and msg.startswith("evicting unresponsive client 4201, after "
                                                 "waiting") and "during MDS startup" in msg
               for level, msg in c.clog)
    # the evicted client cannot come back to the new holder (C1: blocklisted)
    assert c.mount("client.4201") == "reject"


def test_C1_a_standby_replay_follower_knows_the_sessions_when_promoted() -> None:
    c = healthy("a", "b", standby_replay=True)
    holder, follower = c.holder(), c.follower()
    c.mount("client.4200")
    c.kill(holder)
    c.until(lambda: c.holder() == follower and c.all_active(), within=60)
    assert c.sessions() == ["client.4200"]
    assert "Monitor activated us! Deactivating replay loop" in c.daemons[follower].log  # R6


def test_R3_resolve_waits_until_every_rank_has_replayed() -> None:
    c = healthy("a", "b", "c", "d", max_mds=2)
    spares = c.standbys()
    c.daemons[spares[0]].hold = {states.REPLAY}
    c.daemons[spares[1]].hold = {states.REPLAY}
    c.kill(c.holder(0))
    c.kill(c.holder(1))
    c.until(lambda: {c.state(s) for s in spares} == {"up:replay"}, within=60)
    first, second = sorted(spares, key=lambda s: c.info(s).rank)
    c.release(first)
    c.advance(30)
    assert c.state(first) == "up:resolve"  # the other rank has not replayed: nobody to ask
    assert c.daemons[first].working == states.RESOLVE
    c.release(second)
    c.until(lambda: c.all_active(), within=60)
    assert "resolve_done" in c.daemons[first].log


def test_B5_a_laggy_daemon_holds_maps_until_its_beacons_are_acked() -> None:
    c = healthy("a")  # no standby: the mon marks the silent holder laggy, nothing more
    d = c.daemons["a"]
    c.pause("a")
    c.advance(c.opt("mds_beacon_grace") + 5)
    assert c.info("a").laggy
    epoch = d.sm.epoch
    d.on_map(c.mdsmap_for("a"), c, c.t)  # what waited in its socket
    assert d.deferred is not None and d.sm.epoch == epoch  # held: our beacons went unacked
    c.resume("a")  # its beacon is acked: the held map is acted on
    assert d.deferred is None and d.sm.epoch == c.mdsmap_for("a").epoch > epoch
    c.advance(c.opt("mds_beacon_interval"))
    assert not c.info("a").laggy and c.state("a") == "up:active"


def test_B10_a_clean_shutdown_of_the_holder_is_taken_over_without_fencing_it() -> None:
    c = healthy("a", "b")
    holder, spare = c.holder(), c.standbys()[0]
    c.mount("client.4200")
    reply = c.shutdown(holder)
    assert reply is not None and reply.null_map
    assert c.daemons[holder].respawns == 0  # its null map ends it, no respawn (B10)
    c.until(lambda: c.holder() == spare and c.all_active(), within=30)
    assert c.sessions() == ["client.4200"]


def test_F4_a_replaced_holder_that_still_believes_it_is_active_cannot_journal() -> None:
    c = healthy("a", "b")
    old, spare = c.holder(), c.standbys()[0]
    c.pause(old)  # it hears nothing (and is heard by nobody) while it is replaced
    c.until(lambda: c.holder() == spare and c.all_active(), within=60)
    d = c.daemons[old]
    assert d.state == states.ACTIVE and c.mon.osdmap.is_blocklisted(d.addr)  # fenced (F1)
    # a client with an old map still talks to it: its ESession is refused by the osd
    assert c.mount("client.4300", via=old) == "fenced"
    assert d.respawns == 1 and d.respawn_reasons[-1] == f"mds.{old} is blocklisted"
    assert "client.4300" not in c.journal_of(c.fs().fscid, 0)
    c.resume(old)
    c.until(lambda: c.state(old) == "up:standby", within=30)
