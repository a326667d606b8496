"""The health metrics an MDS puts in its beacon (Ceph's Beacon::notify_health; ref H8)."""

from __future__ import annotations

from mds.ophealth import InFlight, metrics, osd_laggy


def _ops(*starts: float) -> InFlight:
    ops = InFlight()
    for t in starts:
        ops.start(t)
    return ops


def test_H8_nothing_to_report():
    assert metrics(100.0, requests=_ops(99.0), ios=_ops(99.5), op_complaint=30,
                   io_complaint=30) == []


def test_H8_MDS_SLOW_REQUEST_counts_requests_blocked_past_the_complaint_time():
    [m] = metrics(100.0, requests=_ops(10.0, 60.0, 69.0, 95.0), ios=InFlight(),
                  op_complaint=30, io_complaint=30)
    assert m == {"type": "MDS_SLOW_REQUEST", "severity": "HEALTH_WARN",
                 "message": "3 slow requests are blocked > 30 secs"}


def test_H8_MDS_SLOW_METADATA_IO_names_the_oldest():
    ios = _ops(10.0, 50.5, 99.0)
    [m] = metrics(100.0, requests=InFlight(), ios=ios, op_complaint=30, io_complaint=30)
    assert m["type"] == "MDS_SLOW_METADATA_IO" and m["severity"] == "HEALTH_WARN"
    assert m["message"] == "2 slow metadata IOs are blocked > 30 secs, oldest blocked for " \
                           "90 secs"
    assert osd_laggy(ios, 100.0, 30) and not osd_laggy(ios, 100.0, 95)


def test_H8_finished_ops_are_forgotten():
    ios = InFlight()
    op = ios.start(0.0)
    assert ios.blocked(50.0, 30) == (1, 50.0)
    ios.done(op)
    assert ios.blocked(50.0, 30) == (0, 0.0) and len(ios) == 0


def test_H8_damage_first_as_error_and_laggy_clients_last():
    out = metrics(100.0, requests=InFlight(), ios=_ops(0.0), op_complaint=30, io_complaint=2.5,
                  damaged=True, laggy_clients=[4127, 4123],
                  trim=[{"type": "MDS_TRIM", "severity": "HEALTH_WARN", "message": "x"}])
    assert [m["type"] for m in out] == ["MDS_DAMAGE", "MDS_TRIM", "MDS_SLOW_METADATA_IO",
                                        "MDS_CLIENTS_LAGGY", "MDS_CLIENTS_LAGGY"]
    assert out[0] == {"type": "MDS_DAMAGE", "severity": "HEALTH_ERR",
                      "message": "Metadata damage detected"}
    assert out[2]["message"].startswith("1 slow metadata IOs are blocked > 2.5 secs")
    assert out[3]["message"] == "Client 4123 is laggy; not evicted because some OSD(s) " \
                                "is/are laggy"
