"""The rank state machine, sans-IO (ref R1–R7, B7–B9, X4).

The monitor moves a daemon into standby, standby-replay, creating, starting, replay and
stopping; the daemon asks for every other state and acts only once it sees the state in a
committed map (R1). `handle_map` turns a new map into actions; `step_done` is called by the
shell when the work of a state (replay the journal, wait for clients, ...) has finished.

The maps are what an MDS subscribed to `mdsmap` gets (B7, O1; the monitor's check_sub, in
mon/subscriptions.py): its file system's MDSMap, or, for a standby, a null map holding only its
own info at its standby epoch, or, for a daemon not in the FSMap, an empty null map. Their
epochs are FSMap epochs of the last change, so they only grow, whichever map comes next.
"""

from __future__ import annotations

from dataclasses import dataclass

from common import states
from common.mdsmap import FS_CLUSTER_ID_NONE, MDSMap


@dataclass(frozen=True)
class Respawn:
    reason: str


@dataclass(frozen=True)
class RequestState:
    state: int


@dataclass(frozen=True)
class Start:
    """Begin the work of `state` (the shell knows what that is)."""

    state: int


@dataclass(frozen=True)
class Log:
    message: str


Action = Respawn | RequestState | Start | Log

# States whose work the shell runs; once it finishes, step_done() says what to ask for next.
WORK_STATES = frozenset({
    states.STANDBY_REPLAY, states.REPLAY, states.CREATING, states.STARTING, states.RESOLVE,
    states.RECONNECT, states.REJOIN, states.CLIENTREPLAY, states.ACTIVE, states.STOPPING,
})


def own_fs(mdsmap: MDSMap | None) -> MDSMap | None:
    """The file system a map is of; None for a null map (a standby's, or not in the FSMap)."""
    return mdsmap if mdsmap is not None and mdsmap.fscid != FS_CLUSTER_ID_NONE else None


class RankStateMachine:
    def __init__(self, gid: int) -> None:
        self.gid = gid
        self.state = states.BOOT  # as the committed map says (BOOT until we are in one)
        self.rank = -1
        self.inc = 0
        self.epoch = 0  # MDSMap epoch processed (B7)
        self.effective_epoch = 0  # what the beacon reports as "version" (M4)
        self.fs_name = ""
        self.want_state = states.BOOT
        self.resolved = False  # up:resolve: our own part (asking the peers) is done

    def _request(self, state: int) -> RequestState:
        self.want_state = state
        return RequestState(state)

    def handle_map(self, mdsmap: MDSMap) -> list[Action]:
        if mdsmap.epoch <= self.epoch:
            return []  # B7: old or repeated maps are dropped
        self.epoch = mdsmap.epoch
        info = mdsmap.mds_info.get(self.gid)
        if info is None:
            if self.state != states.BOOT:  # B8
                return [Respawn("Map removed me from cluster; respawning! See cluster/monitor "
                                "logs for details.")]
            return []
        self.effective_epoch = mdsmap.epoch  # M4: our fs's epoch, or our standby epoch
        fs = own_fs(mdsmap)
        self.fs_name = fs.fs_name if fs else ""
        old, new = self.state, info.state
        actions: list[Action] = []
        if old != states.BOOT and self.rank >= 0 and info.rank != self.rank:
            return [Respawn(f"rank changed from {self.rank} to {info.rank}; respawning")]
        effective_old = states.STANDBY if old == states.BOOT else old
        if new != effective_old and not states.transition_valid(effective_old, new):
            return [Respawn(f"invalid state transition {states.name(old)} -> "
                            f"{states.name(new)}; respawning")]
        self.rank = info.rank
        if new != old:
            actions.append(Log(f"handle_mds_map state change {states.name(old)} --> "
                               f"{states.name(new)}"))
            if info.inc != self.inc and info.rank >= 0 and new != states.STANDBY_REPLAY:
                actions.append(Log(f"handle_mds_map i am now mds.{info.rank}.{info.inc}"))
            self.inc = info.inc
            self.state = new
            if new == states.STANDBY:
                actions.append(Log("Monitors have assigned me to become a standby."))
            if old == states.STANDBY_REPLAY and new == states.REPLAY:
                actions.append(Log("Monitor activated us! Deactivating replay loop"))  # R6
            if self.want_state != new and states.DRIVER.get(new) == "mon":
                self.want_state = new
            elif self.want_state == states.BOOT:
                self.want_state = new
            if new in WORK_STATES:
                actions.append(Start(new))
        if self.state == states.RESOLVE and self.want_state == states.RESOLVE and self.resolved:
            if fs is not None and fs.is_resolving():  # R3 step 3: every rank got here
                actions.append(Log("resolve_done"))
                actions.append(self._request(states.RECONNECT))
        return actions

    def step_done(self, state: int, mdsmap: MDSMap, replay_queued: bool = False) -> list[Action]:
        """The work of `state` finished; ask for what comes next (R3, R4, X4). After rejoin,
        requests queued for replay mean up:clientreplay first (R3 step 5)."""
        if state != self.state:
            return []  # the map moved on while the work ran
        fs = own_fs(mdsmap)
        if state == states.RESOLVE:
            self.resolved = True
            if fs is not None and fs.is_resolving():
                return [Log("resolve_done"), self._request(states.RECONNECT)]
            return []  # the others are not all there yet: a later map says when
        if state == states.REPLAY:
            if fs is not None and len(fs.in_) == 1 and not fs.failed:
                return [Log("i am alone, moving to state reconnect"),
                        self._request(states.RECONNECT)]
            actions: list[Action] = [Log("i am not alone, moving to state resolve"),
                                     self._request(states.RESOLVE)]
            return actions
        if state == states.REJOIN and replay_queued:
            return [self._request(states.CLIENTREPLAY)]
        nxt = {
            states.CREATING: states.ACTIVE,
            states.STARTING: states.ACTIVE,
            states.RECONNECT: states.REJOIN,
            states.REJOIN: states.ACTIVE,
            states.CLIENTREPLAY: states.ACTIVE,
            states.STOPPING: states.STOPPED,
        }.get(state)
        return [self._request(nxt)] if nxt is not None else []
