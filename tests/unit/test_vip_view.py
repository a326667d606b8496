"""vip/view.py: the live view's line per VIP (issue 12 item 5), from keepalived status dicts."""

from __future__ import annotations

from vip import view


def _status(name: str, ip: str, state: str, prio: int, held: bool,
            vips=("127.0.0.10",), port: int = 2049) -> dict:
    return {"router_id": name, "pid": 1, "vrrp_port": 11200, "scripts": [],
            "vrrp": [{"data": {"iname": "VI_0", "vips": list(vips), "vipset": held,
                               "effective_priority": prio},
                      "stats": {}, "mdsemu": {"state": state, "unicast_src_ip": ip}}],
            "virtual_servers": [{"vip": v, "port": port, "listening": held} for v in vips]}


def test_rows_name_the_holder_and_every_daemon():
    st = {"a": _status("a", "127.0.0.11", "MASTER", 100, True),
          "b": _status("b", "127.0.0.12", "BACKUP", 90, False)}
    assert view.rows(st) == ["127.0.0.10:2049  held by a (127.0.0.11, priority 100)  "
                             "[a MASTER 100, b BACKUP 90]"]


def test_rows_nobody_and_a_daemon_down():
    st = {"a": None, "b": _status("b", "127.0.0.12", "BACKUP", 90, False)}
    assert view.rows(st) == ["127.0.0.10:2049  held by nobody  [b BACKUP 90, a down]"]
    assert view.rows({"a": None}) == ["no VIP known [a down]"]
    assert view.rows({}) == []


def test_two_vips_each_with_its_master():
    st = {"a": _status("a", "127.0.0.11", "MASTER", 100, True, vips=("127.0.0.10",)),
          "b": _status("b", "127.0.0.12", "MASTER", 100, True, vips=("127.0.0.20",))}
    assert view.rows(st) == [
        "127.0.0.10:2049  held by a (127.0.0.11, priority 100)  [a MASTER 100]",
        "127.0.0.20:2049  held by b (127.0.0.12, priority 100)  [b MASTER 100]"]
