"""Who holds an outbox claim, and whether that process still runs.

A claim token names its owner: ``host:pid:start:random``, where ``start`` is the owner
process's start time (psutil ``create_time``, 10 ms ticks on Linux, written with two
decimals). The owner is **gone** when it ran on this host and its PID no longer runs, or
runs with another start time (the PID was recycled), or is a zombie. A gone owner's claims
are taken over at once instead of waiting out their lease (a ``kill -9`` used to stall
registration for the whole 300 s lease). An owner on another host, or a token without an
owner (written before owners were recorded), cannot be judged: its lease decides.

The token stays in the existing ``claim_token`` column: no schema change.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from secrets import token_hex

import psutil

__all__ = ["ClaimOwner", "current_owner", "owner_gone", "parse_owner", "process_started"]

START_TOLERANCE_S = 0.05  # the token keeps 10 ms; create_time is exact to one tick
UNKNOWN_START = -1.0  # the process exists but its start time cannot be read
StartedOf = Callable[[int], float | None]


@dataclass(frozen=True)
class ClaimOwner:
    """One process on one host, by PID and start time."""

    host: str
    pid: int
    started: float

    def new_token(self) -> str:
        """Return a fresh claim token naming this owner."""
        return f"{self.host}:{self.pid}:{self.started:.2f}:{token_hex(8)}"

    def same_process(self, other: ClaimOwner) -> bool:
        """Tell whether ``other`` is this very process (host, PID and start time)."""
        return (self.host == other.host and self.pid == other.pid
                and abs(self.started - other.started) <= START_TOLERANCE_S)


def parse_owner(token: str | None) -> ClaimOwner | None:
    """Read the owner out of a claim token; None for a token without one (legacy)."""
    if not token:
        return None
    parts = token.rsplit(":", 3)
    if len(parts) != 4 or not parts[0] or not parts[1].isdigit():
        return None
    try:
        started = float(parts[2])
    except ValueError:
        return None
    return ClaimOwner(host=parts[0], pid=int(parts[1]), started=started)


def process_started(pid: int) -> float | None:
    """Start time of a running process on this host; None if none runs (or a zombie)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(proc.create_time())
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        return UNKNOWN_START


@functools.lru_cache(maxsize=4)
def _owner_of(pid: int) -> ClaimOwner:
    started = process_started(pid)
    return ClaimOwner(host=socket.gethostname(), pid=pid,
                      started=started if started is not None else 0.0)


def current_owner() -> ClaimOwner:
    """Return the running process as a claim owner (keyed by PID: right after a fork)."""
    return _owner_of(os.getpid())


def owner_gone(token: str | None, here: ClaimOwner,
               started_of: StartedOf = process_started) -> bool:
    """Tell whether the claim's owner is provably gone (same host; PID dead or recycled)."""
    owner = parse_owner(token)
    if owner is None or owner.host != here.host:
        return False
    started = started_of(owner.pid)
    if started is None:
        return True
    if started == UNKNOWN_START:
        return False
    return abs(started - owner.started) > START_TOLERANCE_S
