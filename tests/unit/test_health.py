"""Health checks computed from FSMaps built with the map's own mutators (ref §12)."""

from __future__ import annotations

from common import states
from common.fsmap import FSMap, MDSInfo, MDSMap
from common.health import (
    HealthCheck,
    fs_health_checks,
    health_json,
    overall_status,
    render_health,
)

WALL = 1728368691.587651


def new_map(*names: str) -> FSMap:
    m = FSMap(epoch=1, btime=WALL)
    for name in names:
        m.create_filesystem(name, 1, [2], WALL)
    return m


def add_standby(m: FSMap, gid: int, name: str) -> None:
    m.epoch += 1
    m.insert(MDSInfo(gid=gid, name=name, addr=f"127.0.0.1:{6800 + gid % 100}/{gid}"))


def make_active(m: FSMap, fs: MDSMap, gid: int, rank: int = 0) -> None:
    m.epoch += 1
    m.promote(gid, fs, rank, WALL)
    fs.mds_info[gid].state = states.ACTIVE


def healthy_map() -> tuple[FSMap, MDSMap]:
    m = new_map("cephfs")
    fs = m.fs_by_name("cephfs")
    add_standby(m, 4123, "a")
    make_active(m, fs, 4123)
    return m, fs


def test_fresh_fs_without_daemons_renders_like_ceph() -> None:
    checks = fs_health_checks(new_map("cephfs"))
    assert list(checks) == ["MDS_ALL_DOWN", "MDS_UP_LESS_THAN_MAX"]
    assert render_health(checks, detail=True) == (
        "HEALTH_ERR 1 filesystem is offline; 1 filesystem is online with fewer MDS than max_mds\n"
        "[ERR] MDS_ALL_DOWN: 1 filesystem is offline\n"
        "    fs cephfs is offline because no MDS is active for it.\n"
        "[WRN] MDS_UP_LESS_THAN_MAX: 1 filesystem is online with fewer MDS than max_mds\n"
        "    fs cephfs has 0 MDS online, but wants 1"
    )
    assert render_health(checks, detail=False) == (
        "HEALTH_ERR 1 filesystem is offline; 1 filesystem is online with fewer MDS than max_mds"
    )


def test_healthy_map_is_ok() -> None:
    m, _ = healthy_map()
    checks = fs_health_checks(m)
    assert checks == {}
    assert overall_status(checks) == "HEALTH_OK"
    assert render_health(checks, detail=True) == "HEALTH_OK"
    assert health_json(checks) == {"status": "HEALTH_OK", "checks": {}, "mutes": []}


def test_two_filesystems_merge_with_plural_summaries() -> None:
    checks = fs_health_checks(new_map("a", "b"))
    down = checks["MDS_ALL_DOWN"]
    assert down == HealthCheck(
        "HEALTH_ERR",
        "2 filesystems are offline",
        2,
        (
            "fs a is offline because no MDS is active for it.",
            "fs b is offline because no MDS is active for it.",
        ),
    )
    assert checks["MDS_UP_LESS_THAN_MAX"].summary == (
        "2 filesystems are online with fewer MDS than max_mds"
    )


def test_fs_set_down_raises_neither_up_less_than_max_nor_all_down() -> None:
    m = new_map("cephfs")
    m.fs_by_name("cephfs").max_mds = 0
    assert fs_health_checks(m) == {}


def test_degraded_while_replaying_and_failed_with_no_replacement() -> None:
    m, fs = healthy_map()
    m.epoch += 1
    m.erase(4123, blocklist_epoch=7)
    checks = fs_health_checks(m)
    assert checks["FS_DEGRADED"].detail == ("fs cephfs is degraded",)
    assert checks["FS_DEGRADED"].summary == "1 filesystem is degraded"
    assert checks["FS_WITH_FAILED_MDS"].summary == "1 filesystem has a failed mds daemon"
    assert checks["FS_WITH_FAILED_MDS"].detail == ("fs cephfs has 1 failed mds",)
    assert "MDS_UP_LESS_THAN_MAX" not in checks  # the failed rank is still in
    assert checks["MDS_ALL_DOWN"].severity == "HEALTH_ERR"


def test_checks_are_ordered_by_code_not_severity() -> None:
    """Ceph keeps health checks in a std::map keyed by code: `health`, `health detail` and their
    JSON list a WRN check before an ERR one when its code sorts first."""
    m, fs = healthy_map()
    fs.standby_count_wanted = 1
    m.epoch += 1
    m.erase(4123, blocklist_epoch=7)
    checks = fs_health_checks(m)
    order = ["FS_DEGRADED", "FS_WITH_FAILED_MDS", "MDS_ALL_DOWN", "MDS_INSUFFICIENT_STANDBY"]
    assert list(checks) == order
    assert list(health_json(checks)["checks"]) == order
    assert list(health_json(checks, detail=False)["checks"]) == order
    assert render_health(checks, detail=False) == (
        "HEALTH_ERR 1 filesystem is degraded; 1 filesystem has a failed mds daemon; "
        "1 filesystem is offline; insufficient standby MDS daemons available"
    )
    assert render_health(checks, detail=True).splitlines()[1:] == [
        "[WRN] FS_DEGRADED: 1 filesystem is degraded",
        "    fs cephfs is degraded",
        "[WRN] FS_WITH_FAILED_MDS: 1 filesystem has a failed mds daemon",
        "    fs cephfs has 1 failed mds",
        "[ERR] MDS_ALL_DOWN: 1 filesystem is offline",
        "    fs cephfs is offline because no MDS is active for it.",
        "[WRN] MDS_INSUFFICIENT_STANDBY: insufficient standby MDS daemons available",
        "    have 0; want 1 more",
    ]


def test_failed_rank_with_a_standby_is_not_stuck() -> None:
    m, fs = healthy_map()
    add_standby(m, 4124, "b")
    m.erase(4123, blocklist_epoch=7)
    checks = fs_health_checks(m)
    assert "FS_WITH_FAILED_MDS" not in checks
    m.promote(4124, fs, 0, WALL)  # now in up:replay: degraded but no longer all down
    checks = fs_health_checks(m)
    assert list(checks) == ["FS_DEGRADED"]


def test_two_stuck_ranks_plural_detail() -> None:
    m = new_map("cephfs")
    fs = m.fs_by_name("cephfs")
    fs.max_mds = 2
    for gid, name, rank in ((10, "a", 0), (11, "b", 1)):
        add_standby(m, gid, name)
        make_active(m, fs, gid, rank)
    m.erase(10, 5)
    m.erase(11, 5)
    assert fs_health_checks(m)["FS_WITH_FAILED_MDS"].detail == ("fs cephfs has 2 failed mdss",)


def test_damaged_rank() -> None:
    m, _ = healthy_map()
    m.damaged(4123, 9)
    check = fs_health_checks(m)["MDS_DAMAGE"]
    assert check.severity == "HEALTH_ERR"
    assert check.summary == "1 mds daemon damaged"
    assert check.detail == ("fs cephfs mds.0 is damaged",)


def test_insufficient_standby_only_when_wanted() -> None:
    m, fs = healthy_map()
    assert fs.standby_count_wanted == -1
    assert "MDS_INSUFFICIENT_STANDBY" not in fs_health_checks(m)
    fs.standby_count_wanted = 0
    assert "MDS_INSUFFICIENT_STANDBY" not in fs_health_checks(m)
    fs.standby_count_wanted = 2
    check = fs_health_checks(m)["MDS_INSUFFICIENT_STANDBY"]
    assert check == HealthCheck(
        "HEALTH_WARN", "insufficient standby MDS daemons available", 1, ("have 0; want 2 more",)
    )
    add_standby(m, 4124, "b")
    assert fs_health_checks(m)["MDS_INSUFFICIENT_STANDBY"].detail == ("have 1; want 1 more",)
    fs.set_flag(1 << 5)
    m.assign_standby_replay(4124, fs, 0)  # a follower counts for its own fs
    assert fs_health_checks(m)["MDS_INSUFFICIENT_STANDBY"].detail == ("have 0; want 1 more",)
    add_standby(m, 4125, "c")
    assert "MDS_INSUFFICIENT_STANDBY" not in fs_health_checks(m)


def test_daemon_metric_detail_format() -> None:
    m, _ = healthy_map()
    add_standby(m, 4124, "b")
    metrics = {
        4123: [
            {
                "type": "MDS_TRIM",
                "severity": "HEALTH_WARN",
                "message": "Behind on trimming (300/128)",
                "metadata": {"num_segments": 300, "max_segments": 128},
            }
        ],
        4124: [{"type": "MDS_TRIM", "severity": "HEALTH_WARN", "message": "Behind on trimming"}],
        999: [{"type": "MDS_TRIM", "severity": "HEALTH_WARN", "message": "gone"}],
    }
    check = fs_health_checks(m, metrics)["MDS_TRIM"]
    assert check.summary == "2 MDSs behind on trimming"
    assert check.detail == (
        "mds.a(mds.0): Behind on trimming (300/128) max_segments: 128, num_segments: 300",
        "mds.b(mds.-1): Behind on trimming",
    )


def test_daemon_damage_keeps_its_summary_and_merges_map_details() -> None:
    m = new_map("cephfs")
    fs = m.fs_by_name("cephfs")
    fs.max_mds = 2
    add_standby(m, 10, "a")
    make_active(m, fs, 10, 0)
    add_standby(m, 11, "b")
    make_active(m, fs, 11, 1)
    m.damaged(11, 3)
    metric = {"type": "MDS_DAMAGE", "severity": "HEALTH_ERR", "message": "Metadata damage detected"}
    check = fs_health_checks(m, {10: [metric]})["MDS_DAMAGE"]
    assert check.summary == "2 MDSs report damaged metadata"
    assert check.detail == (
        "mds.a(mds.0): Metadata damage detected",
        "fs cephfs mds.1 is damaged",
    )


def test_health_json_layout() -> None:
    checks = fs_health_checks(new_map("cephfs"))
    full = health_json(checks)
    assert list(full) == ["status", "checks", "mutes"]
    assert full["status"] == "HEALTH_ERR"
    assert full["checks"]["MDS_ALL_DOWN"] == {
        "severity": "HEALTH_ERR",
        "summary": {"message": "1 filesystem is offline", "count": 1},
        "detail": [{"message": "fs cephfs is offline because no MDS is active for it."}],
        "muted": False,
    }
    brief = health_json(checks, detail=False)
    assert "detail" not in brief["checks"]["MDS_UP_LESS_THAN_MAX"]
    assert brief["checks"]["MDS_UP_LESS_THAN_MAX"]["summary"]["count"] == 1


def test_warn_only_status() -> None:
    m, fs = healthy_map()
    fs.standby_count_wanted = 1
    checks = fs_health_checks(m)
    assert overall_status(checks) == "HEALTH_WARN"
    assert render_health(checks, detail=True).splitlines()[1] == (
        "[WRN] MDS_INSUFFICIENT_STANDBY: insufficient standby MDS daemons available"
    )


def test_H5_stuck_counts_as_the_replacement_search_does_with_force_standby_active_off():
    """A legacy standby-replay daemon aimed at another rank takes no other rank when
    mon_force_standby_active is false: the failed rank is then stuck."""
    m = new_map("cephfs")
    fs = m.fs_by_name("cephfs")
    fs.max_mds = 2
    for gid, name, rank in ((10, "a", 0), (11, "b", 1)):
        add_standby(m, gid, name)
        make_active(m, fs, gid, rank)
    m.epoch += 1
    m.insert(MDSInfo(gid=12, name="c", addr="127.0.0.1:6812/12", standby_for_rank=1,
                     standby_replay=True))
    m.erase(10, 5)
    assert "FS_WITH_FAILED_MDS" not in fs_health_checks(m)
    assert "FS_WITH_FAILED_MDS" in fs_health_checks(m, force_standby_active=False)
