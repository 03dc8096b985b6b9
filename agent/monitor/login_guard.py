"""Stop re-trying BMC logins that keep failing, so the monitor never locks a BMC account.

Many BMCs lock a user, or block the client address, after a few failed logins in a row
(iDRAC, iLO and Supermicro all do by default). With a wrong password in the inventory the
monitor would fail once per pass forever and keep the account locked, also for the DBC
node, which logs in as the same user. After ``failures_before_hold`` consecutive auth
failures with the same credentials, a server is *held*: the monitor does not log in to it
again until ``hold_s`` has passed or its credentials change (staff fixed the password),
and reports ``auth_failed`` with a note saying when it retries. Staff actions are never
held: a person asked for them.

Credentials are compared through a keyed BLAKE2b digest whose key lives only in this
process's memory, so no password or password hash is kept.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.models import ServerCredentials

__all__ = ["AuthGuard"]


@dataclass
class _Failures:
    fingerprint: bytes
    count: int
    last_at: float


class AuthGuard:
    """Remembers consecutive login refusals per server and says which to leave alone."""

    def __init__(self, *, hold_s: float, failures_before_hold: int = 2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._hold_s = hold_s
        self._threshold = failures_before_hold
        self._clock = clock
        self._key = os.urandom(32)
        self._failures: dict[int, _Failures] = {}
        self._lock = threading.Lock()

    def hold_left_s(self, cred: ServerCredentials) -> float | None:
        """Seconds before the monitor may log in to ``cred`` again; None if it may now."""
        if self._hold_s <= 0:
            return None
        with self._lock:
            seen = self._failures.get(cred.server_id)
        if seen is None or seen.count < self._threshold:
            return None
        if seen.fingerprint != self._fingerprint(cred):
            return None  # credentials changed: try them at once
        left = seen.last_at + self._hold_s - self._clock()
        return left if left > 0 else None

    def record(self, cred: ServerCredentials, *, auth_failed: bool) -> None:
        """Note the outcome of one login attempt to ``cred``'s BMC."""
        with self._lock:
            if not auth_failed:
                self._failures.pop(cred.server_id, None)
                return
            fingerprint = self._fingerprint(cred)
            seen = self._failures.get(cred.server_id)
            count = seen.count + 1 if seen and seen.fingerprint == fingerprint else 1
            self._failures[cred.server_id] = _Failures(fingerprint, count, self._clock())

    def forget_except(self, server_ids: set[int]) -> None:
        """Drop what is known about servers no longer in the inventory."""
        with self._lock:
            for server_id in set(self._failures) - server_ids:
                del self._failures[server_id]

    def _fingerprint(self, cred: ServerCredentials) -> bytes:
        text = "\0".join((cred.ipmi_host, str(cred.ipmi_port), cred.ipmi_user,
                          cred.ipmi_password.reveal()))
        return hashlib.blake2b(text.encode("utf-8"), key=self._key, digest_size=16).digest()
