"""The tests' clocks: a settable fake (the one unit tests inject) and wall time with an offset."""

from __future__ import annotations

import time


class Clock:
    """A clock the test moves by hand: call it for the time, set ``now`` or ``sleep``.

    ``sleep`` does not block: it records the seconds in ``sleeps`` and advances ``now``,
    so code that takes a ``sleep`` callable (retries, backoff) runs instantly.
    """

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class WallClockWithOffset:
    """Wall-clock time plus an offset the test can advance (to skip backoff waits)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset
