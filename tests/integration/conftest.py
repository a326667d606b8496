"""Fixtures for the real-process tests: clusters in a tmp dir that are always reaped.

Rules for tests here: real processes on 127.0.0.1 with ephemeral ports, the fast profile
(grace 1 s, beacon 0.25 s, tick 0.1 s), no sleep as synchronisation (poll with a deadline:
`Cluster.wait_for` / `wait_map`), an absolute timeout on every test, and every process a test
starts is SIGKILLed and waited for at teardown, also when the test fails.
"""

from __future__ import annotations

import pytest

from tests.integration.cluster import Cluster


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def _failed(request) -> bool:
    return any(getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
               for when in ("setup", "call"))


@pytest.fixture
def cluster_factory(request, tmp_path):
    """make(**Cluster kwargs) -> a new, not yet started Cluster under tmp_path. At teardown
    every cluster is destroyed (all its processes SIGKILLed and reaped); if the test failed,
    the tails of the daemon logs are printed."""
    clusters: list[Cluster] = []

    def make(**kwargs) -> Cluster:
        c = Cluster(tmp_path / f"cluster{len(clusters)}", **kwargs)
        clusters.append(c)
        return c

    yield make
    _teardown(clusters, _failed(request))


def _teardown(clusters: list[Cluster], failed: bool) -> None:
    errors = []
    for c in clusters:
        if failed:
            print(f"===== logs of {c.dir}\n{c.log_tails()}")
        try:
            c.destroy()
        except Exception as e:  # keep reaping the other clusters
            errors.append(f"{c.dir}: {e}")
    if errors:
        raise RuntimeError("could not reap every process: " + "; ".join(errors))


@pytest.fixture
def cluster(cluster_factory) -> Cluster:
    """mon.a, file system cephfs, mds.a up:active as rank 0, mds.b and mds.c standbys."""
    return cluster_factory().start(("a", "b", "c"))


@pytest.fixture(scope="module")
def shared_cluster(request, tmp_path_factory):
    """One cluster for a module's read-only tests (mon, cephfs, mds.a active, mds.b)."""
    c = Cluster(tmp_path_factory.mktemp("shared"))
    try:
        c.start(("a", "b"))
        # Let the map settle (the mon sets standby_count_wanted from -1 to 1 on a tick once
        # there is a standby), so that read-only tests see a still map.
        c.wait_map(lambda d: d["filesystems"][0]["mdsmap"]["standby_count_wanted"] == 1,
                   10, "standby_count_wanted to settle")
        yield c
    finally:
        failed = request.session.testsfailed > 0
        _teardown([c], failed)
