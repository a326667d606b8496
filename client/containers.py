"""The thrasher's faults on a compose project (`mdsemu thrash --compose PROJECT`), sans-IO:
which service runs a daemon and which `docker` commands apply and heal a fault there. The
services are compose.yaml's: mon, osd, mds-<id>; a container is found by its compose labels.

Signals become the engine's verbs: SIGKILL `docker kill`, a clean stop `docker stop` (SIGTERM,
then SIGKILL after the grace), SIGSTOP/SIGCONT `docker pause`/`unpause` (the cgroup freezer:
the process cannot tell), a revival `docker start`; `disconnect` cuts the container from its
network (both directions, unlike the mon blackhole) and connects it again under its service
name, as compose had it.
"""

from __future__ import annotations

HISTORY = "/var/lib/mdsemu/history/load.jsonl"  # the client service's load (compose.yaml)
ASK = "watch"  # the service that asks the monitor (never a target)


def service_of(name: str) -> str:
    """compose.yaml's service for a daemon: mon.a -> mon, osd.0 -> osd, mds.a or a -> mds-a."""
    kind, dot, ident = name.partition(".")
    if not dot:
        return f"mds-{name}"
    return {"mon": "mon", "osd": "osd"}.get(kind, f"{kind}-{ident}")


def daemon_of(service: str) -> str | None:
    """The daemon a service runs (the inverse of service_of), None for the others."""
    if service in ("mon", "osd"):
        return {"mon": "mon.a", "osd": "osd.0"}[service]
    if service.startswith("mds-"):
        return f"mds.{service[4:]}"
    return None


def labels(project: str, service: str) -> list[str]:
    """`docker ps` filters for the service's container (not a one-off `compose run`)."""
    return ["--filter", f"label=com.docker.compose.project={project}",
            "--filter", f"label=com.docker.compose.service={service}",
            "--filter", "label=com.docker.compose.oneoff=False"]


def steps(kind: str, container: str, service: str, network: str = ""
          ) -> tuple[list[list[str]], list[list[str]]]:
    """(docker argvs that apply fault `kind` to `container`, those that heal it); message
    faults, `mds fail` and max_mds go through the monitor and are not here."""
    if kind in ("kill", "mon_restart", "osd_restart"):
        return [["kill", "--signal", "KILL", container]], [["start", container]]
    if kind == "restart":
        return [["stop", "--time", "10", container]], [["start", container]]
    if kind in ("stop_short", "stop_long", "osd_pause"):
        return [["pause", container]], [["unpause", container]]
    if kind == "disconnect":
        return ([["network", "disconnect", network, container]],
                [["network", "connect", "--alias", service, network, container]])
    return [], []
