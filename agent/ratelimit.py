"""Login rate limiting: per user name and per source IP, sliding window, in memory.

``LoginRateLimiter(max_failures=5, ip_max_failures=20, window_s=300)``: ``check(name=,
source_ip=)`` raises ``RateLimited(retry_after_s)`` while either counter is full;
``record_failure`` and ``record_success`` (which clears the name's counter) update it.

In memory on purpose: the agent is one process, a restart is rare and is itself slow for an
attacker, and keeping failures out of SQLite spares writes under a brute-force storm. Memory
is bounded: at most ``max_keys`` counters (least recently used dropped) of at most
``max(max_failures, ip_max_failures)`` timestamps each.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from agent.errors import RateLimited

__all__ = ["LoginRateLimiter"]


class LoginRateLimiter:
    """Lock a user name or a source IP after too many failed logins within a window."""

    def __init__(self, *, max_failures: int = 5, ip_max_failures: int = 20,
                 window_s: float = 300.0, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 10_000) -> None:
        self._limits = {"user": max_failures, "ip": ip_max_failures}
        self._window_s = window_s
        self._clock = clock
        self._max_keys = max_keys
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _keys(name: str, source_ip: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("user", name.casefold()), ("ip", source_ip)

    def check(self, *, name: str, source_ip: str) -> None:
        """Raise RateLimited if the name or the IP is locked now."""
        now = self._clock()
        with self._lock:
            waits = [self._wait(key, now) for key in self._keys(name, source_ip)]
        wait = max(waits)
        if wait > 0:
            raise RateLimited(retry_after_s=max(1, math.ceil(wait)))

    def _wait(self, key: tuple[str, str], now: float) -> float:
        stamps = self._failures.get(key)
        if not stamps:
            return 0.0
        while stamps and stamps[0] <= now - self._window_s:
            stamps.popleft()
        if len(stamps) < self._limits[key[0]]:
            return 0.0
        return stamps[0] + self._window_s - now

    def record_failure(self, *, name: str, source_ip: str) -> None:
        """Count one failed login for the name and the IP."""
        now = self._clock()
        with self._lock:
            for key in self._keys(name, source_ip):
                stamps = self._failures.pop(key, None) or deque(maxlen=self._limits[key[0]])
                stamps.append(now)
                self._failures[key] = stamps  # re-inserted last: most recently used
            while len(self._failures) > self._max_keys:
                self._failures.popitem(last=False)

    def record_success(self, *, name: str, source_ip: str) -> None:
        """Forget the name's failures (the IP's keep counting down by themselves)."""
        with self._lock:
            self._failures.pop(self._keys(name, source_ip)[0], None)

    def tracked_keys(self) -> int:
        """Count the counters held (for tests and metrics)."""
        with self._lock:
            return len(self._failures)
