"""MDS states and the transitions between them, as data (ref §1.7, R1, R2).

The monitor validates state requests against TRANSITIONS (M7), the MDS checks every committed
map against it (B9), renderers print NAMES, and docs/states.md is drawn from the same table.
"""

from __future__ import annotations

DNE = 0
STOPPED = -1
BOOT = -4
STANDBY = -5
CREATING = -6
STARTING = -7
STANDBY_REPLAY = -8
ONESHOT_REPLAY = -9
NULL = -10
REPLAY = 8
RESOLVE = 9
RECONNECT = 10
REJOIN = 11
CLIENTREPLAY = 12
ACTIVE = 13
STOPPING = 14
DAMAGED = 15

NAMES: dict[int, str] = {
    DNE: "down:dne",
    STOPPED: "down:stopped",
    DAMAGED: "down:damaged",
    BOOT: "up:boot",
    STANDBY: "up:standby",
    CREATING: "up:creating",
    STARTING: "up:starting",
    STANDBY_REPLAY: "up:standby-replay",
    ONESHOT_REPLAY: "up:oneshot-replay",
    NULL: "null",
    REPLAY: "up:replay",
    RESOLVE: "up:resolve",
    RECONNECT: "up:reconnect",
    REJOIN: "up:rejoin",
    CLIENTREPLAY: "up:clientreplay",
    ACTIVE: "up:active",
    STOPPING: "up:stopping",
}
BY_NAME: dict[str, int] = {v: k for k, v in NAMES.items()}

# Which side moves a daemon into each state (R1): "mon" states are only ever assigned by the
# monitor; "mds" states are requested by the daemon in a beacon and committed by the monitor.
DRIVER: dict[int, str] = {
    STANDBY: "mon",
    STANDBY_REPLAY: "mon",
    CREATING: "mon",
    STARTING: "mon",
    REPLAY: "mon",
    STOPPING: "mon",
    RESOLVE: "mds",
    RECONNECT: "mds",
    REJOIN: "mds",
    CLIENTREPLAY: "mds",
    ACTIVE: "mds",
    STOPPED: "mds",
    DAMAGED: "mds",
}

# R2: allowed transitions besides "same state" and "anything -> down:damaged".
TRANSITIONS: dict[int, frozenset[int]] = {
    BOOT: frozenset({STANDBY}),
    STANDBY: frozenset({STANDBY_REPLAY, REPLAY, CREATING, STARTING}),
    CREATING: frozenset({ACTIVE}),
    STARTING: frozenset({ACTIVE}),
    STANDBY_REPLAY: frozenset({REPLAY}),
    REPLAY: frozenset({RESOLVE, RECONNECT}),
    RESOLVE: frozenset({RECONNECT}),
    RECONNECT: frozenset({REJOIN}),
    REJOIN: frozenset({CLIENTREPLAY, ACTIVE, STOPPED}),
    CLIENTREPLAY: frozenset({ACTIVE}),
    ACTIVE: frozenset({STOPPING}),
    STOPPING: frozenset({STOPPED}),
}

# States in which a rank is recovering: the map is degraded while any holder is in one (§1.4).
RECOVERING = frozenset({REPLAY, RESOLVE, RECONNECT, REJOIN, CLIENTREPLAY})


def name(state: int) -> str:
    return NAMES.get(state, f"unknown:{state}")


def from_name(text: str) -> int:
    """Parse "up:active", "active" or a number; ValueError otherwise."""
    if text in BY_NAME:
        return BY_NAME[text]
    for prefix in ("up:", "down:"):
        if prefix + text in BY_NAME:
            return BY_NAME[prefix + text]
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"unknown MDS state '{text}'") from None
    if value not in NAMES:
        raise ValueError(f"unknown MDS state '{text}'")
    return value


def transition_valid(old: int, new: int) -> bool:
    """R2 (MDSMap::state_transition_valid)."""
    if old == new or new == DAMAGED:
        return True
    return new in TRANSITIONS.get(old, frozenset())


def is_rank_state(state: int) -> bool:
    """True for states held by a daemon that owns a rank (not standby, not its follower)."""
    return state not in (STANDBY, STANDBY_REPLAY, BOOT, DNE, NULL, STOPPED, DAMAGED)
