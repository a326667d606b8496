"""Whole-suite hooks: SIGINT as a terminal gives it, and how `make test PYTEST_ARGS="-n 2
--dist loadgroup"` shares the tests between pytest-xdist workers."""

from __future__ import annotations

import signal

import pytest


def pytest_configure(config) -> None:
    """A suite started in the background by a shell without job control inherits SIGINT
    ignored, and so would every daemon and tool it starts (an ignored signal survives exec):
    the Ctrl-C tests (`mdsemu -w`, `mdsemu thrash`) need it delivered."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    """With `--dist loadgroup`, a module runs on one worker, so its module-scoped cluster is
    made once, and the container tests all run on one worker (one image build, one compose
    project at a time). Runs before xdist reads the marks; without xdist they do nothing."""
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            path = item.nodeid.split("::", 1)[0]
            group = "docker" if path.startswith("tests/container/") else path
            item.add_marker(pytest.mark.xdist_group(group))
