"""Deadlines and bounded exponential backoff with jitter."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["Backoff", "Deadline", "retry_until"]

T = TypeVar("T")

FIRST_DELAY_S = 0.05
MAX_DELAY_S = 2.0


@dataclass
class Deadline:
    """A point in monotonic time after which a step gives up."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.started + self.seconds - self.clock())

    def expired(self) -> bool:
        """Tell whether the deadline has passed."""
        return self.remaining() <= 0.0

    def cap(self, timeout_s: float) -> float:
        """Shorten a per-call timeout so the call cannot outlive the deadline."""
        return max(0.01, min(timeout_s, self.remaining()))


@dataclass
class Backoff:
    """Exponential delays with full jitter: 50 ms, 100 ms, ... capped at ``max_s``."""

    first_s: float = FIRST_DELAY_S
    max_s: float = MAX_DELAY_S
    attempt: int = 0

    def next_delay(self) -> float:
        """Return the next delay and advance."""
        ceiling = min(self.max_s, self.first_s * (2.0**self.attempt))
        self.attempt += 1
        # Jitter between half and the full ceiling: PCs booting together spread out.
        return ceiling / 2 + random.random() * ceiling / 2  # noqa: S311 - not crypto


def retry_until(
    deadline: Deadline,
    attempt: Callable[[], T],
    retry_on: tuple[type[BaseException], ...],
    on_retry: Callable[[BaseException, int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``attempt`` until it returns, re-raising the last ``retry_on`` error at the deadline."""
    backoff = Backoff()
    tries = 0
    while True:
        tries += 1
        try:
            return attempt()
        except retry_on as exc:
            if deadline.expired():
                raise
            if on_retry is not None:
                on_retry(exc, tries)
            sleep(min(backoff.next_delay(), deadline.remaining()))
