"""Bounded memory for slow peers on the MDS's side (issue 14 item 3): a client that sends
requests and stops reading the replies is disconnected, logged, after ms_send_timeout, or
once ms_max_queued_messages replies wait for it; the MDS's memory stays flat and it carries
on serving others. (The monitor's side: test_mon_scale.py.)"""

from __future__ import annotations

import socket

import pytest

from client.fsdump import active
from tests.integration.cluster import wait_for
from tests.integration.test_metadata import _raw_recv, _raw_send
from tests.integration.test_mon_scale import _closed_by_peer, _rss_mb

pytestmark = [pytest.mark.processes, pytest.mark.timeout(180)]

NAME = "n" * 2000  # long names: each readdir reply of the directory is about 60 KB
ENTRIES = 30


def _client(addr: str, n: int, rcvbuf: int = 0) -> socket.socket:
    host, port = addr.split("/")[0].rsplit(":", 1)
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(20)
    s.connect((host, int(port)))
    _raw_send(s, {"type": "hello", "entity": f"client.{7000 + n}", "proto": 1})
    assert _raw_recv(s)["type"] == "hello_ok"
    _raw_send(s, {"type": "client_session", "op": "request_open",
                  "metadata": {"addr": f"127.0.0.1:0/{7000 + n}"}})
    assert _raw_recv(s)["op"] == "open"
    return s


def _request(s: socket.socket, tid: int, op: str, path: str) -> None:
    _raw_send(s, {"type": "client_request", "tid": tid, "op": op, "args": {"path": path}})


def _replies(s: socket.socket, tids: set[int]) -> dict[int, dict]:
    """The first reply (unsafe or safe) to each of `tids`."""
    got: dict[int, dict] = {}
    while len(got) < len(tids):
        msg = _raw_recv(s)
        if msg.get("tid") in tids:
            got.setdefault(msg["tid"], msg)
    return got


def _big_directory(addr: str) -> None:
    s = _client(addr, 0)
    try:
        _request(s, 1, "mkdir", "/big")
        assert _replies(s, {1})[1]["rc"] == 0
        for i in range(ENTRIES):
            _request(s, 2 + i, "mkdir", f"/big/{NAME}{i}")
        replies = _replies(s, set(range(2, 2 + ENTRIES)))
        assert all(r["rc"] == 0 for r in replies.values())
    finally:
        s.close()


def _flood(s: socket.socket, n: int) -> None:
    """n readdirs of the big directory, whose replies are never read (until the MDS closes
    the connection, when sending fails)."""
    try:
        for tid in range(1, n + 1):
            _request(s, tid, "readdir", "/big")
    except OSError:
        pass  # closed by the MDS


@pytest.mark.parametrize("conf, line", [
    # the fast profile's 3 s ms_send_timeout
    ({}, "closing connection: peer stuck, not reading"),
    # a long timeout, a short queue
    ({"ms_send_timeout": "600", "ms_max_queued_messages": "50"},
     "closing connection: peer too slow, send queue full"),
])
def test_a_client_that_stops_reading_is_disconnected_and_costs_no_backlog(
        cluster_factory, conf, line):
    c = cluster_factory(conf={"mds": conf} if conf else None,
                        cephx=False).start(("a",))  # raw protocol sessions: auth none
    addr = c.wait_map(lambda d: active(d), 30, "rank 0 active")
    addr = active(addr)["addr"]
    _big_directory(addr)
    pid = c.pid_of("mds.a")
    before = _rss_mb(pid)
    stuck = _client(addr, 1, rcvbuf=4096)
    try:
        _flood(stuck, 300)  # about 18 MB of replies
        wait_for(lambda: line in c.log("mds.a"), 30, "the MDS to give up on the client")
        wait_for(lambda: _closed_by_peer(stuck), 10, "the client to be disconnected")
        grown = _rss_mb(pid) - before
        assert grown < 30, f"MDS RSS grew {grown:.0f} MB for a client that does not read"
    finally:
        stuck.close()
    other = _client(addr, 2)  # the MDS carries on
    try:
        _request(other, 1, "readdir", "/big")
        assert len(_replies(other, {1})[1]["result"]["entries"]) == ENTRIES
    finally:
        other.close()

