"""Login rate limiting: sliding windows per (name, source IP), per IP and per name, in memory.

``LoginRateLimiter(max_failures=5, ip_max_failures=20, name_max_failures=50, window_s=300)``
keeps three failure counters for a password attempt:

- ``pair`` (user name + source IP), ``max_failures``: a guesser is locked out of that name
  from their address, while the real user at their own PC still logs in (finding 7 of
  security issue 10: five wrong logins from anywhere used to lock the admin out);
- ``ip``, ``ip_max_failures``: one address spraying many names;
- ``name``, ``name_max_failures`` (much higher): the slow global brake on one name, for a
  guess spread over many addresses. It does not apply to an address the name logged in
  from successfully within ``known_s`` (30 days): a guesser with many addresses can lock
  the name for strangers, never for the real user at their usual PC.

``reserve(name=, source_ip=) -> Attempt`` checks the three counters and, in the same locked
step, books the attempt as a failure before any password is hashed: N parallel requests for
one name get at most ``max_failures`` password checks, the rest ``RateLimited`` at once (the
old check-then-record let 30 of 200 parallel guesses through). ``Attempt.succeeded()`` takes
the booking back and clears the pair's counter; ``Attempt.cancel()`` takes it back (the
request never reached the password check); a failure keeps it. ``check``,
``record_failure`` and ``record_success`` are the unbooked building blocks.

``PasswordGate(slots=2)`` bounds the memory of password hashing (argon2id takes 64 MiB per
hash: 200 parallel logins took the agent from 91 to 627 MB): ``attempt(limiter, name=,
source_ip=, purpose=)`` books the attempt, then takes one of ``slots`` hash slots without
waiting (none free: ``LoginBusy``, 429 with Retry-After 1, and the booking is taken back);
the body raises ``AuthFailed`` for a wrong password (the booking stays a failure) and
returns for a right one (taken back). ``slot()`` waits for a slot (admin's own hashing).
Every outcome goes to ``observe(purpose, outcome)``: ok, failed, rate_limited, busy.

In memory on purpose: the agent is one process, a restart is rare and is itself slow for an
attacker, and keeping failures out of SQLite spares writes under a brute-force storm. Memory
is bounded: at most ``max_keys`` counters (least recently used dropped) of at most their
limit's timestamps each.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from agent.errors import AuthFailed, LoginBusy, RateLimited

__all__ = ["Attempt", "LoginRateLimiter", "PasswordGate"]

_Key = tuple[str, str]


class Attempt:
    """A booked password attempt: counted as a failure unless taken back."""

    def __init__(self, limiter: LoginRateLimiter, keys: tuple[_Key, ...], stamp: float) -> None:
        self._limiter = limiter
        self._keys = keys
        self._stamp = stamp
        self._open = True

    def succeeded(self) -> None:
        """Take the booking back and clear the pair's counter (the password was right)."""
        if self._open:
            self._open = False
            self._limiter.take_back(self._keys, self._stamp, clear_pair=True)

    def cancel(self) -> None:
        """Take the booking back (no password was checked: the server was busy)."""
        if self._open:
            self._open = False
            self._limiter.take_back(self._keys, self._stamp, clear_pair=False)


class LoginRateLimiter:
    """Lock a (name, IP) pair, an IP or a name after too many failed logins within a window."""

    def __init__(self, *, max_failures: int = 5, ip_max_failures: int = 20,
                 name_max_failures: int = 50, window_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000,
                 known_s: float = 30 * 86400.0) -> None:
        self._limits = {"pair": max_failures, "ip": ip_max_failures, "name": name_max_failures}
        self._window_s = window_s
        self._clock = clock
        self._max_keys = max_keys
        self._known_s = known_s
        self._failures: OrderedDict[_Key, deque[float]] = OrderedDict()
        self._known: OrderedDict[_Key, float] = OrderedDict()  # pair -> last good login
        self._lock = threading.Lock()

    def _keys(self, name: str, source_ip: str) -> tuple[_Key, ...]:
        """Return the counters an attempt touches (called under the lock)."""
        folded = name.casefold()
        pair = ("pair", f"{folded}\x00{source_ip}")
        good_at = self._known.get(pair)
        if good_at is not None and self._clock() - good_at < self._known_s:
            return pair, ("ip", source_ip)  # the user's own address: no global name brake
        return pair, ("ip", source_ip), ("name", folded)

    def _remember_good(self, pair: _Key) -> None:
        self._known.pop(pair, None)
        self._known[pair] = self._clock()
        while len(self._known) > self._max_keys:
            self._known.popitem(last=False)

    def check(self, *, name: str, source_ip: str) -> None:
        """Raise RateLimited if the pair, the IP or the name is locked now (books nothing)."""
        with self._lock:
            self._raise_if_locked(self._keys(name, source_ip), self._clock())

    def reserve(self, *, name: str, source_ip: str) -> Attempt:
        """Check and book one attempt atomically; raise RateLimited if locked."""
        with self._lock:
            keys = self._keys(name, source_ip)
            now = self._clock()
            self._raise_if_locked(keys, now)
            self._append(keys, now)
        return Attempt(self, keys, now)

    def _raise_if_locked(self, keys: tuple[_Key, ...], now: float) -> None:
        wait = max(self._wait(key, now) for key in keys)
        if wait > 0:
            raise RateLimited(retry_after_s=max(1, math.ceil(wait)))

    def _wait(self, key: _Key, now: float) -> float:
        stamps = self._failures.get(key)
        if not stamps:
            return 0.0
        while stamps and stamps[0] <= now - self._window_s:
            stamps.popleft()
        if len(stamps) < self._limits[key[0]]:
            return 0.0
        return stamps[0] + self._window_s - now

    def _append(self, keys: tuple[_Key, ...], now: float) -> None:
        for key in keys:
            stamps = self._failures.pop(key, None) or deque(maxlen=self._limits[key[0]])
            stamps.append(now)
            self._failures[key] = stamps  # re-inserted last: most recently used
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)

    def take_back(self, keys: tuple[_Key, ...], stamp: float, *, clear_pair: bool) -> None:
        """Remove one booked stamp from ``keys`` (``Attempt``); maybe forget the pair."""
        with self._lock:
            for key in keys:
                stamps = self._failures.get(key)
                if stamps is not None and stamp in stamps:
                    stamps.remove(stamp)
            if clear_pair:
                self._failures.pop(keys[0], None)
                self._remember_good(keys[0])

    def record_failure(self, *, name: str, source_ip: str) -> None:
        """Count one failed login for the pair, the IP and the name."""
        with self._lock:
            self._append(self._keys(name, source_ip), self._clock())

    def record_success(self, *, name: str, source_ip: str) -> None:
        """Forget the pair's failures (the IP's and the name's count down by themselves)."""
        with self._lock:
            pair = self._keys(name, source_ip)[0]
            self._failures.pop(pair, None)
            self._remember_good(pair)

    def tracked_keys(self) -> int:
        """Count the counters held (for tests and metrics)."""
        with self._lock:
            return len(self._failures)


class PasswordGate:
    """At most ``slots`` password hashes at once; booked, rate-limited attempts."""

    def __init__(self, *, slots: int = 2,
                 observe: Callable[[str, str], None] | None = None) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self._observe = observe or (lambda _purpose, _outcome: None)

    @contextmanager
    def attempt(self, limiter: LoginRateLimiter, *, name: str, source_ip: str,
                purpose: str = "login") -> Iterator[Attempt]:
        """Book an attempt and hold a hash slot around the password check (see above)."""
        try:
            booked = limiter.reserve(name=name, source_ip=source_ip)
        except RateLimited:
            self._observe(purpose, "rate_limited")
            raise
        if not self._slots.acquire(blocking=False):
            booked.cancel()
            self._observe(purpose, "busy")
            raise LoginBusy(retry_after_s=1)
        try:
            yield booked
        except AuthFailed:
            self._observe(purpose, "failed")
            raise
        except BaseException:
            booked.cancel()
            raise
        else:
            booked.succeeded()
            self._observe(purpose, "ok")
        finally:
            self._slots.release()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a hash slot, waiting for one (creating users, admin password resets)."""
        with self._slots:
            yield
