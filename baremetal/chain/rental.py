"""One machine's rental state from the chain, decided as the node's idle timer decides it.

``BareMetalTaskManager.cpp:66-88`` (docs/protocol.md §6.4, §14): machine status, then
renter and ``rentEnd``, then the current block. A machine is

- ``online``: bonded, not rented (the node powers it off once);
- ``rented``: rented and ``rentEnd`` not passed (or 0: no end known);
- ``rent_ended``: status still rented but ``current_block > rentEnd`` (powered off once);
- ``verify``: in committee verification;
- ``unknown``: any other status, or the chain knows no such machine (left alone).

The end time is estimated from the block distance at ``BLOCK_TIME_S`` (6 s since the
chain's 2022 upgrade; the node's own constants agree: a 2400-block verify window is its
"4 hours", ``HttpDBCChainClient.cpp:178-185``; 600 × 24 blocks a day,
``RentOrderManager.cpp:130``).

``ChainRentals`` caches each answer for ``ttl_s``. When the chain cannot be asked (no
host answers, or every answer is malformed), the last good answer is returned marked
``stale`` with its age; with none, the ``ChainError`` is raised. After a failure, the
network is left alone for ``retry_after_s`` so a pass over many machines costs one
deadline, not one per machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from baremetal.chain.client import ChainClient
from baremetal.chain.errors import ChainError, MachineUnknown
from baremetal.chain.parse import DEFAULT_RENTER, MachineStatus, machine_category

__all__ = ["BLOCK_TIME_S", "ChainRentals", "RentalState", "rental_from_chain"]

BLOCK_TIME_S = 6.0
ONLINE, RENTED, RENT_ENDED, VERIFY, UNKNOWN = (
    "online", "rented", "rent_ended", "verify", "unknown")


@dataclass(frozen=True)
class RentalState:
    """What the chain said about one machine, and how fresh that is."""

    status: str
    machine_status: str = ""
    renter: str | None = None
    rent_end_block: int | None = None
    current_block: int | None = None
    rent_end_at: float | None = None
    fetched_at: float = 0.0
    stale: bool = False
    age_s: float = 0.0
    error: str | None = None

    @property
    def rented(self) -> bool | None:
        """Answer as ``RentalsFile.rented``: True rented, False not (powered off), None unknown."""
        if self.status in (ONLINE, RENT_ENDED):
            return False
        if self.status == RENTED:
            return True
        return None


def _rented_state(client: ChainClient, node_id: str, raw: str, now: float,
                  current_block: Callable[[], int]) -> RentalState:
    renter, rent_end = client.current_renter(node_id)
    block = current_block()
    ended = rent_end > 0 and block > rent_end
    end_at = now + (rent_end - block) * BLOCK_TIME_S if rent_end > 0 else None
    return RentalState(
        status=RENT_ENDED if ended else RENTED, machine_status=raw,
        renter=renter if renter and renter != DEFAULT_RENTER else None,
        rent_end_block=rent_end or None, current_block=block, rent_end_at=end_at,
        fetched_at=now)


def rental_from_chain(client: ChainClient, node_id: str, now: float,
                      current_block: Callable[[], int] | None = None) -> RentalState:
    """Ask the chain what the node's idle timer asks; raise ``ChainError`` if it cannot.

    A machine the chain does not know (``result: null``) is ``unknown``, not an error.
    ``current_block`` may supply a shared (cached) block number.
    """
    try:
        raw = client.machine_status(node_id)
    except MachineUnknown:
        return RentalState(status=UNKNOWN, fetched_at=now)
    category = machine_category(raw)
    if category == MachineStatus.RENTED:
        return _rented_state(client, node_id, raw, now, current_block or client.current_block)
    status = {MachineStatus.ONLINE: ONLINE, MachineStatus.VERIFY: VERIFY}.get(category, UNKNOWN)
    return RentalState(status=status, machine_status=raw, fetched_at=now)


class ChainRentals:
    """``rental(node_id)`` with a TTL cache, stale answers when the chain is down; thread-safe."""

    def __init__(self, client: ChainClient, *, ttl_s: float = 30.0,
                 retry_after_s: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.ttl_s = ttl_s
        if retry_after_s is None:
            retry_after_s = min(max(ttl_s, 5.0), 30.0)
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, RentalState] = {}
        self._down_until = 0.0
        self._last_error: ChainError | None = None
        self._block: tuple[int, float] | None = None

    def rental(self, node_id: str) -> RentalState:
        """Return the machine's state: fresh, cached, or stale (marked); else raise ChainError."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(node_id)
            if cached is not None and now - cached.fetched_at < self.ttl_s:
                return replace(cached, age_s=now - cached.fetched_at)
            down = now < self._down_until
            last_error = self._last_error
        if down and last_error is not None:
            return self._stale_or_raise(node_id, now, last_error)
        try:
            state = rental_from_chain(self.client, node_id, now, self._current_block)
        except ChainError as exc:
            with self._lock:
                self._down_until = self._clock() + self.retry_after_s
                self._last_error = exc
            return self._stale_or_raise(node_id, self._clock(), exc)
        with self._lock:
            self._cache[node_id] = state
            self._down_until, self._last_error = 0.0, None
        return state

    def peek(self, node_id: str) -> RentalState | None:
        """Return the last answer about this machine without asking the chain (None: none).

        Marked stale while the chain cannot be asked; ``age_s`` says how old it is.
        """
        now = self._clock()
        with self._lock:
            cached = self._cache.get(node_id)
            error = self._last_error
        if cached is None:
            return None
        return replace(cached, age_s=now - cached.fetched_at, stale=error is not None,
                       error=None if error is None else str(error))

    def _current_block(self) -> int:
        # One block lasts BLOCK_TIME_S: a pass over many machines asks for it once.
        now = self._clock()
        with self._lock:
            if self._block is not None and now - self._block[1] < min(self.ttl_s, BLOCK_TIME_S):
                return self._block[0]
        block = self.client.current_block()
        with self._lock:
            self._block = (block, now)
        return block

    def _stale_or_raise(self, node_id: str, now: float, error: ChainError) -> RentalState:
        with self._lock:
            cached = self._cache.get(node_id)
        if cached is None:
            raise type(error)(error.method, error.reason)  # a fresh one each time
        return replace(cached, stale=True, age_s=now - cached.fetched_at, error=str(error))
