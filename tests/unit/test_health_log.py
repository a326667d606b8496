"""The cluster log of health changes, with plain values (Ceph's Monitor::log_health)."""

from __future__ import annotations

from common.health import HEALTH_ERR, HEALTH_WARN, HealthCheck
from mon.health_monitor import HealthLog

DEGRADED = HealthCheck(HEALTH_WARN, "1 filesystem is degraded", 1, ("fs a is degraded",))
DEGRADED_2 = HealthCheck(HEALTH_WARN, "2 filesystems are degraded", 2,
                         ("fs a is degraded", "fs b is degraded"))
DOWN = HealthCheck(HEALTH_ERR, "1 filesystem is offline", 1, ("fs a is offline ...",))
TRIM_WARN = HealthCheck(HEALTH_WARN, "1 MDSs behind on trimming", 1, ("mds.a(mds.0): x",))
TRIM_ERR = HealthCheck(HEALTH_ERR, "1 MDSs behind on trimming", 1, ("mds.a(mds.0): x",))


def test_failed_at_the_severity_in_code_order_then_cleared_and_healthy() -> None:
    h = HealthLog()
    assert h.update({"MDS_ALL_DOWN": DOWN, "FS_DEGRADED": DEGRADED}, 0.0, 5.0) == [
        ("WRN", "Health check failed: 1 filesystem is degraded (FS_DEGRADED)"),
        ("ERR", "Health check failed: 1 filesystem is offline (MDS_ALL_DOWN)"),
    ]
    assert h.update({"FS_DEGRADED": DEGRADED}, 1.0, 5.0) == [
        ("INF", "Health check cleared: MDS_ALL_DOWN (was: 1 filesystem is offline)")]
    assert h.update({"FS_DEGRADED": DEGRADED}, 2.0, 5.0) == []  # nothing changed
    assert h.update({}, 3.0, 5.0) == [
        ("INF", "Health check cleared: FS_DEGRADED (was: 1 filesystem is degraded)"),
        ("INF", "Cluster is now healthy"),
    ]
    assert h.update({}, 4.0, 5.0) == []


def test_failures_come_before_clears() -> None:
    h = HealthLog({"MDS_ALL_DOWN": DOWN})
    assert h.update({"FS_DEGRADED": DEGRADED}, 0.0, 5.0) == [
        ("WRN", "Health check failed: 1 filesystem is degraded (FS_DEGRADED)"),
        ("INF", "Health check cleared: MDS_ALL_DOWN (was: 1 filesystem is offline)"),
    ]


def test_update_of_the_summary_is_rate_limited_at_the_same_severity() -> None:
    h = HealthLog()
    h.update({"FS_DEGRADED": DEGRADED}, 10.0, 5.0)
    assert h.update({"FS_DEGRADED": DEGRADED_2}, 12.0, 5.0) == []  # logged 2 s ago
    assert h.update({"FS_DEGRADED": DEGRADED}, 16.0, 5.0) == [
        ("WRN", "Health check update: 1 filesystem is degraded (FS_DEGRADED)")]
    assert h.update({}, 17.0, 5.0)[0] == (
        "INF", "Health check cleared: FS_DEGRADED (was: 1 filesystem is degraded)")


def test_a_severity_change_is_logged_at_once_at_the_new_level() -> None:
    h = HealthLog()
    h.update({"MDS_TRIM": TRIM_WARN}, 0.0, 5.0)
    assert h.update({"MDS_TRIM": TRIM_ERR}, 1.0, 5.0) == [
        ("ERR", "Health check update: 1 MDSs behind on trimming (MDS_TRIM)")]
    assert h.update({"MDS_TRIM": TRIM_WARN}, 2.0, 5.0) == [
        ("WRN", "Health check update: 1 MDSs behind on trimming (MDS_TRIM)")]


def test_detail_changes_are_not_logged_and_known_checks_are_not_failed_again() -> None:
    h = HealthLog({"FS_DEGRADED": DEGRADED})  # a restarted mon starts from its stored maps
    other = HealthCheck(HEALTH_WARN, "1 filesystem is degraded", 1, ("fs b is degraded",))
    assert h.update({"FS_DEGRADED": other}, 0.0, 5.0) == []
