"""vip/legacy.py: seed 000's keepalived-tracks-the-MDS setup (issue 12 item 4): the
keepalived.conf per MDS host and the notify script's decision."""

from __future__ import annotations

from vip import conf, legacy


def _dump(holder: str | None, fs: str = "cephfs") -> dict:
    info = {} if holder is None else {"gid_1": {"name": holder, "rank": 0}}
    info["gid_2"] = {"name": "z", "rank": -1}
    return {"filesystems": [{"mdsmap": {"fs_name": fs, "info": info}}], "standbys": []}


def test_notify_fails_the_other_holder_of_rank_0_only():
    assert legacy.notify_action(_dump("a"), "cephfs", "b") == "a"
    assert legacy.notify_action(_dump("b"), "cephfs", "b") is None  # native was first
    assert legacy.notify_action(_dump(None), "cephfs", "b") is None
    assert legacy.notify_action(_dump("a", fs="other"), "cephfs", "b") is None


def test_conf_tracks_the_local_mds_with_weight_0_and_nopreempt(tmp_path):
    ips = ["127.9.9.11", "127.9.9.12"]
    for i, prio in ((0, 100), (1, 90)):
        p = tmp_path / f"k{i}.conf"
        p.write_text(legacy.render_conf("ab"[i], i, ips, "127.9.9.10", 11400, "/tmp/s",
                                        f"/run/mds.{'ab'[i]}.pid", "notify-me x"))
        cfg = conf.load(str(p))
        assert cfg.warnings == []
        (inst,) = cfg.instances
        assert (inst.cfg.priority, inst.cfg.nopreempt, inst.cfg.vrid) == (prio, True, 60)
        script = cfg.scripts["check_mds"]
        assert (script.weight, script.interval, script.fall, script.rise) == (0, 1, 2, 1)
        assert f"/run/mds.{'ab'[i]}.pid" in script.script
        assert inst.notify == {"master": "notify-me x"}
