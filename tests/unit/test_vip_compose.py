"""vip/compose.py: the keepalived.conf a compose `vip` container writes (issue 12 item 2)."""

from __future__ import annotations

from vip import compose, conf


def test_compose_conf_holds_the_networks_250_on_the_interface(tmp_path):
    assert compose.auto_vip("172.19.0.5") == "172.19.0.250"
    p = tmp_path / "k.conf"
    p.write_text(compose.render("vip-b", "172.19.0.6", ["172.19.0.5"], "172.19.0.250",
                                "eth0", 90, 0.2))
    c = conf.load(str(p))
    assert c.warnings == []
    (spec,) = c.instances
    assert (spec.cfg.priority, spec.cfg.adver_int, spec.cfg.version) == (90, 0.2, 3)
    assert spec.cfg.src_ip == "172.19.0.6" and spec.peers == ["172.19.0.5"]
    assert spec.devs == {"172.19.0.250": ("eth0", 32)}
