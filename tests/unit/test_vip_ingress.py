"""vip/ingress.py: the keepalived.conf that `vstart --ingress` writes per NFS head (cephadm's
ingress defaults, issue 12 item 3), read back by mdsemu-keepalived's own parser."""

from __future__ import annotations

import pytest

from vip import conf, ingress


def _load(tmp_path, text: str) -> conf.Config:
    p = tmp_path / "k.conf"
    p.write_text(text)
    return conf.load(str(p))


@pytest.mark.parametrize("profile, advert, version", [("ceph", 1.0, 2), ("fast", 0.2, 3)])
def test_cephadm_defaults_first_head_100_others_90(tmp_path, profile, advert, version):
    ips = ingress.daemon_ips("127.5.6.10", 3)
    assert ips == ["127.5.6.11", "127.5.6.12", "127.5.6.13"]
    for i, prio in ((0, 100), (1, 90), (2, 90)):
        text = ingress.render_conf("abc"[i], i, ips, "127.5.6.10", 2049, 4000 + i, 11300,
                                   str(tmp_path / "s"), profile, ["chk"])
        cfg = _load(tmp_path, text)
        assert cfg.warnings == []
        (inst,) = cfg.instances
        assert (inst.cfg.priority, inst.cfg.adver_int, inst.cfg.vrid, inst.cfg.version) == \
            (prio, advert, 50, version)
        assert inst.cfg.src_ip == ips[i] and inst.peers == [ip for ip in ips if ip != ips[i]]
        assert inst.vips == ["127.5.6.10"]
        script = cfg.scripts["check_backend"]
        assert (script.weight, script.interval, script.rise, script.fall) == (-20, 2, 2, 2)
        assert script.script == f"chk 127.0.0.1 {4000 + i}"
        (vs,) = cfg.servers
        assert (vs.vip, vs.port, vs.real_ip, vs.real_port) == \
            ("127.5.6.10", 2049, "127.0.0.1", 4000 + i)


def test_parse_vip():
    assert ingress.parse_vip("127.0.0.10") == ("127.0.0.10", 2049)
    assert ingress.parse_vip("127.1.2.3:12049") == ("127.1.2.3", 12049)
    for bad in ("192.168.1.10", "x", "127.0.0.1:99999", "127.0.0.1:p"):
        with pytest.raises(ingress.IngressError):
            ingress.parse_vip(bad)
