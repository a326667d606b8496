"""How long to wait before the next attempt: exponential backoff with a cap, no I/O.

Every retry loop of the tools and daemons (hunting for a monitor, reconnecting to the osd)
asks a `Backoff` instead of doubling its own constants. Jitter, when wanted, comes from an
injected random source (a callable returning a float in [0, 1)), so tests stay exact.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_MAX_DOUBLINGS = 64  # beyond this every policy is at its cap (and floats stay finite)


@dataclass(frozen=True, slots=True)
class Backoff:
    """`initial` for the first retry, multiplied by `factor` per failed attempt, never more
    than `maximum`. `jitter` (0..1) shortens each delay by up to that fraction."""

    initial: float
    maximum: float
    factor: float = 2.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or self.factor < 1:
            raise ValueError(f"bad backoff: {self}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within [0, 1], not {self.jitter}")

    @classmethod
    def constant(cls, delay: float) -> Backoff:
        return cls(delay, delay, 1.0)

    def delay(self, attempt: int, rand: Callable[[], float] | None = None) -> float:
        """The wait after `attempt` failed attempts in a row (attempt 0: the first failure)."""
        base = min(self.initial * self.factor ** min(max(attempt, 0), _MAX_DOUBLINGS),
                   self.maximum)
        if self.jitter and rand is not None:
            base *= 1.0 - self.jitter * rand()
        return base

    def delays(self, rand: Callable[[], float] | None = None) -> Iterator[float]:
        """The waits of one retry loop, one per failure in a row: `next(delays)` before each
        retry (a loop that succeeds and fails again starts a new iterator)."""
        for attempt in itertools.count():
            yield self.delay(attempt, rand)

    def next(self, last: float | None, rand: Callable[[], float] | None = None) -> float:
        """The wait after one that lasted `last` (None: this is the first)."""
        base = self.initial if last is None else min(last * self.factor, self.maximum)
        if self.jitter and rand is not None:
            base *= 1.0 - self.jitter * rand()
        return base
