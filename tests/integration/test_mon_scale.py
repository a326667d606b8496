"""Bounded memory for a slow peer (issue 14 item 3): a subscriber that stops reading gets
the newest map when it reads again, not a backlog, and one stuck past ms_send_timeout is
disconnected and logged, while the monitor's memory stays flat."""

from __future__ import annotations

import socket

import pytest

from tests.integration.cluster import wait_for
from tests.integration.test_metadata import _raw_recv, _raw_send

pytestmark = [pytest.mark.processes, pytest.mark.timeout(180)]


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _stuck_subscriber(host: str, port: int) -> socket.socket:
    """Subscribes to the FSMap, then never reads (a tiny receive buffer fills at once)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect((host, port))
    _raw_send(s, {"type": "hello", "entity": "client.stuck", "proto": 1})
    assert _raw_recv(s)["type"] == "hello_ok"
    _raw_send(s, {"type": "subscribe", "what": ["fsmap"]})
    return s


def _closed_by_peer(s: socket.socket) -> bool:
    """Reads what the monitor managed to send; True once it has closed the connection."""
    s.settimeout(0.5)
    try:
        while chunk := s.recv(1 << 20):
            del chunk
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


def test_a_stuck_subscriber_costs_no_backlog_and_is_disconnected(cluster_factory):
    c = cluster_factory(cephx=False)  # raw protocol subscribers: auth none
    c.start_mon()
    # a map worth holding on to: 20 file systems
    c.query_many([["fs", "flag", "set", "enable_multiple", "true", "--yes-i-really-mean-it"]]
                 + [["osd", "pool", "create", f"p{i}"] for i in range(40)])
    c.query_many([["fs", "new", f"fs{i}", f"p{2 * i}", f"p{2 * i + 1}"] for i in range(20)],
                 timeout=60)
    host, port = "127.0.0.1", c.port
    pid = c.mon.pid
    before = _rss_mb(pid)
    stuck = _stuck_subscriber(host, int(port))
    try:
        toggles = [["fs", "flag", "set", "enable_multiple", "true", "--yes-i-really-mean-it"]]
        for _ in range(6):  # 600 epochs, each a new FSMap for the stuck subscriber
            replies = c.query_many(toggles * 100, timeout=60)
            assert all(rc == 0 for rc, _, _ in replies)
        grown = _rss_mb(pid) - before
        assert grown < 12, f"monitor RSS grew {grown:.0f} MB with a stuck subscriber"
        # disconnected once one send has blocked ms_send_timeout (3 s in the fast profile)
        wait_for(lambda: "closing connection: peer stuck, not reading" in c.log("mon.a"), 20,
                 "the monitor to give up on the stuck subscriber")
        wait_for(lambda: _closed_by_peer(stuck), 10, "the stuck subscriber to be disconnected")
    finally:
        stuck.close()
    assert c.query("health")[0] == 0  # the monitor carries on
