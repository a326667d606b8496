"""keepalived.conf parsing (vip.conf), vrrp_script counters (vip.track) and advert bytes
(vip.packet): checked against keepalived.conf(5), vrrp_scheduler.c and RFC 5798 §5.1."""

from __future__ import annotations

import pytest

from vip import conf, packet
from vip.track import ScriptConfig, ScriptTracker
from vip.vrrp import BACKUP, MASTER, Advert

SAMPLE = """\
! Configuration File for keepalived
global_defs {
    router_id node_a
    vrrp_version 3
    mdsemu_vrrp_port 15798
    mdsemu_control_socket /tmp/ka-a.sock
    enable_script_security
}

vrrp_script check_backend {
    script "/usr/bin/nc -z 127.0.0.1 2049"
    weight -20
    interval 2
    rise 2
    fall 2
}

vrrp_instance VI_1 {
    state MASTER
    interface lo
    priority 100
    advert_int 0.2
    virtual_router_id 51
    unicast_src_ip 127.0.0.2
    unicast_peer {
        127.0.0.3
    }
    virtual_ipaddress {
        127.0.0.10/32 dev lo
    }
    track_script {
        check_backend
    }
    notify_master "/bin/echo master"
    notify /usr/local/bin/notify.sh
}

vrrp_instance VI_2
{
    priority 90
    virtual_router_id 52
    nopreempt
    preempt_delay 1.5
    unicast_src_ip 127.0.0.2
    unicast_peer { 127.0.0.3 }
    virtual_ipaddress { 127.0.0.11 }
    track_script {
        check_backend weight 0
    }
}

virtual_server 127.0.0.10 2049 {
    protocol TCP
    real_server 127.0.0.1 12049
}
"""


def test_sample_configuration_reads_as_keepalived_would():
    c = conf.parse(SAMPLE, "ka.conf")
    assert (c.router_id, c.vrrp_port, c.control_socket) == ("node_a", 15798, "/tmp/ka-a.sock")
    s = c.scripts["check_backend"]
    assert (s.script, s.weight, s.interval, s.rise, s.fall) == (
        "/usr/bin/nc -z 127.0.0.1 2049", -20, 2.0, 2, 2)
    vi1, vi2 = c.instances
    assert vi1.cfg.initial_state == MASTER and vi1.cfg.adver_int == 0.2
    assert vi1.cfg.version == 3 and vi1.cfg.track == {"check_backend": -20}
    assert vi1.peers == ["127.0.0.3"] and vi1.vips == ["127.0.0.10"]
    assert vi1.notify == {"master": "/bin/echo master", "": "/usr/local/bin/notify.sh"}
    assert vi2.cfg.initial_state == BACKUP and vi2.cfg.priority == 90
    assert vi2.cfg.nopreempt and vi2.cfg.preempt_delay == 1.5
    assert vi2.cfg.track == {"check_backend": 0}  # the instance's weight overrides
    assert c.servers == [conf.VirtualServer("127.0.0.10", 2049, "127.0.0.1", 12049)]
    assert "ka.conf:7: enable_script_security is ignored by mdsemu-keepalived" in c.warnings
    assert "ka.conf:20: interface is ignored by mdsemu-keepalived" in c.warnings
    assert "ka.conf:29: 'dev lo' after 127.0.0.10 is ignored" in c.warnings


def test_defaults_are_keepalived_s():
    c = conf.parse("vrrp_instance VI_1 {\n virtual_router_id 1\n unicast_src_ip 127.0.0.2\n"
                   " unicast_peer {\n 127.0.0.3\n }\n}\n")
    i = c.instances[0].cfg
    assert (i.priority, i.adver_int, i.version, i.initial_state, i.nopreempt) == (
        100, 1.0, 2, BACKUP, False)
    assert c.vrrp_port == conf.DEFAULT_VRRP_PORT


@pytest.mark.parametrize(("text", "message"), [
    ("vrrp_instance VI_1 {\n  priority 300\n}\n", "x.conf:2: priority: 300 is out of range"),
    ("vrrp_instance VI_1 {\n  advert_int fast\n}\n", "x.conf:2: advert_int: 'fast' is not"),
    ("vrrp_instance VI_1 {\n  state LEADER\n}\n", "x.conf:2: state: 'LEADER' must be"),
    ("vrrp_sync_group G1 {\n}\n", "x.conf:1: vrrp_sync_group: not supported"),
    ("vrrp_instance VI_1 {\n  track_interface {\n eth0\n }\n}\n",
     "x.conf:2: track_interface: not supported"),
    ("vrrp_instance VI_1 {\n unicast_src_ip 127.0.0.2\n unicast_peer { 127.0.0.3 }\n}\n",
     "x.conf:1: vrrp_instance: VI_1: virtual_router_id is required"),
    ("vrrp_instance VI_1 {\n virtual_router_id 1\n unicast_src_ip 127.0.0.2\n"
     " unicast_peer { 127.0.0.3 }\n virtual_ipaddress {\n  10.0.0.5/24\n }\n}\n",
     "x.conf:6: virtual_ipaddress: 10.0.0.5/24: a VIP outside 127.0.0.0/8 is added to an "
     "interface: give 'dev IFACE' or the instance's 'interface'"),
    ("vrrp_instance VI_1 {\n virtual_router_id 1\n track_script {\n  nope\n }\n}\n",
     "x.conf:4: nope: script 'nope' is not defined"),
    ("vrrp_instance VI_1 {\n", "x.conf: missing '}' at end of file"),
    ("}\n", "x.conf:1: unexpected '}'"),
])
def test_errors_name_file_line_and_keyword(text, message):
    with pytest.raises(conf.ConfigError) as e:
        conf.parse(text, "x.conf")
    assert str(e.value).startswith(message)


def test_unknown_keywords_are_warnings_as_in_keepalived():
    c = conf.parse("global_defs {\n  frobnicate 3\n}\n", "x.conf")
    assert c.warnings == ["x.conf:2: Unknown keyword 'frobnicate'"]


def test_vrrpv2_rounds_a_fractional_advert_int():
    c = conf.parse("vrrp_instance VI_1 {\n virtual_router_id 1\n advert_int 0.2\n"
                   " unicast_src_ip 127.0.0.2\n unicast_peer { 127.0.0.3 }\n}\n", "x.conf")
    assert c.instances[0].cfg.adver_int == 1.0
    assert any("VRRPv2 advert_int 0.2" in w and "rounding to 1" in w for w in c.warnings)


def test_virtual_server_must_be_on_a_vip():
    text = ("vrrp_instance VI_1 {\n virtual_router_id 1\n unicast_src_ip 127.0.0.2\n"
            " unicast_peer { 127.0.0.3 }\n virtual_ipaddress { 127.0.0.10 }\n}\n"
            "virtual_server 127.0.0.11 80 {\n real_server 127.0.0.1 8080\n}\n")
    with pytest.raises(conf.ConfigError, match="127.0.0.11 is not a virtual_ipaddress"):
        conf.parse(text, "x.conf")


# -- vrrp_script counters (vrrp_scheduler.c) ----------------------------------------------------

def run(tracker: ScriptTracker, rcs: list[int | None]) -> list[bool | None]:
    return [tracker.ok for rc in rcs if tracker.record(rc) or True]


def test_one_success_is_enough_at_start_then_fall_failures_fail_it():
    t = ScriptTracker(ScriptConfig("chk", "true", rise=2, fall=2))
    assert t.ok is None
    assert run(t, [0, 1, 1, 0, 1, 0, 0]) == [True, True, False, False, False, False, True]


def test_a_failure_before_the_first_success_fails_at_once():
    t = ScriptTracker(ScriptConfig("chk", "false", rise=3, fall=3))
    changed, logs = t.record(1)
    assert changed is False and t.ok is False
    assert logs == ["Script `chk` now returning 1",
                    "VRRP_Script(chk) failed (exited with status 1)"]
    assert run(t, [0, 0, 1, 0, 0, 0]) == [False, False, False, False, False, True]


def test_timeout_and_success_log_lines():
    t = ScriptTracker(ScriptConfig("chk", "sleep 9"))
    assert t.record(None) == (False, ["VRRP_Script(chk) timed_out"])
    assert t.record(0) == (True, ["Script `chk` now returning 0", "VRRP_Script(chk) succeeded"])
    assert t.record(0) == (None, [])


def test_init_fail_starts_failed():
    t = ScriptTracker(ScriptConfig("chk", "true", rise=2, init_fail=True))
    assert t.ok is False
    assert run(t, [0, 0]) == [False, True]


# -- advert bytes -------------------------------------------------------------------------------

def test_advert_round_trip_v3_centiseconds():
    data = packet.encode(3, 51, 150, 0.2, ["127.0.0.10"])
    assert len(data) == 12 and data[0] == 0x31
    assert packet.decode(data, "127.0.0.2") == (3, Advert("127.0.0.2", 51, 150, 0.2))


@pytest.mark.parametrize(("data", "reason"), [
    (b"\x31\x01", "too short"),
    (bytes([0x41, 51, 100, 0, 0, 100, 0, 0]), "invalid version 4"),
    (bytes([0x32, 51, 100, 0, 0, 100, 0, 0]), "invalid type 2"),
    (packet.encode(3, 51, 150, 1, [])[:6] + b"\0\0", "invalid checksum"),
])
def test_bad_packets_are_refused_with_a_reason(data, reason):
    with pytest.raises(ValueError, match=reason):
        packet.decode(data, "127.0.0.2")


# -- the command line ---------------------------------------------------------------------------

def test_config_test_prints_warnings_and_bad_config_exits_einval(tmp_path, capsys):
    from vip.__main__ import main

    good = tmp_path / "good.conf"
    good.write_text("vrrp_instance VI_1 {\n interface lo\n virtual_router_id 1\n"
                    " unicast_src_ip 127.0.0.2\n unicast_peer { 127.0.0.3 }\n frob 1\n}\n")
    main(["-f", str(good), "-t"])
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{good}:2: interface is ignored by mdsemu-keepalived",
                   f"{good}:6: Unknown keyword 'frob'"]
    bad = tmp_path / "bad.conf"
    bad.write_text("vrrp_sync_group G {\n}\n")
    with pytest.raises(SystemExit) as e:
        main(["-f", str(bad), "-t"])
    assert e.value.code == 22
    assert capsys.readouterr().err.strip() == (
        f"mdsemu-keepalived: {bad}:1: vrrp_sync_group: not supported by mdsemu-keepalived")
    with pytest.raises(SystemExit) as e:
        main(["-f", str(tmp_path / "missing.conf"), "-t"])
    assert e.value.code == 2  # ENOENT
    assert "No such file or directory" in capsys.readouterr().err


def test_real_vip_goes_to_its_dev_or_the_instance_interface(tmp_path):
    """Issue 12 item 2 (containers): `A.B.C.D[/N] dev IFACE`, /32 by default as keepalived."""
    p = tmp_path / "real.conf"
    p.write_text("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n"
                 " unicast_src_ip 172.20.0.2\n unicast_peer { 172.20.0.3 }\n"
                 " virtual_ipaddress {\n  172.20.0.100/24 dev eth1\n  172.20.0.101\n }\n}\n")
    c = conf.load(str(p))
    (spec,) = c.instances
    assert spec.vips == ["172.20.0.100", "172.20.0.101"]
    assert spec.devs == {"172.20.0.100": ("eth1", 24), "172.20.0.101": ("eth0", 32)}
    assert c.warnings == []
