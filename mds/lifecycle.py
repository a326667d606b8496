"""The daemon's life decisions, sans-IO (ref B5, B8-B10, F4, F5, T3): what the shell does when
the map drops us, when the monitor link is silent or unreachable, and when the work of a state
fails. Time arrives as arguments; the shell (`mds.daemon`) acts on the answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from common import states
from common.backoff import Backoff

REMOVED = "Map removed me from cluster; respawning! See cluster/monitor logs for details."
# What the shell does once the map (or a null-map ack) no longer names us.
IGNORE, END, RESPAWN = "ignore", "end", "respawn"


def mon_backoff(hunt_interval: float, beacon_grace: float) -> Backoff:
    """Reconnecting to a monitor (the shared MonClient's backoff): never wait longer than the
    grace between attempts, since a restarted mon gives us mds_beacon_mon_down_grace to come
    back (T3), then fails us."""
    return Backoff(hunt_interval,
                                  min(5 * hunt_interval + 2, max(beacon_grace, 0.1)))


def work_backoff(hunt_interval: float) -> Backoff:
    """Retrying a state's work while the metadata pool is unreachable: from the hunt
    interval, doubling, at most 5 s."""
    return Backoff(min(hunt_interval, 5.0), 5.0)


def osd_backoff() -> Backoff:
    """Waiting for an osd to answer a new session (as Ceph's objecter waits)."""
    return Backoff(0.05, 2.0)


def peer_backoff() -> Backoff:
    """Resending to a peer rank (exports, cross-rank decisions, relayed pins)."""
    return Backoff(0.05, 1.0)


def on_removed(stopping: bool, signalled: bool, respawning: bool) -> str:
    """B8/B10: the map dropped us. Leaving already (our down:dne beacon was answered, or a
    stop signal is on its way to the shutdown), that is the end, not a reason to respawn."""
    if stopping or signalled:
        return END
    return IGNORE if respawning else RESPAWN


def on_null_map_ack(stopping: bool) -> str:
    """A beacon ack with a null map: the monitor no longer knows us (B8), or acknowledges
    our down:dne (B10)."""
    return END if stopping else RESPAWN


def beacon_state(want: int, stopping: bool) -> int:
    """The state a beacon asks for: down:dne once we are shutting down (B10)."""
    return states.DNE if stopping else want


def hold_map(state: int, laggy: bool) -> bool:
    """B5: while our beacons go unacked, maps wait until the monitors answer (not at boot)."""
    return laggy and state != states.BOOT


def hold_client_message(is_command: bool, state: int, laggy: bool) -> bool:
    """B5: client messages wait while laggy (waiting_for_nolaggy); commands do not."""
    return not is_command and hold_map(state, laggy)


@dataclass(frozen=True)
class WorkFailure:
    """What to do when a state's work fails: respawn (fenced, F4), report down:damaged (F5),
    or retry after a delay with a new osd session (the osd is down or restarting)."""

    action: str  # RESPAWN, DAMAGED or RETRY
    reason: str


DAMAGED, RETRY = "damaged", "retry"


def work_failure(kind: str, reason: str) -> WorkFailure:
    """`kind`: "fenced", "damaged" or "osd" (what the shell caught)."""
    return WorkFailure({"fenced": RESPAWN, "damaged": DAMAGED}.get(kind, RETRY), reason)
