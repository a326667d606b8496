"""The MDS session table's decisions (ref C1, C2, C5, C6, B5)."""

from __future__ import annotations

from mds.sessionmap import OPEN, STALE, SessionMap


def _map(*clients: str, now: float = 0.0) -> SessionMap:
    smap = SessionMap()
    for i, c in enumerate(clients):
        smap.add(c, f"127.0.0.1:0/{i + 1}", {}, now)
    smap.last_cleared_laggy = -1000.0
    return smap


def test_C1_blocklisted_sessions_are_dropped_and_the_rest_must_reconnect():
    smap = _map("client.1", "client.2", "client.3")
    dropped = smap.start_reconnect(10.0, {"127.0.0.1:0/2"})
    assert [s.client for s in dropped] == ["client.2"]
    assert smap.gather == {"client.1", "client.3"}
    assert smap.reconnected("client.1", 11.0) and not smap.reconnected("client.9", 11.0)
    assert not smap.reconnect_done()
    assert smap.reconnected("client.3", 11.5) and smap.reconnect_done()


def test_C1_nothing_to_wait_for():
    smap = SessionMap()
    smap.start_reconnect(0.0, set())
    assert smap.reconnect_done()


def test_C2_waits_the_timeout_then_evicts_the_missing():
    smap = _map("client.1", "client.2")
    smap.start_reconnect(100.0, set())
    smap.reconnected("client.1", 101.0)
    assert smap.reconnect_tick(144.0, 45.0) == ("wait", [])
    verdict, evicts = smap.reconnect_tick(145.5, 45.0)
    assert verdict == "evict" and [e.session.client for e in evicts] == ["client.2"]
    assert evicts[0].message == ("evicting unresponsive client 2, after waiting 45.5 seconds "
                                 "during MDS startup")  # no hostname: the bare id, as Ceph


def test_C2_a_client_seen_recently_extends_the_window():
    smap = _map("client.1")
    smap.start_reconnect(0.0, set())
    smap.get("client.1").seen(30.0)  # seen, but no reconnect yet
    assert smap.reconnect_tick(46.0, 45.0)[0] == "extend"
    assert smap.reconnect_tick(53.0, 45.0)[0] == "evict"  # 23 s > 45/2 since seen


def test_C5_defer_session_stale_keeps_an_idle_session_open_until_autoclose():
    smap = _map("client.1", now=0.0)
    assert smap.idle(61.0, 60, 300, defer_stale=True) == ([], [])
    assert smap.get("client.1").state == OPEN
    stale, evicts = smap.idle(300.0, 60, 300, defer_stale=True)
    assert not stale and [e.session.client for e in evicts] == ["client.1"]
    assert evicts[0].message == "evicting unresponsive client 1, after 300 seconds"


def test_C5_C6_without_deferral_stale_then_evicted():
    smap = _map("client.1", now=0.0)
    stale, evicts = smap.idle(61.0, 60, 300, defer_stale=False)
    assert [s.client for s in stale] == ["client.1"] and not evicts
    assert smap.get("client.1").state == STALE
    smap.get("client.1").renewed(100.0)  # a renewal reopens it
    assert smap.get("client.1").state == OPEN
    smap.idle(161.0, 60, 300, defer_stale=False)
    _, evicts = smap.idle(400.0, 60, 300, defer_stale=False)
    assert [e.session.client for e in evicts] == ["client.1"]


def test_C5_renewals_keep_a_session():
    smap = _map("client.1", now=0.0)
    for t in range(20, 1000, 20):
        smap.get("client.1").renewed(float(t))
        assert smap.idle(float(t) + 1, 60, 300, defer_stale=False) == ([], [])


def test_B5_nothing_goes_stale_soon_after_we_were_laggy():
    smap = _map("client.1", now=0.0)
    smap.last_cleared_laggy = 350.0
    assert smap.idle(400.0, 60, 300, defer_stale=True) == ([], [])
    assert smap.idle(411.0, 60, 300, defer_stale=True)[1]


def test_sessions_replayed_from_the_journal_are_loaded():
    smap = SessionMap()
    smap.load({"client.4": {"addr": "1.2.3.4:0/9", "metadata": {"hostname": "h"}}}, 5.0)
    s = smap.get("client.4")
    assert s.addr == "1.2.3.4:0/9" and s.num == 4 and smap.by_num(4) is s
    assert s.metadata == {"hostname": "h"}


def test_C6_eviction_line_names_the_host_and_id_with_decimal_seconds():
    # Ceph's Server::find_idle_sessions: "<hostname> (<id>)", seconds since the last renewal
    smap = SessionMap()
    smap.last_cleared_laggy = -1000.0
    smap.add("client.4123", "127.0.0.1:0/9", {"hostname": "node7"}, 0.0)
    _, evicts = smap.idle(301.25, 60, 300, defer_stale=True)
    assert evicts[0].message == "evicting unresponsive client node7 (4123), after 301.25 seconds"
    smap.get("client.4123").state = STALE
    _, evicts = smap.idle(1234.56789, 60, 300, defer_stale=False)
    assert evicts[0].message == "evicting unresponsive client node7 (4123), after 1234.57 seconds"


def test_C2_startup_eviction_line_names_the_host():
    smap = SessionMap()
    smap.add("client.5", "127.0.0.1:0/5", {"hostname": "web1"}, 0.0)
    smap.start_reconnect(10.0, set())
    _, evicts = smap.reconnect_tick(55.125, 45.0)
    assert evicts[0].message == ("evicting unresponsive client web1 (5), after waiting 45.125 "
                                 "seconds during MDS startup")


def test_denied_reconnect_names_the_client_instance():
    # Ceph's Server::handle_client_reconnect: the source inst, the delay since reconnect began
    smap = _map("client.7")
    smap.start_reconnect(100.0, set())
    smap.reconnect_start = None  # reconnect over; the rank went on to up:active
    line = smap.denied_reconnect("client.7", "127.0.0.1:0/7", "up:active", 112.5, 45.0, 0.0)
    assert line == ("denied reconnect attempt (mds is up:active) from client.7 "
                    "v1:127.0.0.1:0/7 after 12.5 (allowed interval 45)")
    never = SessionMap().denied_reconnect("client.8", "127.0.0.1:0/8", "up:active", 30.0, 2.0,
                                          20.0)
    assert never.endswith("from client.8 v1:127.0.0.1:0/8 after 10 (allowed interval 2)")


def test_session_config_timeout_evicts_without_going_stale_where_stale_applies():
    # Server::find_idle_sessions: a session's own "timeout" replaces going stale; 0 = never
    smap = _map("client.1", "client.2", "client.3", now=0.0)
    smap.get("client.1").metadata["timeout"] = "100"
    smap.get("client.2").metadata["timeout"] = "0"
    stale, evicts = smap.idle(61.0, 60, 300, defer_stale=False)
    assert [s.client for s in stale] == ["client.3"] and not evicts
    _, evicts = smap.idle(100.0, 60, 300, defer_stale=False)
    assert [e.session.client for e in evicts] == ["client.1"]
    assert smap.get("client.2").state == OPEN  # infinite, until autoclose
    # with mds_defer_session_stale (the default) an idle session waits for autoclose anyway
    smap2 = _map("client.1", now=0.0)
    smap2.get("client.1").metadata["timeout"] = "10"
    assert smap2.idle(100.0, 60, 300, defer_stale=True) == ([], [])


def test_clients_laggy_eviction_deferred_while_the_osd_is_laggy():
    # defer_client_eviction_on_laggy_osds: due, but spared and reported (MDS_CLIENTS_LAGGY)
    smap = _map("client.1", "client.2", now=0.0)
    smap.get("client.2").renewed(250.0)
    assert smap.idle(300.0, 60, 300, defer_stale=True, defer_eviction=True) == ([], [])
    assert [s.client for s in smap.laggy_clients] == ["client.1"]
    _, evicts = smap.idle(301.0, 60, 300, defer_stale=True, defer_eviction=False)
    assert [e.session.client for e in evicts] == ["client.1"] and smap.laggy_clients == []


def test_X4_only_the_last_rank_stopping_evicts_its_clients():
    # MDSRank::stopping_start: get_num_in_mds() == 1 and sessions: evict them all
    smap = _map("client.12", "client.3")
    assert smap.last_rank_stopping(2) == []
    assert [s.client for s in smap.last_rank_stopping(1)] == ["client.3", "client.12"]
    assert SessionMap().last_rank_stopping(1) == []


def test_a_client_sent_timeout_of_any_shape_is_read_as_strtoul_does():
    smap = _map("client.1", "client.2", "client.3", now=0.0)
    smap.get("client.1").metadata["timeout"] = "junk"  # strtoul: 0, never times out
    smap.get("client.2").metadata["timeout"] = 70  # an int from the wire
    smap.get("client.3").metadata["timeout"] = "80s"
    _, evicts = smap.idle(75.0, 60, 300, defer_stale=False)
    assert [e.session.client for e in evicts] == ["client.2"]
    _, evicts = smap.idle(85.0, 60, 300, defer_stale=False)
    assert [e.session.client for e in evicts] == ["client.2", "client.3"]
