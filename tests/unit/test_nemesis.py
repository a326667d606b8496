"""The thrasher's schedule (client/nemesis.py), sans-IO: same seed, same faults; options as
in Ceph's mds_thrash (fractional delays, weights, max_mds probability); roles resolved from a
map snapshot."""

from __future__ import annotations

import errno

import pytest

from client.nemesis import (
    KINDS,
    Fault,
    Options,
    ScheduleError,
    next_max_mds,
    parse_weights,
    resolve,
    schedule,
)


def test_the_same_seed_gives_the_same_schedule():
    o = Options(seed=7, faults=200, delay=2.5, grace=1.0, ranks=2)
    assert schedule(o) == schedule(Options(seed=7, faults=200, delay=2.5, grace=1.0, ranks=2))
    assert [f.line() for f in schedule(o)] == [f.line() for f in schedule(o)]
    assert schedule(o) != schedule(Options(seed=8, faults=200, delay=2.5, grace=1.0, ranks=2))


def test_faults_follow_each_other_healed_with_fractional_delays():
    faults = schedule(Options(seed=1, faults=300, delay=0.5, grace=1.0, max_revive_delay=2.0))
    assert len(faults) == 300 and [f.index for f in faults] == list(range(300))
    assert {f.kind for f in faults} >= set(KINDS)  # every kind with a default weight
    for a, b in zip(faults, faults[1:], strict=False):
        assert a.at <= a.heal_at <= b.at <= a.heal_at + 0.5 + 1e-3
    assert any(f.at % 1 for f in faults)  # not whole seconds (mds_thrash's randrange)
    stops = {k: [f.heal_at - f.at for f in faults if f.kind == k]
             for k in ("stop_short", "stop_long")}
    assert max(stops["stop_short"]) < 1.0 < min(stops["stop_long"])  # below / above grace
    assert all(f.heal_at == f.at for f in faults if f.kind in ("mds_fail", "max_mds"))
    assert all(f.heal_at - f.at <= 2.0 + 1e-3 for f in faults if f.kind == "kill")


def test_duration_bounds_the_schedule():
    faults = schedule(Options(seed=3, duration=60.0, delay=2.0, grace=1.0, max_revive_delay=1))
    assert faults and faults[-1].at < 60.0
    assert len(faults) > 10


def test_weights_as_in_mds_thrash_unlisted_kinds_get_zero():
    w = parse_weights("kill=1, stop-long=2")
    assert w["kill"] == 1 and w["stop_long"] == 2 and w["mds_fail"] == 0
    faults = schedule(Options(seed=5, faults=100, weights=w, thrash_max_mds=0.0, grace=1))
    assert {f.kind for f in faults} == {"kill", "stop_long"}
    for bad, message in (("kill", "expected KIND=WEIGHT"), ("nuke=1", "expected KIND=WEIGHT"),
                         ("kill=x", "not a number"), ("kill=-1", "must be >= 0"),
                         ("kill=0", "every weight is 0")):
        with pytest.raises(ScheduleError, match=message):
            parse_weights(bad)


def test_thrash_max_mds_is_the_probability_of_a_max_mds_change():
    faults = schedule(Options(seed=2, faults=1000, thrash_max_mds=0.2))
    share = sum(f.kind == "max_mds" for f in faults) / 1000
    assert 0.15 < share < 0.25
    assert not any(f.kind == "max_mds"
                   for f in schedule(Options(seed=2, faults=300, thrash_max_mds=0.0)))
    f = Fault(0, 1.0, "max_mds", "max_mds", 1.0)
    assert {next_max_mds(f, 1, 1, s) for s in range(20)} == {2}  # up from 1
    assert {next_max_mds(f, 2, 3, s) for s in range(50)} == {1, 3}  # down or up


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one of"), ({"faults": 3, "duration": 3.0}, "exactly one of"),
    ({"faults": 0}, "at least 1"), ({"duration": -1.0}, "positive"),
    ({"faults": 1, "delay": -1.0}, "--delay"), ({"faults": 1, "thrash_max_mds": 2}, "0 to 1"),
])
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ScheduleError, match=message):
        schedule(Options(seed=0, **kwargs))


DUMP = {
    "standbys": [{"name": "d", "state": "up:standby", "gid": 4104}],
    "filesystems": [{"mdsmap": {"fs_name": "cephfs", "info": {
        "gid_4101": {"name": "a", "state": "up:active", "rank": 0, "gid": 4101},
        "gid_4102": {"name": "b", "state": "up:active", "rank": 1, "gid": 4102},
        "gid_4103": {"name": "c", "state": "up:standby-replay", "rank": 0, "gid": 4103},
    }}}],
}


def test_roles_are_resolved_from_the_map_snapshot():
    def f(target: str, index: int = 0) -> Fault:
        return Fault(index, 0.0, "kill", target, 1.0)

    assert resolve(f("active of rank 1"), DUMP, seed=1) == "b"
    assert resolve(f("active of rank 0"), DUMP, seed=1) == "a"
    assert resolve(f("a follower"), DUMP, seed=1) == "c"
    assert resolve(f("a standby"), DUMP, seed=1) == "d"
    assert resolve(f("a standby"), DUMP, seed=1, busy=frozenset("d")) == "c"  # falls back
    assert resolve(f("active of rank 3"), DUMP, seed=1) in ("a", "b")  # no such rank
    picks = [resolve(f("active of rank 3", i), DUMP, seed=9) for i in range(30)]
    assert picks == [resolve(f("active of rank 3", i), DUMP, seed=9) for i in range(30)]
    assert set(picks) == {"a", "b"}
    assert resolve(f("a follower"), {"filesystems": [], "standbys": []}, seed=1) is None
    assert resolve(Fault(0, 0, "mon_restart", "mon.a", 1), DUMP, seed=1) == "mon.a"


@pytest.mark.parametrize("argv, message", [
    (["--faults", "3", "--duration", "9"], "not allowed with"),
    (["--faults", "0"], "--faults must be at least 1"),
    (["--faults", "3", "--thrash-weights", "nuke=1"], "bad --thrash-weights item 'nuke=1'"),
    (["--faults", "3", "--thrash-max-mds", "1.5"], "0 to 1"),
    (["--faults", "3", "--clients", "0"], "--clients must be >= 1"),
    (["--faults", "3", "--delay", "soon"], "invalid float value"),
])
def test_thrash_refuses_bad_options_with_einval_before_touching_a_cluster(argv, message, capsys,
                                                                           tmp_path):
    from client import thrash

    conf = tmp_path / "missing" / "ceph.conf"  # never read: the options fail first
    assert thrash.main(["-c", str(conf), *argv]) == errno.EINVAL
    assert message in capsys.readouterr().err


def fsdump(*infos: tuple[str, int, str, int], max_mds: int = 1, failed=()) -> dict:
    """An `fs dump -f json` of cephfs with (name, rank, state, gid) infos."""
    info = {f"gid_{g}": {"name": n, "rank": r, "state": s, "gid": g} for n, r, s, g in infos}
    ranks = sorted({r for _, r, s, _ in infos if r >= 0 and s != "up:standby-replay"})
    return {"standbys": [], "filesystems": [{"mdsmap": {
        "fs_name": "cephfs", "max_mds": max_mds, "in": sorted(set(ranks) | set(failed)),
        "failed": list(failed), "info": info}}]}


def test_a_fault_is_recovered_once_every_rank_is_active_and_its_effect_is_seen():
    from client.nemesis import ranks_active, recovered

    before = fsdump(("a", 0, "up:active", 4101))
    replaced = fsdump(("b", 0, "up:active", 4102))
    replaying = fsdump(("b", 0, "up:replay", 4102))
    # kill -9 of the active: right after it the map still shows it; recovered on a successor
    assert not recovered("kill", before, "cephfs", held=(0, 4101), healed=True)
    assert not recovered("kill", replaying, "cephfs", held=(0, 4101), healed=True)
    assert recovered("kill", replaced, "cephfs", held=(0, 4101), healed=False)
    # a long stop: replaced (the usual case) or, if the mon was slow, healed in place
    assert recovered("stop_long", replaced, "cephfs", held=(0, 4101), healed=False)
    assert not recovered("stop_long", before, "cephfs", held=(0, 4101), healed=False)
    assert recovered("stop_long", before, "cephfs", held=(0, 4101), healed=True)
    # a short stop keeps the rank: recovered once healed (SIGCONT) with the rank active
    assert not recovered("stop_short", before, "cephfs", held=(0, 4101), healed=False)
    assert recovered("stop_short", before, "cephfs", held=(0, 4101), healed=True)
    # a standby killed: nothing to replace; healed and every rank active
    assert recovered("kill", before, "cephfs", held=(None, None), healed=True)
    # max_mds: the new value must be in the map, its ranks active, none stopping
    grown = fsdump(("a", 0, "up:active", 4101), max_mds=2)
    assert not recovered("max_mds", before, "cephfs", (None, None), True, new_max_mds=2)
    assert not recovered("max_mds", grown, "cephfs", (None, None), True, new_max_mds=2)
    assert recovered("max_mds", fsdump(("a", 0, "up:active", 4101), ("c", 1, "up:active", 4103),
                                       max_mds=2), "cephfs", (None, None), True, new_max_mds=2)
    stopping = fsdump(("a", 0, "up:active", 4101), ("c", 1, "up:stopping", 4103))
    assert not ranks_active(stopping, "cephfs")
    assert not ranks_active(fsdump(("a", 0, "up:active", 4101), max_mds=2, failed=[1]), "cephfs")
    assert ranks_active(fsdump(("a", 0, "up:active", 4101), ("d", 0, "up:standby-replay", 4104)),
                        "cephfs")
    assert not ranks_active(None, "cephfs") and not ranks_active(before, "other")


def test_the_end_waits_for_the_successor_of_a_dead_active_the_map_still_shows():
    """After the final heal, a map whose ranks are all active is not yet recovered while a
    killed or shut-down active has no successor (a restarted mon waits a grace before it
    marks the dead one laggy; seed 820's run ended "recovered" with rank 0 on a dead MDS)."""
    from client.nemesis import settled

    dead_still_shown = fsdump(("a", 0, "up:active", 4101))
    assert not settled(dead_still_shown, "cephfs", ["restart"])
    assert not settled(dead_still_shown, "cephfs", ["kill", "delay"])
    assert settled(dead_still_shown, "cephfs", ["delay", "max_mds"])  # recovered on the heal
    assert settled(fsdump(("b", 0, "up:active", 4102)), "cephfs", [])
    assert not settled(fsdump(("b", 0, "up:replay", 4102)), "cephfs", [])


def test_clients_answered_again_after_a_fault():
    from client.nemesis import answered_after

    answers = {"c0": [1.0, 2.0, 7.5], "c1": [1.5, 6.0]}
    assert answered_after(answers, 2.0) == 5.5  # c0 answered at 7.5, c1 at 6.0
    assert answered_after(answers, 6.5) is None  # c1 never answered again
    assert answered_after({}, 1.0) is None


def test_client_gaps_per_fault_window():
    from client.nemesis import client_gaps

    answers = {"c0": [0.5, 1.0, 1.5, 4.0, 4.5], "c1": [0.6, 1.1, 1.6, 2.1, 2.6, 3.1, 4.6]}
    # the fault in [1.2, 4.2]: c0 unanswered from 1.5 to 4.0 (c1 kept being answered)
    assert client_gaps(answers, [(1.2, 4.2), (0.0, 1.0)], 4.6) == [2.5, 0.6]
    # a wait that begins in a fault's window counts in full there, past the window's end
    assert client_gaps(answers, [(1.2, 2.0)], 4.6) == [2.5]
    assert client_gaps({"c0": [0.5]}, [(0.0, 1.0)], 3.0) == [2.5]  # silent to the end
    assert client_gaps({}, [(0.0, 1.0)], 1.0) == [None]
