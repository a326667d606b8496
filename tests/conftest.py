"""Whole-suite hooks: how `make test PYTEST_ARGS="-n 2 --dist loadgroup"` shares the tests
between pytest-xdist workers."""

from __future__ import annotations

import pytest


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
