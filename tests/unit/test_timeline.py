"""The thrasher's timeline.html (client/timeline.py), sans-IO: data in, one self-contained
page out; a synthetic 30-minute run checks that it stays readable (size, axis, lanes)."""

from __future__ import annotations

import re

from client.timeline import (
    FAULT_COLOURS,
    HEALTH_COLOURS,
    MDS_COLOURS,
    Timeline,
    changed,
    clock,
    mds_states,
    process_lanes,
    render,
    tick_step,
    unanswered,
)
from tests.unit.timeline_data import synthetic


def test_the_page_is_self_contained_svg_with_a_lane_per_daemon_and_a_legend():
    tl = synthetic(minutes=2)
    page = render(tl)
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert "<script" not in page.lower() and "src=" not in page and "href=" not in page
    assert re.findall(r"https?://[^\"]+", page) == ["http://www.w3.org/2000/svg"]  # a name
    labels = re.findall(r'text-anchor="end" font-size="12">([^<]+)<', page)
    assert labels == ["health", "clients", "faults", "mds.a", "mds.b", "mds.c", "mon.a", "osd.0"]
    for state, colour in list(MDS_COLOURS.items()) + list(HEALTH_COLOURS.items()):
        assert f'fill="{colour}"' in page and f">{state}</span>" in page  # the legend
    # every fault has a marker whose tooltip says what, where, when and how long it took
    assert page.count("<title>fault ") == 2 * len(tl.faults)
    f = next(r for r in tl.faults if r["recovered_after"] is not None)
    assert (f"fault {f['index']}: {f['kind']} {f['target']} at {f['applied_at']:.1f}s, healed "
            f"{f['healed_at']:.1f}s, recovered after {f['recovered_after']:.1f}s") in page
    assert f'stroke="{FAULT_COLOURS[f["kind"]]}"' in page


def test_every_fault_kind_has_its_own_colour():
    from client.nemesis import COMPOSE_KINDS, KINDS, MAX_MDS

    assert set(FAULT_COLOURS) == set(KINDS) | set(COMPOSE_KINDS) | {MAX_MDS}
    assert len(set(FAULT_COLOURS.values())) == len(FAULT_COLOURS)


def test_a_30_minute_run_scrolls_at_2px_a_second_with_minute_ticks():
    tl = synthetic(minutes=30)
    assert len(tl.faults) > 300 and len(tl.gaps) > 50
    page = render(tl)
    assert len(page) < 1_500_000  # one file a browser opens at once
    assert 'width="3600" height="' in page  # 2 px a second: markers about 7 px apart
    ticks = re.findall(r'font-size="11">([0-9:]+)<', page)
    assert ticks == [f"{m}:00" for m in range(31)]
    assert "overflow-x: auto" in page  # the plot scrolls; the lane names stay


def test_a_short_run_fills_the_width_with_ticks_far_enough_apart():
    page = render(Timeline(end=40.0, mds={"a": [(0.0, "up:active")]}))
    assert 'width="1200"' in page
    assert re.findall(r'font-size="11">([0-9:]+)<', page)[:3] == ["0:00", "0:05", "0:10"]
    assert tick_step(40, 1200) == 5 and tick_step(1800, 3600) == 60
    assert tick_step(10 * 3600, 3600) == 900
    assert tick_step(100 * 3600, 1000) == 3600 and clock(3725) == "1:02:05"


def test_lanes_keep_only_changes_and_mds_states_read_the_map():
    lane: list = []
    for t, s in ((0, "up:standby"), (1, "up:standby"), (2, "up:replay"), (3, "up:replay")):
        changed(lane, t, s)
    assert lane == [(0, "up:standby"), (2, "up:replay")]
    dump = {"filesystems": [{"mdsmap": {"fs_name": "cephfs", "info": {
        "gid_1": {"name": "a", "state": "up:active"},
        "gid_2": {"name": "b", "state": "up:standby-replay"}}}},
        {"mdsmap": {"fs_name": "other", "info": {"gid_3": {"name": "x", "state": "up:active"}}}}],
        "standbys": [{"name": "c", "state": "up:standby"}]}
    assert mds_states(dump, "cephfs") == {"a": "up:active", "b": "up:standby-replay",
                                          "c": "up:standby"}
    assert mds_states(None, "cephfs") == {}


def test_client_gaps_are_stretches_without_any_answer():
    assert unanswered([0.5, 1.0, 1.2, 4.0, 4.1], 0.0, 6.0) == [(1.2, 4.0), (4.1, 6.0)]
    assert unanswered([], 0.0, 0.5) == []
    assert unanswered([0.5, 3.0], 0.0, 3.0, least=3) == []


def test_mon_and_osd_lanes_come_from_the_faults_applied_to_them():
    faults = [{"kind": "osd_pause", "target": "osd.0", "applied_at": 2.0, "healed_at": 3.0},
              {"kind": "mon_restart", "target": "mon.a", "applied_at": 5.0, "healed_at": None},
              {"kind": "kill", "target": "a", "applied_at": 6.0, "healed_at": 7.0}]
    assert process_lanes(faults, ["mon.a", "osd.0"], 9.0) == {
        "mon.a": [(0.0, "running"), (5.0, "down"), (9.0, "running")],
        "osd.0": [(0.0, "running"), (2.0, "paused"), (3.0, "running")]}
