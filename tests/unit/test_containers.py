"""`mdsemu thrash --compose PROJECT` (client/containers.py, sans-IO): the seeded schedule maps
onto compose.yaml's containers and the docker verbs that apply and heal each fault."""

from __future__ import annotations

import errno

import pytest

from client import nemesis
from client.containers import daemon_of, labels, service_of, steps


def test_daemons_map_onto_compose_services_and_back():
    for name, service in (("mon.a", "mon"), ("osd.0", "osd"), ("mds.a", "mds-a"),
                          ("b", "mds-b")):
        assert service_of(name) == service
    assert [daemon_of(s) for s in ("mon", "osd", "mds-c", "client", "watch", "setup")] == \
        ["mon.a", "osd.0", "mds.c", None, None, None]
    assert labels("p1", "mds-a") == [
        "--filter", "label=com.docker.compose.project=p1",
        "--filter", "label=com.docker.compose.service=mds-a",
        "--filter", "label=com.docker.compose.oneoff=False"]


def test_every_fault_kind_of_a_compose_schedule_has_its_docker_verbs():
    faults = nemesis.schedule(nemesis.Options(seed=11, faults=300, delay=1, grace=1.0,
                                              ranks=2, compose=True))
    kinds = {f.kind for f in faults}
    assert kinds == set(nemesis.KINDS) | set(nemesis.COMPOSE_KINDS) | {nemesis.MAX_MDS}
    through_the_mon = {"mds_fail", "max_mds", "blackhole", "socket_failures", "delay",
                       *nemesis.PARTITIONS}
    for kind in kinds - through_the_mon:
        apply, heal = steps(kind, "cid", "mds-a", "p1_default")
        assert apply and heal, kind
    assert steps("kill", "cid", "mds-a") == ([["kill", "--signal", "KILL", "cid"]],
                                             [["start", "cid"]])
    assert steps("restart", "cid", "mds-a")[0] == [["stop", "--time", "10", "cid"]]
    assert steps("stop_long", "cid", "mds-a") == ([["pause", "cid"]], [["unpause", "cid"]])
    assert steps("disconnect", "cid", "mds-a", "p1_default") == (
        [["network", "disconnect", "p1_default", "cid"]],
        [["network", "connect", "--alias", "mds-a", "p1_default", "cid"]])
    for kind in through_the_mon:
        assert steps(kind, "cid", "mds-a") == ([], [])
    # a cut hits an active and lasts beyond the grace, like the blackhole
    cuts = [f for f in faults if f.kind == "disconnect"]
    assert all(f.target.startswith("active of rank ") for f in cuts)
    assert all(1.5 <= f.heal_at - f.at <= 3.0 + 1e-3 for f in cuts)


def test_the_compose_kind_leaves_the_schedules_of_a_local_cluster_unchanged():
    """Seed 5256 (the thrash of `make test`): 20 faults of all 15 local kinds in 31.2 s."""
    o = nemesis.Options(seed=5256, faults=20, delay=1, max_revive_delay=1.5, thrash_max_mds=0.1,
                        grace=1.0, ranks=2)
    faults = nemesis.schedule(o)
    assert faults[-1].heal_at == 31.246 and "disconnect" not in {f.kind for f in faults}
    assert len({f.kind for f in faults}) == 15
    assert nemesis.parse_weights("disconnect=1", compose=True)["disconnect"] == 1
    with pytest.raises(nemesis.ScheduleError, match="expected KIND=WEIGHT"):
        nemesis.parse_weights("disconnect=1")


def test_thrash_without_the_compose_project_says_so(capsys, monkeypatch):
    from client import thrash, thrash_compose

    monkeypatch.setattr(thrash_compose, "docker", lambda *a, **k: thrash_compose.subprocess
                        .CompletedProcess(a, 0, "", ""))  # the engine lists no container
    assert thrash.main(["--compose", "nosuch", "--faults", "2"]) == errno.ENOTCONN
    assert "no container of service 'watch' in compose project 'nosuch'" in \
        capsys.readouterr().err
    assert thrash.main(["--compose", "p", "-c", "x.conf", "--faults", "2"]) == errno.EINVAL
