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


def test_compose_nfs_ingress_checks_and_forwards_to_the_local_head(tmp_path, monkeypatch):
    # cephadm's ingress for NFS: MASTER 100 / BACKUP 90, advert_int 1, check_backend
    # weight -20 interval 2 rise 2 fall 2 on the local head, VIP:2049 to the head
    monkeypatch.delenv("MDSEMU_NFS_VIP", raising=False)
    assert compose.nfs_vip("172.19.0.5") == "172.19.0.240"
    monkeypatch.setenv("MDSEMU_NFS_VIP", "none")
    assert compose.nfs_vip("172.19.0.5") is None
    monkeypatch.setenv("MDSEMU_NFS_VIP", "10.9.8.7/24")
    assert compose.nfs_vip("172.19.0.5") == "10.9.8.7"
    p = tmp_path / "k.conf"
    p.write_text(compose.render("nfs-a", "172.19.0.5", ["172.19.0.6"], "172.19.0.240",
                                "eth0", 100, 1, state="MASTER", head=["chk"],
                                head_port=2049))
    c = conf.load(str(p))
    assert c.warnings == []
    (spec,) = c.instances
    assert (spec.cfg.priority, spec.cfg.adver_int, spec.cfg.version) == (100, 1, 2)
    assert spec.cfg.track == {"check_backend": -20}
    assert spec.cfg.initial_state == "MASTER"
    script = c.scripts["check_backend"]
    assert (script.weight, script.interval, script.rise, script.fall) == (-20, 2, 2, 2)
    assert script.script == "chk 172.19.0.5 2049"
    (server,) = c.servers
    assert (server.vip, server.port, server.real_ip, server.real_port) == \
        ("172.19.0.240", 2049, "172.19.0.5", 2049)
