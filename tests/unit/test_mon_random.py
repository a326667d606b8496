"""Random kills, restarts, pauses, commands and time against the monitor core.

After every committed map the simulation checks `FSMap.sanity()` (so never two daemons holding
one rank in the map) and that any live daemon still believing it holds a rank the map gave to
someone else is fenced. At the end everything is healed and every rank must become active.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from common import states
from tests.unit.monsim import Cluster

NAMES = ("a", "b", "c", "d", "e", "f", "g")
FS = ("cephfs", "other")
LEGACY = {  # seed 001's options on two of the daemons
    "f": {"standby_replay": True, "standby_for_rank": 0},
    "g": {"standby_for_fscid": 2, "standby_replay": True},
}

name = st.sampled_from(NAMES)
fs_name = st.sampled_from(FS)
boolean = st.sampled_from(["true", "false"])

actions = st.one_of(
    st.tuples(st.just("advance"), st.integers(1, 30)),
    st.tuples(st.sampled_from(["kill", "restart", "pause", "resume", "shutdown"]), name),
    st.tuples(st.just("damaged"), name),
    st.tuples(st.just("hold"), name, st.sampled_from(
        [states.REPLAY, states.RESOLVE, states.RECONNECT, states.CREATING, states.STOPPING])),
    st.tuples(st.just("release"), name),
    st.tuples(st.just("join_fs"), name, st.sampled_from(["", *FS])),
    st.tuples(st.just("cmd"), st.one_of(
        st.tuples(st.just("mds"), st.just("fail"), st.one_of(
            name, st.sampled_from(["0", "1", "cephfs:0", "cephfs:1", "other:0", "2:0"]))),
        st.tuples(st.just("fs"), st.just("set"), fs_name, st.just("max_mds"),
                  st.sampled_from(["1", "2", "3"])),
        st.tuples(st.just("fs"), st.just("set"), fs_name,
                  st.sampled_from(["allow_standby_replay", "joinable", "down",
                                   "refuse_standby_for_another_fs"]), boolean),
        st.tuples(st.just("fs"), st.just("fail"), fs_name),
        st.tuples(st.just("mds"), st.just("repaired"), st.sampled_from(["cephfs:0", "other:0"])),
        st.tuples(st.just("mds"), st.just("freeze"), name, boolean),
        st.tuples(st.just("fs"), st.just("new"), st.just("other"), st.just("om"),
                  st.just("od")),
        st.tuples(st.just("fs"), st.just("rm"), st.just("other"),
                  st.just("--yes-i-really-mean-it")),
        st.tuples(st.just("mds"), st.just("rm"), st.integers(4100, 4115).map(str)),
        st.tuples(st.just("mds"), st.just("ok-to-stop"), name),
        st.tuples(st.just("fs"), st.just("compat"), fs_name, st.just("rm_incompat"),
                  st.just("12")),
    )),
)


def run(steps: list[tuple], standby_replay: bool = False, max_mds: int = 1) -> Cluster:
    c = Cluster()
    c.new_fs()
    c.cmd("fs", "set", "cephfs", "allow_standby_replay", str(standby_replay).lower())
    c.cmd("fs", "set", "cephfs", "max_mds", str(max_mds))
    for n in NAMES[:5]:
        c.add(n, **LEGACY.get(n, {}))
    c.advance(10)
    for step in steps:
        kind = step[0]
        if kind == "advance":
            c.advance(step[1])
        elif kind == "cmd":
            rc, outs, _ = c.cmd(*step[1])
            assert rc <= 0 and isinstance(outs, str)
        elif kind == "damaged":
            d = c.daemons.get(step[1])
            if d is not None and d.alive and not d.paused and d.state not in (
                    states.BOOT, states.STANDBY):
                c.beacon(step[1], state=states.DAMAGED)
        elif kind == "join_fs":
            if step[1] in c.daemons:
                c.daemons[step[1]].fs = step[2]
        elif kind == "hold":
            if step[1] in c.daemons:
                c.daemons[step[1]].hold.add(step[2])
        elif step[1] not in c.daemons:
            if kind == "restart":
                c.add(step[1], **LEGACY.get(step[1], {}))
        elif kind == "release":
            if c.daemons[step[1]].alive and not c.daemons[step[1]].paused:
                c.release(step[1])
        else:
            getattr(c, kind)(step[1])
        c.check_invariants()
    return c


def heal(c: Cluster) -> None:
    for d in list(c.daemons.values()):
        d.hold = set()
        if d.paused:
            c.resume(d.name)
        if not d.alive:
            c.restart(d.name)
        c.daemons[d.name].fs = ""
        c.release(d.name)
    for info in list(c.mon.fsmap.all_infos()):
        if info.frozen:
            c.cmd("mds", "freeze", str(info.gid), "false")
    for fs in list(c.mon.fsmap.filesystems.values()):
        c.cmd("fs", "set", fs.fs_name, "down", "false")
        c.cmd("fs", "set", fs.fs_name, "max_mds", "1")
        for rank in sorted(fs.damaged):
            c.cmd("mds", "repaired", f"{fs.fs_name}:{rank}")
    c.advance(200)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, max_size=30), st.booleans(), st.integers(1, 2))
def test_random_failures_keep_the_map_sane_and_recover(steps, standby_replay, max_mds) -> None:
    with capture_logs():
        c = run(steps, standby_replay, max_mds)
        heal(c)
        for fs in c.mon.fsmap.filesystems.values():
            assert not fs.damaged and not fs.failed, c.dump_plain()
            assert c.all_active(fs.fs_name), c.dump_plain()
        epoch = c.mon.fsmap.epoch
        c.advance(120)
        assert c.mon.fsmap.epoch == epoch, c.take_clog()  # and then nothing churns
