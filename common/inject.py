"""Ceph's messenger fault injection, the decisions only (sans-IO, plain values, no clock).

One `Injector` per connection, made once the peer's entity is known (after the hello). Each
decision reads the option values it is given, so a `config set` takes effect on the next
message. Unlike Ceph's, whose choices come from an unseeded rand(), every random choice comes
from the connection's own generator, seeded from `ms_inject_seed`, the two entity names and a
per-peer connection counter: a run with the same seed makes the same choices.

Which side applies what (as in Ceph's AsyncConnection / ProtocolV2):
- ms_inject_socket_failures N: any connection, each socket read or send fails with a
  probability of 1/N (Ceph: `rand() % N == 0` in read_until and _try_send);
- ms_inject_delay_type/_probability/_max: the receiver delays messages *from* peers of the
  listed types by a uniform [0, max) with that probability, in order (a FIFO queue per
  connection: a later message never overtakes a delayed one);
- ms_blackhole_<type>: messages to and from peers of that type are dropped silently, after
  the handshake; the connection stays up. There is no mgr case (Ceph has none either);
- ms_blackhole_from "mds.a client" (ours): messages *from* those peers (full entity names or
  types) are dropped on receipt, those to them still go: Jepsen's one-way partition, which
  Ceph's per-type switches cannot make.
"""

from __future__ import annotations

import random
import re

PEER_TYPES = ("mon", "mds", "osd", "client")


def peer_type(entity: str) -> str:
    """"mds.a" -> "mds"; "" for something that is not an entity name."""
    kind, dot, _ = entity.partition(".")
    return kind if dot and kind in PEER_TYPES else ""


def delay_types(text: str) -> set[str]:
    """The peer types named in ms_inject_delay_type ("mds osd", "client,mds")."""
    return {t for t in re.split(r"[\s,;]+", text.strip().lower()) if t}


class Injector:
    """The fault decisions of one connection between `local` and `peer` (entity names)."""

    def __init__(self, seed: int, local: str, peer: str, counter: int) -> None:
        self.peer = peer
        self.peer_type = peer_type(peer)
        # A str seed is hashed with SHA-512 by random.Random: stable across runs and hosts.
        # One generator per direction, so each depends only on that direction's traffic.
        key = f"{seed}/{local}/{peer}/{counter}"
        self.rng_in = random.Random(key + "/in")
        self.rng_out = random.Random(key + "/out")
        self.release_at = float("-inf")  # when the last delayed message is delivered

    def socket_failure(self, every: int, sending: bool) -> bool:
        """Shut the connection on this read or send? (ms_inject_socket_failures = every)"""
        rng = self.rng_out if sending else self.rng_in
        return every > 0 and rng.randrange(every) == 0

    def blackholed(self, blackhole: dict[str, bool]) -> bool:
        """Drop this message silently? `blackhole` maps peer type -> ms_blackhole_<type>."""
        return bool(self.peer_type) and bool(blackhole.get(self.peer_type, False))

    def deaf_to(self, blackhole_from: frozenset[str]) -> bool:
        """Drop this incoming message? ms_blackhole_from names the peer or its type."""
        return bool(blackhole_from) and (self.peer in blackhole_from or
                                         self.peer_type in blackhole_from)

    def deliver_at(self, now: float, types: str, probability: float, delay_max: float) -> float:
        """When to hand a message received at `now` to the daemon: `now` unless delayed, never
        before an earlier delayed message of this connection (FIFO)."""
        delay = 0.0
        if (probability > 0 and delay_max > 0 and self.peer_type
                and self.peer_type in delay_types(types)
                and self.rng_in.random() < probability):
            delay = delay_max * self.rng_in.random()
        self.release_at = max(now + delay, self.release_at)
        return self.release_at


class Messenger:
    """The injection settings of one daemon: its config (read on every decision) and entity
    name, and a counter of connections per peer so that each gets its own generator."""

    def __init__(self, config, entity: str) -> None:
        self.config = config
        self.entity = entity
        self._counts: dict[str, int] = {}
        self._seen = -1  # the config generation the values below were read at
        self._values: tuple = ()

    def injector(self, peer: str) -> Injector:
        n = self._counts.get(peer, 0)
        self._counts[peer] = n + 1
        return Injector(self.config.get("ms_inject_seed"), self.entity, peer, n)

    def _current(self) -> tuple:
        """The options, read again only after a config change (this runs on every message)."""
        generation = getattr(self.config, "generation", None)
        if generation is None or generation != self._seen:
            c = self.config
            self._values = (
                c.get("ms_inject_socket_failures"),
                {t: c.get(f"ms_blackhole_{t}") for t in PEER_TYPES},
                (c.get("ms_inject_delay_type"), c.get("ms_inject_delay_probability"),
                 c.get("ms_inject_delay_max")),
                delay_types(c.get("ms_blackhole_from")))
            self._seen = -1 if generation is None else generation
        return self._values

    def socket_failures(self) -> int:
        return self._current()[0]

    def blackhole(self) -> dict[str, bool]:
        return self._current()[1]

    def delay(self) -> tuple[str, float, float]:
        return self._current()[2]

    def blackhole_from(self) -> frozenset[str]:
        return frozenset(self._current()[3])
