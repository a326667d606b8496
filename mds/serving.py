"""Which client and peer messages a rank serves, sans-IO (ref C1-C3, R3 steps 5-6): who may
open a session, when a reconnect is refused, which states serve a request or make it wait for
up:active, which ops read or write, how a resend is answered, and the reconnect tick.
"""

from __future__ import annotations

import errno

from common import states

READ_OPS = frozenset({"lookup", "getattr", "readdir"})
WRITE_OPS = frozenset({"mkdir", "create", "unlink", "rmdir", "rename", "setattr"})
# States in which a rank has replayed its journal and answers its peers (resolve onwards).
REPLAYED = frozenset({states.RESOLVE, states.RECONNECT, states.REJOIN, states.CLIENTREPLAY,
                      states.ACTIVE, states.STOPPING})
OPEN_STATES = frozenset({states.ACTIVE, states.CLIENTREPLAY})  # sessions open, imports land


def op_kind(op: str) -> str | None:
    """"read", "write", or None for an operation nobody knows."""
    return "read" if op in READ_OPS else "write" if op in WRITE_OPS else None


def resend_answer(done: dict | None) -> tuple[int, dict, str] | None:
    """A request seen before (a client resending after a failover) gets the recorded result
    instead of a second execution."""
    return (0, done, "") if done is not None else None


# -- sessions (C1)
def open_verdict(addr: object, blocklist, state: int, ready: bool,
                 known_addr: str | None) -> tuple[str, str]:
    """A request_open: ("bad", why) for malformed input, ("reject", error_string) for a
    blocklisted client, ("close", reason) when the rank does not take sessions now, else
    ("journal", "") for a new session or a new address, ("open", "") for a known one."""
    if not isinstance(addr, str) or not addr:
        return "bad", "request_open without the client's addr"
    if addr in blocklist:
        return "reject", "blocklisted"
    if state not in OPEN_STATES or not ready:
        return "close", f"mds is {states.name(state)}"
    return ("open", "") if known_addr == addr else ("journal", "")


def wait_for_reconnect_state(want: int, state: int, reconnecting: bool, leaving: bool) -> bool:
    """C1: a client reconnected before our reconnect work began (it saw the map first):
    wait for it ("we're almost in reconnect state")."""
    return want == states.RECONNECT and (state != states.RECONNECT or not reconnecting) \
        and not leaving


def reconnect_verdict(has_session: bool, state: int, reconnecting: bool,
                      deny_all: bool) -> str:
    """C2: "sessionless" (reject: no such session, checked first as Ceph does), "deny"
    (close and log the denial), or "accept"."""
    if not has_session:
        return "sessionless"
    if state != states.RECONNECT or not reconnecting or deny_all:
        return "deny"
    return "accept"


def reconnect_tick(tick_interval: float, timeout: float) -> float:
    """How often up:reconnect looks at who is missing."""
    return min(tick_interval, timeout / 4 or 0.05)


# -- requests (R3 steps 5-6)
def queue_for_clientreplay(replay: bool, state: int) -> bool:
    """A replayed request (the client had an unsafe reply) arriving in up:reconnect waits
    for up:clientreplay."""
    return replay and state == states.RECONNECT


def waits_for_active(replay: bool, state: int) -> bool:
    """A client that saw the map making us active before we did: its request waits for
    up:active (Ceph's wait_for_active) rather than bouncing."""
    return not replay and state in (states.REJOIN, states.CLIENTREPLAY)


def serves(replay: bool, state: int) -> bool:
    return state == states.ACTIVE or (state == states.CLIENTREPLAY and replay)


def no_session_reply(client: str) -> tuple[int, str]:
    return -errno.ENOTCONN, f"no session for {client}"


# -- peers
def peer_answers(op: str, state: int) -> bool:
    """A peer's question needs a replayed rank; an export or a cross-rank prepare needs one
    that serves (they change what it holds)."""
    if state not in REPLAYED:
        return False
    return state in OPEN_STATES if op in ("export", "xprep") else True
