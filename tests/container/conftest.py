"""Container tests: the compose.yaml cluster on this machine's Docker engine.

They skip, saying why, when no Docker engine answers or no Compose tool works, and when no base
image can be had (no registry, and debootstrap cannot make one). Otherwise they build the image
once per session with docker/build-image.sh (the base image `mdsemu-base:bookworm` is built by
debootstrap the first time and kept), tagged for this run only and removed at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "mdsemu-base:bookworm"

# What the terminal summary says about this run's container tests.
STATUS: dict[str, str] = {}


@dataclass
class Docker:
    compose: list[str]  # ["docker", "compose"] or ["docker-compose"]
    engine: str
    compose_version: str
    image: str = ""
    timings: dict[str, float] = field(default_factory=dict)


def _run(args: list[str], timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)


def _skip(reason: str) -> None:
    STATUS["skipped"] = reason
    pytest.skip(reason)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


@pytest.fixture(scope="session")
def docker() -> Docker:
    if shutil.which("docker") is None:
        _skip("no Docker engine answers: the docker command is not installed")
    try:
        info = _run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=30)
    except subprocess.TimeoutExpired:
        _skip("no Docker engine answers: `docker info` took over 30 s")
    engine = info.stdout.strip()
    if info.returncode != 0 or not engine or engine == "<no value>":
        _skip(f"no Docker engine answers: docker info: {_last_line(info.stderr)}")
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) is None:
            continue
        p = _run([*cmd, "version", "--short"], timeout=30)
        if p.returncode == 0:
            return Docker(cmd, engine, p.stdout.strip())
    _skip("the Docker engine answers but neither `docker compose` nor `docker-compose` works")
    raise AssertionError  # not reached


@pytest.fixture(scope="session")
def image(docker: Docker):
    """The mdsemu image of this checkout, tagged for this run; removed at the end."""
    env = dict(os.environ)
    base = env.get("MDSEMU_BASE_IMAGE", "")
    if not base:
        have_slim = _run(["docker", "image", "inspect", "python:3.11-slim"]).returncode == 0
        base = "python:3.11-slim" if have_slim else BASE_IMAGE
    if _run(["docker", "image", "inspect", base]).returncode != 0:
        if base != BASE_IMAGE:
            _skip(f"base image {base} (MDSEMU_BASE_IMAGE) is not in the Docker engine")
        t0 = time.monotonic()
        try:
            p = _run([str(ROOT / "docker" / "build-base-image.sh"), base], timeout=900)
        except subprocess.TimeoutExpired:
            _skip("no base image: docker/build-base-image.sh took over 15 minutes")
        if p.returncode != 0:
            _skip(f"no base image: docker/build-base-image.sh failed: {_last_line(p.stderr)}")
        docker.timings["base image"] = time.monotonic() - t0
    tag = f"mdsemu-test:{uuid.uuid4().hex[:10]}"
    env["MDSEMU_BASE_IMAGE"] = base
    t0 = time.monotonic()
    p = _run([str(ROOT / "docker" / "build-image.sh"), tag], timeout=900, env=env, cwd=ROOT)
    if p.returncode == 3:  # pip: typically no PyPI and no cached wheels
        _skip(f"cannot build the wheels for the image: {_last_line(p.stderr)}")
    if p.returncode != 0:
        pytest.fail(f"docker/build-image.sh failed:\n{p.stderr[-3000:]}")
    docker.timings["image"] = time.monotonic() - t0
    docker.image = tag
    STATUS["ran"] = (f"Docker engine {docker.engine}, {' '.join(docker.compose)} "
                     f"{docker.compose_version}, base image {base}")
    try:
        yield tag
    finally:  # the base image stays: it is the cache that spares debootstrap next time
        _run([str(ROOT / "docker" / "build-image.sh"), "--remove", tag], timeout=300, cwd=ROOT)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if "skipped" in STATUS:
        terminalreporter.write_line(f"container tests SKIPPED: {STATUS['skipped']}",
                                    yellow=True, bold=True)
    elif "ran" in STATUS:
        timings = f" ({STATUS['timings']})" if STATUS.get("timings") else ""
        terminalreporter.write_line(f"container tests ran on {STATUS['ran']}{timings}")
