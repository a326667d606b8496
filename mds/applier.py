"""The one event applier, sans-IO (ref J3, R3, R5): how every journal event changes a rank's
state. The active applies an event as it journals it, replay and standby-replay apply the same
events read back, and write-back applies an expiring segment's events to the lagging copy
(`RankStore.flushed`), so all of them reach the same state by the same code.

A rank's state is its namespace (`mds.namespace`, with its subtrees and cross-rank tables), its
open sessions (client -> {"addr", "metadata", "locks"}: the file locks it holds,
`mds.filelocks`) and the requests it completed (for resends).
Event types are named in `mds.events`.
"""

from __future__ import annotations

from mds import filelocks, subtree, xrank
from mds.events import (
    EFLOCK,
    ESESSION,
    EUPDATE,
    SUBTREE_EVENTS,
    XRANK_EVENTS,
    XRANK_OPS,
    result_of,
)
from mds.namespace import Namespace
from mds.sessionmap import MAX_COMPLETED_PER_CLIENT, CompletedRequests, split_reqid

LOCAL_OPS = frozenset({"mkdir", "create", "unlink", "rmdir", "rename", "setattr"})


def apply(ns: Namespace, ev: dict, sessions: dict[str, dict] | None = None,
          completed: CompletedRequests | None = None) -> None:
    """One event onto a rank's state. `sessions` and `completed` are left alone if None (the
    active records a request's result itself, once it has it)."""
    t, op = ev.get("t"), ev.get("op")
    if t == EUPDATE and op in LOCAL_OPS:  # nearly every event: the shortest way
        ns.apply_update(ev)
        if completed is not None:
            completed.note_event(ev)
        return
    if t == ESESSION:
        if sessions is not None:
            apply_session(sessions, ev)
        if completed is not None and not ev.get("open"):
            completed.forget(ev["client"])
        return
    if t == EFLOCK:
        if sessions is not None:
            filelocks.apply(sessions, ev)
        return
    if op in XRANK_OPS or t in XRANK_EVENTS:
        xrank.apply(ns, ev)
    elif op is not None:
        ns.apply_update(ev)
    elif t in SUBTREE_EVENTS:
        subtree.apply(ns, ev)
    if completed is not None and t == EUPDATE:  # a master's cross-rank EUpdate too
        completed.note_event(ev)


def write_back(flushed: Namespace, sessions: dict[str, dict], ev: dict) -> None:
    """An expiring segment's event onto what the directory and sessionmap objects hold."""
    if ev["t"] == ESESSION:
        apply_session(sessions, ev)
        return
    if ev["t"] == EFLOCK:
        filelocks.apply(sessions, ev)
        return
    apply(flushed, ev)
    if ev.get("reqid"):
        note_completed(sessions, ev)


def apply_session(table: dict[str, dict], ev: dict) -> None:
    """An ESession event: a client's session opened or closed."""
    if ev.get("open"):
        old = table.get(ev["client"], {})  # a re-open keeps its completed requests, locks
        table[ev["client"]] = {"addr": ev.get("addr", ""), "metadata": ev.get("metadata", {})}
        for key in ("completed", "locks"):
            if old.get(key):
                table[ev["client"]][key] = old[key]
    else:
        table.pop(ev["client"], None)


def note_completed(table: dict[str, dict], ev: dict) -> None:
    """An EUpdate being written back: its result joins its client's completed requests in
    the sessionmap object (Ceph keeps them with the session), trimmed by `oldest`."""
    client, tid = split_reqid(ev["reqid"])
    entry = table.get(client)
    if entry is None:
        return  # no session (a test's raw request, or closed since): nothing to keep
    done = {t: r for t, r in entry.get("completed", {}).items()
            if int(t) >= ev.get("oldest", 0)}
    done[str(tid)] = result_of(ev)
    while len(done) > MAX_COMPLETED_PER_CLIENT:
        del done[min(done, key=int)]
    entry["completed"] = done


def dirty_dirs(ev: dict) -> set[int]:
    """Directory inodes whose objects an event changes (the parent dentries it touches)."""
    if ev.get("t") in XRANK_EVENTS:
        return xrank.dirty(ev)
    if ev.get("t") != EUPDATE:
        return set()
    return {ev[k] for k in ("parent", "sparent", "dparent", "dir") if ev.get(k) is not None}
