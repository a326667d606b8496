"""The MDS's decisions, sans-IO, with plain numbers (issue 10 item 1): the life of the daemon
(mds.lifecycle), what a rank serves (mds.serving), pins and resolve (mds.pins)."""

from __future__ import annotations

import errno

from common import states
from common.monclient_core import MonClientCore
from mds import lifecycle, pins, serving, subtree
from mds.beacon import BeaconState


# -- lifecycle
def test_T3_mon_reconnect_backoff_doubles_and_never_exceeds_the_beacon_grace() -> None:
    b = lifecycle.mon_backoff(0.5, 2.0)
    assert [b.delay(i) for i in range(5)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    long_grace = lifecycle.mon_backoff(1.0, 60.0)
    assert [long_grace.delay(i) for i in range(5)] == [1.0, 2.0, 4.0, 7.0, 7.0]  # 5*hunt+2


def test_work_osd_and_peer_backoffs() -> None:
    w, o, p = (b.delays() for b in (lifecycle.work_backoff(3.0), lifecycle.osd_backoff(),
                                     lifecycle.peer_backoff()))
    assert [next(w) for _ in range(3)] == [3.0, 5.0, 5.0]
    assert [next(o) for _ in range(8)][-3:] == [1.6, 2.0, 2.0]
    assert [next(p) for _ in range(7)][-3:] == [0.8, 1.0, 1.0]
    assert [next(lifecycle.work_backoff(9.0).delays()) for _ in range(2)] == [5.0, 5.0]


def test_B10_removed_while_shutting_down_ends_instead_of_respawning() -> None:
    assert lifecycle.on_removed(stopping=True, signalled=False, respawning=False) == "end"
    assert lifecycle.on_removed(stopping=False, signalled=True, respawning=True) == "end"
    assert lifecycle.on_removed(stopping=False, signalled=False, respawning=True) == "ignore"
    assert lifecycle.on_removed(stopping=False, signalled=False, respawning=False) == "respawn"


def test_B8_a_null_map_means_respawn_unless_it_answers_our_down_dne() -> None:
    assert lifecycle.on_null_map_ack(stopping=False) == lifecycle.RESPAWN
    assert lifecycle.on_null_map_ack(stopping=True) == lifecycle.END
    assert lifecycle.beacon_state(states.ACTIVE, stopping=True) == states.DNE
    assert lifecycle.beacon_state(states.ACTIVE, stopping=False) == states.ACTIVE


def test_B5_maps_and_client_messages_wait_while_laggy_but_not_at_boot_or_for_commands() -> None:
    assert lifecycle.hold_map(states.ACTIVE, laggy=True)
    assert not lifecycle.hold_map(states.BOOT, laggy=True)
    assert not lifecycle.hold_map(states.ACTIVE, laggy=False)
    assert lifecycle.hold_client_message(False, states.ACTIVE, laggy=True)
    assert not lifecycle.hold_client_message(True, states.ACTIVE, laggy=True)


def test_the_ping_timeout_counts_from_the_last_acked_beacon_or_the_session_start() -> None:
    """The MDS's MonClient hears only acked beacons, stamped when the beacon left."""
    core = MonClientCore("127.0.0.1:1", lifecycle.mon_backoff(0.2, 1.0), ping_timeout=10)
    core.connected(10.0, 4100)
    assert core.silent_too_long(25.0)  # nothing acked since the session began
    core.heard(20.0)
    assert not core.silent_too_long(25.0) and core.ping_deadline() == 30.0
    core.heard(12.0)  # an older beacon's ack arriving late does not move the deadline back
    assert core.ping_deadline() == 30.0


def test_F4_F5_fenced_respawns_damaged_reports_and_osd_errors_retry() -> None:
    assert lifecycle.work_failure("fenced", "x").action == lifecycle.RESPAWN
    assert lifecycle.work_failure("damaged", "x").action == lifecycle.DAMAGED
    assert lifecycle.work_failure("osd", "down").action == lifecycle.RETRY


def test_the_beacon_state_keeps_no_wanted_state() -> None:
    assert not hasattr(BeaconState(15.0), "want_state")


# -- serving
def test_C1_who_may_open_a_session_and_when_it_is_journaled() -> None:
    bl = {"1.2.3.4:0/9"}
    assert serving.open_verdict(None, bl, states.ACTIVE, True, None)[0] == "bad"
    assert serving.open_verdict("1.2.3.4:0/9", bl, states.ACTIVE, True, None) == \
        ("reject", "blocklisted")
    assert serving.open_verdict("h:0/1", bl, states.REJOIN, True, None) == \
        ("close", "mds is up:rejoin")
    assert serving.open_verdict("h:0/1", bl, states.ACTIVE, False, None)[0] == "close"
    assert serving.open_verdict("h:0/1", bl, states.CLIENTREPLAY, True, None) == ("journal", "")
    assert serving.open_verdict("h:0/1", bl, states.ACTIVE, True, "h:0/2") == ("journal", "")
    assert serving.open_verdict("h:0/1", bl, states.ACTIVE, True, "h:0/1") == ("open", "")


def test_C2_a_reconnect_is_refused_without_a_session_or_outside_reconnect() -> None:
    assert serving.reconnect_verdict(False, states.RECONNECT, True, False) == "sessionless"
    assert serving.reconnect_verdict(True, states.ACTIVE, False, False) == "deny"
    assert serving.reconnect_verdict(True, states.RECONNECT, False, False) == "deny"
    assert serving.reconnect_verdict(True, states.RECONNECT, True, True) == "deny"
    assert serving.reconnect_verdict(True, states.RECONNECT, True, False) == "accept"
    assert serving.wait_for_reconnect_state(states.RECONNECT, states.REPLAY, False, False)
    assert not serving.wait_for_reconnect_state(states.RECONNECT, states.RECONNECT, True, False)
    assert not serving.wait_for_reconnect_state(states.RECONNECT, states.REPLAY, False, True)
    assert serving.reconnect_tick(5.0, 2.0) == 0.5 and serving.reconnect_tick(5.0, 0) == 0.05


def test_R3_which_states_serve_queue_and_wait_for_active() -> None:
    assert serving.serves(False, states.ACTIVE) and serving.serves(True, states.CLIENTREPLAY)
    assert not serving.serves(False, states.CLIENTREPLAY)
    assert serving.queue_for_clientreplay(True, states.RECONNECT)
    assert not serving.queue_for_clientreplay(False, states.RECONNECT)
    assert serving.waits_for_active(False, states.REJOIN)
    assert not serving.waits_for_active(True, states.CLIENTREPLAY)


def test_ops_read_or_write_and_a_resend_gets_the_recorded_answer() -> None:
    assert serving.op_kind("readdir") == "read" and serving.op_kind("rename") == "write"
    assert serving.op_kind("chown") is None
    assert serving.resend_answer({"inode": {}}) == (0, {"inode": {}}, "")
    assert serving.resend_answer(None) is None
    assert serving.no_session_reply("client.4") == (-errno.ENOTCONN, "no session for client.4")


def test_peers_are_answered_once_replayed_and_imports_need_a_serving_rank() -> None:
    assert serving.peer_answers("resolve", states.RESOLVE)
    assert not serving.peer_answers("resolve", states.REPLAY)
    assert not serving.peer_answers("export", states.REJOIN)
    assert serving.peer_answers("xprep", states.CLIENTREPLAY)


# -- pins and resolve
def test_R7_pin_policy() -> None:
    kw = dict(is_dir=True, exported=False, auth_root=False, rank=0, parent_rank=0,
              target_active=True)
    assert pins.decide(**kw, target=1) == (pins.EXPORT, 1)
    assert pins.decide(**dict(kw, target_active=False), target=1) == (pins.STAY, -1)
    assert pins.decide(**kw, target=0) == (pins.STAY, -1)
    assert pins.decide(**dict(kw, exported=True), target=1) == (pins.RELAY, -1)
    assert pins.decide(**dict(kw, is_dir=False), target=1) == (pins.STAY, -1)
    back = dict(kw, auth_root=True, rank=1, parent_rank=0)
    assert pins.decide(**back, target=-1) == (pins.EXPORT, 0)
    assert pins.valid_pin("-1") and not pins.valid_pin("-2") and not pins.valid_pin("x")


def test_R7_a_pin_set_or_a_new_top_level_directory_is_spread() -> None:
    xattrs = {"xattrs": {pins.PIN_XATTR: "2"}, "path": "/a"}
    assert pins.after_request("setattr", xattrs, 0, 1, 3) == ("/a", 2, 1)
    assert pins.after_request("setattr", xattrs, -2, 1, 3) is None
    name = next(n for n in (f"d{i}" for i in range(50)) if subtree.default_rank(n, 2) == 1)
    assert pins.after_request("mkdir", {"path": f"/{name}"}, 0, 0, 2) == (f"/{name}", 1, 0)
    assert pins.after_request("mkdir", {"path": f"/{name}/x"}, 0, 0, 2) is None
    assert pins.after_request("mkdir", {"path": f"/{name}"}, 0, 0, 1) is None
    assert pins.pin_in_request("setattr", xattrs) == "2"


def test_pins_travel_with_an_import() -> None:
    ev = {"chain": [[1, "a", {"ino": 5, "xattrs": {pins.PIN_XATTR: "1"}}]],
          "entries": [[5, "b", {"ino": 6, "xattrs": {pins.PIN_XATTR: "2"}}],
                      [5, "c", {"ino": 7, "xattrs": {}}]]}
    assert pins.pins_to_enforce(ev, 1) == [(6, 2)]


def test_R3_resolve_asks_each_replayed_rank_once_and_is_done_when_all_answered() -> None:
    others = {1: states.RESOLVE, 2: states.REPLAY, 3: None}
    assert pins.resolve_next(others, set(), serving.REPLAYED) == [1]
    assert pins.resolve_next(others, {1}, serving.REPLAYED) == []
    assert not pins.resolve_done(others, {1}) and pins.resolve_done(others, {1, 2, 3})
    assert pins.xrank_outcomes(["a", "b"], {"a": 2, "c": 2, "d": 5}, 2, {"a", "c", "d"}) == \
        {"a": True, "b": False, "c": True}


# -- admin commands
def test_admin_returns_what_to_do_and_starts_nothing() -> None:
    from types import SimpleNamespace

    from common.config import Config
    from mds import admin
    from mds.sessionmap import SessionMap

    smap = SessionMap()
    s = smap.add("client.78", "h:0/1", {"hostname": "box"}, 0.0)
    config = Config("mds.a")
    daemon = SimpleNamespace(sessionmap=smap, config=config, sm=None)  # no nursery
    reply, effects = admin.run(["session", "evict", "78"], "json", daemon, 1.0)
    assert reply == (0, "", "") and len(effects) == 1
    assert effects[0].session is s and effects[0].message.startswith("Evicting")
    reply, effects = admin.run(["config", "set", "mds_log_pause", "true"], "json", daemon, 1.0)
    assert reply[0] == 0 and effects == [admin.ConfigChanged(["mds_log_pause"])]
    assert admin.run(["session", "evict", "99"], "json", daemon, 1.0) == \
        ((-errno.ENOENT, "session 99 not found", ""), [])
