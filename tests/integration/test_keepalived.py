"""mdsemu-keepalived as real processes: two (or three) daemons on 127.x addresses with
advert_int 0.1 s, fronting a local TCP service each (issue 12 items 1, 2, 5).

The takeover bounds come from keepalived's timers (vrrp.c, RFC 5798 §6.1): a backup owns the
VIP within Master_Down_Interval = 3 × advert_int + (256 − prio) × advert_int / 256 after the
master's last advert; after a clean stop (priority-0 advert) within the skew alone. MARGIN
covers process scheduling on a loaded 2-core machine.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

import pytest

from client.vipnodes import KEEPALIVED, Nodes, instance, server, who
from tests.integration.cluster import wait_for
from vip import packet
from vip.vrrp import master_down_interval, skew_time

pytestmark = [pytest.mark.processes, pytest.mark.timeout(60)]

ADV = 0.1
MARGIN = 0.5


@pytest.fixture
def vip_nodes(tmp_path):
    nodes = Nodes(tmp_path)
    yield nodes
    nodes.close()


def pair(nodes: Nodes, a_extra: str = "", b_extra: str = "", a_globals: str = "",
         a_body: str = ""):
    """a (priority 150) and b (priority 100) sharing VI_1 on VIP .10, a the master."""
    a, b = nodes.node("a"), nodes.node("b")
    vip = nodes.ip(10)
    a.write_conf(a_body + instance("VI_1", 51, a, [b], 150, vip, ADV, a_extra)
                 + server(vip, nodes.port, a), a_globals)
    b.write_conf(instance("VI_1", 51, b, [a], 100, vip, ADV, b_extra)
                 + server(vip, nodes.port, b))
    a.start()
    nodes.wait_holder(vip, "a")
    b.start()
    wait_for(lambda: b.state() == "BACKUP", 10, "b to be BACKUP")
    return a, b, vip


def test_kill9_of_master_backup_owns_the_vip_within_the_down_interval(vip_nodes):
    notify_log = vip_nodes.dir / "notify.log"
    notify = f"    notify \"/bin/sh -c 'echo $* >> {notify_log}' notify\"\n"
    a, b, vip = pair(vip_nodes, b_extra=notify)
    # the backup holds nothing: one listener on VIP:PORT, the master's
    assert b.status()["virtual_servers"][0]["listening"] is False
    assert [who(vip, vip_nodes.port) for _ in range(3)] == ["head-a"] * 3
    t0 = time.monotonic()
    a.kill()
    took = vip_nodes.wait_holder(vip, "b", since=t0)
    assert took <= master_down_interval(100, ADV, 3) + MARGIN
    assert b.state() == "MASTER"
    ev = b.events()
    assert ev.index("(VI_1) Entering BACKUP STATE (init)") < ev.index(
        "(VI_1) Receive advertisement timeout") < ev.index("(VI_1) Entering MASTER STATE")
    # notify gets INSTANCE NAME STATE PRIORITY, as keepalived's generic notify
    wait_for(lambda: "INSTANCE VI_1 MASTER 100" in notify_log.read_text(), 5, "notify")
    assert notify_log.read_text().splitlines()[0] == "INSTANCE VI_1 BACKUP 100"
    # with both daemons gone nobody holds the VIP: connections are refused
    b.kill()
    assert who(vip, vip_nodes.port) is None


def test_clean_stop_hands_over_after_the_skew(vip_nodes):
    a, b, vip = pair(vip_nodes)
    a.kill(signal.SIGTERM)
    assert a.proc.returncode == 0
    vip_nodes.wait_holder(vip, "b")
    # By the daemons' own clocks: b took over after the skew (15 ms here) plus scheduling.
    # Without the priority-0 advert it could not be sooner than 2 × advert_int + skew after
    # the stop (a's last advert came at most one interval before it).
    took = b.logged_at("(VI_1) Entering MASTER STATE") - a.logged_at("(VI_1) sent 0 priority")
    assert 0 <= took < 2 * ADV
    assert skew_time(100, ADV, 3) < 2 * ADV


@pytest.mark.parametrize("nopreempt", [False, True], ids=["preempt", "nopreempt"])
def test_returning_master_preempts_unless_nopreempt(vip_nodes, nopreempt):
    a, b, vip = pair(vip_nodes)
    a.kill()
    vip_nodes.wait_holder(vip, "b")
    if nopreempt:  # keepalived: nopreempt needs initial state BACKUP (the default)
        a.conf.write_text(a.conf.read_text().replace("priority 150", "priority 150\nnopreempt"))
    a.start()
    if not nopreempt:
        vip_nodes.wait_holder(vip, "a")
        assert (f"(VI_1) received lower priority (100) advert from {b.ip} - discarding"
                in a.events())
        assert (f"(VI_1) Master received advert from {a.ip} with higher priority 150, ours 100"
                in b.events())
        assert b.state() == "BACKUP"
        assert "(VI_1) removing VIPs." in b.events()
        assert b.status()["virtual_servers"][0]["listening"] is False  # b holds nothing
    else:
        wait_for(lambda: a.status()["vrrp"][0]["mdsemu"]["master"] == b.ip, 10,
                 "a to follow b")
        # three of a's down intervals later b still holds the VIP
        vip_nodes.stays(vip, "b", 3 * master_down_interval(150, ADV, 3))
        assert a.state() == "BACKUP"


def test_failing_track_script_moves_the_vip_and_back(vip_nodes):
    healthy = vip_nodes.dir / "healthy"
    healthy.write_text("")
    script = (f"vrrp_script chk {{\n    script \"test -e {healthy}\"\n    interval 0.1\n"
              "    weight -60\n    rise 2\n    fall 2\n}\n")
    a, b, vip = pair(vip_nodes, a_extra="    track_script {\n        chk\n    }\n",
                     a_body=script)
    healthy.unlink()
    vip_nodes.wait_holder(vip, "b")
    ev = a.events()
    assert "VRRP_Script(chk) failed (exited with status 1)" in ev
    assert "(VI_1) Changing effective priority from 150 to 90" in ev
    assert f"(VI_1) Master received advert from {b.ip} with higher priority 100, ours 90" in ev
    st = a.status()
    assert st["vrrp"][0]["data"]["effective_priority"] == 90
    assert st["scripts"][0]["status"] == "BAD"
    healthy.write_text("")
    vip_nodes.wait_holder(vip, "a")
    assert "VRRP_Script(chk) succeeded" in a.events()


def test_two_vips_each_daemon_primary_for_one(vip_nodes):
    a, b = vip_nodes.node("a"), vip_nodes.node("b")
    v1, v2 = vip_nodes.ip(10), vip_nodes.ip(11)
    for me, peer, p1, p2 in ((a, b, 150, 100), (b, a, 100, 150)):
        me.write_conf(instance("VI_1", 51, me, [peer], p1, v1, ADV)
                      + instance("VI_2", 52, me, [peer], p2, v2, ADV)
                      + server(v1, vip_nodes.port, me) + server(v2, vip_nodes.port, me))
    a.start()
    b.start()
    vip_nodes.wait_holder(v1, "a")
    vip_nodes.wait_holder(v2, "b")
    out = a.cli_status("plain")
    assert out.returncode == 0
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines()[2:4]}
    assert rows["VI_1"][1] == "MASTER" and rows["VI_2"][1] == "BACKUP"
    b.kill()
    vip_nodes.wait_holder(v2, "a")
    assert who(v1, vip_nodes.port) == "head-a"


def test_status_json_and_errors(vip_nodes):
    a, b, vip = pair(vip_nodes)
    out = b.cli_status("json")
    assert out.returncode == 0, out.stderr
    st = json.loads(out.stdout)
    # keepalived's JSON dump layout: vrrp[] of {data, stats}; state 1 is BACKUP (vrrp.h)
    (inst,) = st["vrrp"]
    data, stats, extra = inst["data"], inst["stats"], inst["mdsemu"]
    assert (data["iname"], data["vrid"], data["state"], data["master_priority"]) == (
        "VI_1", 51, 1, 150)
    assert (data["base_priority"], data["effective_priority"], data["vipset"]) == (100, 100, False)
    assert data["vips"] == [vip] and data["adver_int"] == ADV
    assert stats["advert_rcvd"] > 0 and stats["become_master"] == 0
    assert (extra["state"], extra["master"]) == ("BACKUP", a.ip)
    assert extra["down_interval"] == pytest.approx(master_down_interval(100, ADV, 3), abs=1e-5)
    a_stats = a.status()["vrrp"][0]
    assert a_stats["data"]["state"] == 2 and a_stats["stats"]["become_master"] == 1
    assert a_stats["stats"]["advert_sent"] > 0 and a_stats["data"]["vipset"] is True
    bad = vip_nodes.dir / "bad.conf"
    bad.write_text("vrrp_instance VI_1 {\n    priority 256\n}\n")
    r = subprocess.run([*KEEPALIVED, "-f", str(bad)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 22
    assert f"{bad}:2: priority: 256 is out of range" in r.stderr
    b.kill()
    r = b.cli_status("plain")
    assert r.returncode == 2 and "cannot reach mdsemu-keepalived" in r.stderr


def test_garbage_on_the_advert_port_and_control_socket_and_sighup_crash_nothing(vip_nodes):
    a, b, vip = pair(vip_nodes)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((vip_nodes.ip(5), 0))
        for junk in (b"", b"\x31", b"\xff" * 64, packet.encode(3, 51, 200, 0.1, [])[:6] + b"xx",
                     packet.encode(3, 99, 254, 0.1, [])):  # the last: another VRID
            s.sendto(junk, (b.ip, vip_nodes.vrrp_port))
    wait_for(lambda: f"bad VRRP packet from {vip_nodes.ip(5)}: invalid checksum" in b.events(),
             5, "b to log the bad packet")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(5)
        c.connect(b.sock)
        c.sendall(b"frobnicate\n")
        assert json.loads(c.makefile().readline()) == {"error": "unknown request 'frobnicate'"}
    b.proc.send_signal(signal.SIGHUP)  # keepalived's reload: refused, not fatal
    wait_for(lambda: any("Reloading is not supported" in e for e in b.events()), 5, "SIGHUP")
    vip_nodes.stays(vip, "a", 3 * master_down_interval(100, ADV, 3))
    assert b.state() == "BACKUP" and b.proc.poll() is None
