"""The monitor client's decisions, with no I/O (Ceph's MonClient, src/mon/MonClient.cc).

One `MonClientCore` per monitor session of a tool or daemon. It decides which monitor address
to try next and how long to wait after a failure (`Backoff`), when a hunt gives up, what must
be sent again once a new session is up (the subscriptions, the messages a session starts with,
such as an osd's boot, and the commands still unanswered, as `_resend_mon_commands` does),
which command a reply answers (by tid), and when a silent session counts as dead
(`mon_client_ping_timeout`). Time arrives as `now`; the trio shell is `common/monclient.py`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from common import messages as m
from common.addr import parse_hostport
from common.backoff import Backoff


class MonUnreachable(Exception):
    """No monitor answered in time, or one refused us; the message is one line."""


class MonClientCore:
    """Args:
        mon_host: the `mon_host` option ("a:port,b:port").
        backoff: the wait after each failed attempt of a hunt.
        give_up_after: how long the first hunt may last (None: forever); later hunts,
            after a session was lost, go on forever.
        ping_timeout: a session silent this long is dropped (None: never).
        rand: the random source for the backoff's jitter.

    A refusal (the monitor answered hello with an error) ends a hunt that has a deadline at
    once (a tool reports it); a hunt without one keeps trying (the monitor may change its
    mind, e.g. once its config is fixed)."""

    def __init__(self, mon_host: str, backoff: Backoff, give_up_after: float | None = None,
                 ping_timeout: float | None = None,
                 rand: Callable[[], float] | None = None) -> None:
        self.mon_host = mon_host
        self.hosts = [parse_hostport(h) for h in mon_host.split(",") if h.strip()]
        if not self.hosts:
            raise MonUnreachable("no monitor address configured (mon_host)")
        self.backoff = backoff
        self.give_up_after = give_up_after
        self.ping_timeout = ping_timeout
        self.rand = rand
        self.global_id = 0  # given by the first monitor that says hello; kept afterwards
        self.deadline: float | None = None
        self.hunting = False
        self._attempt = 0  # connection attempts in this hunt (picks the address)
        self._failures = 0  # failed attempts in a row (picks the delay)
        self._last = ""  # why the latest attempt failed
        self._sessions = 0
        self._connected_at: float | None = None
        self._heard: float | None = None
        self._subs: list[str] = []
        self._session_msgs: dict[str, object] = {}
        self._tids = itertools.count(1)
        self._pending: dict[int, m.Command] = {}

    # -- hunting
    def start_hunt(self, now: float) -> None:
        self.hunting = True
        self._attempt = 0
        first = self._sessions == 0
        self.deadline = now + self.give_up_after \
            if first and self.give_up_after is not None else None

    def target(self) -> tuple[str, int]:
        """The address to try now (each in turn)."""
        host, port = self.hosts[self._attempt % len(self.hosts)]
        self._attempt += 1
        self._last = f"{host}:{port}: no answer"  # what to say if the deadline strikes now
        return host, port

    def connect_failed(self, reason: str, refused: bool = False) -> float:
        """The attempt at the latest `target` failed: the wait before the next one.
        Raises MonUnreachable when a refusal ends the hunt."""
        host, port = self.hosts[(self._attempt - 1) % len(self.hosts)]
        if refused and self.deadline is not None:
            raise MonUnreachable(f"monitor {host}:{port} refused us: {reason}")
        self._last = f"{host}:{port}: {'refused us: ' if refused else ''}{reason}"
        delay = self.backoff.delay(self._failures, self.rand)
        self._failures += 1
        return delay

    def gave_up(self) -> MonUnreachable:
        """What to raise once the hunt's deadline has passed."""
        return MonUnreachable(f"cannot reach the monitor at {self.mon_host} after "
                              f"{self.give_up_after:g}s ({self._last})")

    def connected(self, now: float, global_id: int) -> list:
        """A monitor said hello: the messages to send on the new session, in order."""
        self.hunting = False
        self.global_id = self.global_id or global_id
        self._sessions += 1
        self._connected_at = self._heard = now
        out: list = []
        if self._subs:
            out.append(m.Subscribe(what=list(self._subs)))
        out.extend(self._session_msgs.values())
        out.extend(self._pending[tid] for tid in sorted(self._pending))
        return out

    def lost(self, now: float) -> float:
        """The session ended: the wait before hunting again. At once after a session that
        lasted (Ceph reopens at once); after one that ended as soon as it began, the backoff
        goes on growing, so a monitor that keeps dropping us is not hammered."""
        started, self._connected_at = self._connected_at, None
        if started is not None and now - started >= self.backoff.initial:
            self._failures = 0
            return 0.0
        delay = self.backoff.delay(self._failures, self.rand)
        self._failures += 1
        return delay

    # -- liveness (mon_client_ping_timeout)
    def heard(self, now: float) -> None:
        """The monitor showed it is alive (a message, or an ack the owner counts); never
        earlier than already heard (an ack may date from when its beacon left)."""
        if self._heard is None or now > self._heard:
            self._heard = now

    def ping_deadline(self) -> float | None:
        """When the session counts as dead unless the monitor is heard from again."""
        if self.ping_timeout is None or self._heard is None:
            return None
        return self._heard + self.ping_timeout

    def silent_too_long(self, now: float) -> bool:
        deadline = self.ping_deadline()
        return deadline is not None and now > deadline

    # -- what the session carries
    def subscribe(self, what: list[str]) -> m.Subscribe | None:
        """Add subscriptions; the message to send now (None if nothing is new)."""
        new = [w for w in what if w not in self._subs]
        self._subs.extend(new)
        return m.Subscribe(what=new) if new else None

    def renew_subs(self) -> m.Subscribe | None:
        """Every subscription again, each asking for the current map (Ceph's _renew_subs):
        for one whose first map never came on a session that stayed up."""
        return m.Subscribe(what=list(self._subs)) if self._subs else None

    def set_session_msg(self, key: str, msg) -> None:
        """A message every new session starts with (after the subscriptions)."""
        self._session_msgs[key] = msg

    def drop_session_msg(self, key: str) -> None:
        self._session_msgs.pop(key, None)

    def command(self, args: list[str], fmt: str = "plain") -> m.Command:
        """A new command with its own tid; it stays pending until answered or abandoned."""
        cmd = m.Command(tid=next(self._tids), args=list(args), format=fmt)
        self._pending[cmd.tid] = cmd
        return cmd

    def reply(self, msg: m.CommandReply) -> bool:
        """True if `msg` answers a pending command (which is then no longer pending)."""
        return self._pending.pop(msg.tid, None) is not None

    def abandon(self, tid: int) -> None:
        self._pending.pop(tid, None)

    @property
    def pending(self) -> list[int]:
        return sorted(self._pending)
