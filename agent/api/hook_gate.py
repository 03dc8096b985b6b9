"""Admission for the boot-hook relay: its slow calls never hold the API's request pool.

A relay publish waits up to 20 s for the node to report the new code. Run as a plain
``def`` route it held one of the 40 threads every sync route shares, so 45 concurrent
publishes stalled ``/healthz`` and the staff API. Relay calls now run through ``gated``:

- in a pool of their own (``[hook] relay_threads``, default 8; an ``anyio``
  ``CapacityLimiter`` over anyio's worker threads), never in the request pool;
- at most one call in flight per seat (a server: the ``node_id`` a publish names; whoami's
  seat is its source address) and ``[hook] relay_per_ip`` (default 2) per source address;
- nothing waits in line: when the pool, the seat or the address is full the request is
  answered at once with 429 ``busy`` and ``Retry-After`` (``HookBusy``), which bm-hook
  retries until its deadline. Each refusal is counted (``bm_agent_hook_refusals_total``, by
  the API's error handler) and sampled into events (one per source address a minute).

The gate's counters are touched only on the event loop thread, so they need no lock. A
new relay route applies it in one line::

    return await gated(request, partial(relay.some_call, signed), seat=...)
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import Request

from agent.api.deps import client_ip
from agent.config import HookSettings
from agent.hook.event_sampler import EventSampler
from agent.hook.relay import HookRefusal
from agent.models import ACTOR_HOOK, EventKind

__all__ = ["RETRY_AFTER_S", "HookBusy", "HookGate", "gated", "publish_seat"]

T = TypeVar("T")

RETRY_AFTER_S = 2
_HEX64 = re.compile(r"[0-9a-f]{64}")


class HookBusy(HookRefusal):
    """429 ``busy``: the relay cannot take this call now; the hook retries after a pause."""

    def __init__(self, message: str, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(429, "busy", message)
        self.retry_after_s = retry_after_s


class HookGate:
    """Bound the relay's calls: a pool of its own, per-seat and per-address caps, no queue."""

    def __init__(self, *, threads: int, per_source_ip: int, per_seat: int = 1,
                 sampler: EventSampler | None = None) -> None:
        self._threads = threads
        self._per_source_ip = per_source_ip
        self._per_seat = per_seat
        self._sampler = sampler
        self._limiter = CapacityLimiter(threads)
        self._running = 0
        self._by_ip: Counter[str] = Counter()
        self._by_seat: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, settings: HookSettings,
                      sampler: EventSampler | None = None) -> HookGate:
        """Build the gate from ``[hook] relay_threads`` and ``relay_per_ip``."""
        return cls(threads=settings.relay_threads, per_source_ip=settings.relay_per_ip,
                   sampler=sampler)

    @property
    def running(self) -> int:
        """Relay calls in flight now."""
        return self._running

    async def run(self, call: Callable[[], T], *, source_ip: str, seat: str | None,
                  action: str) -> T:
        """Run ``call`` in the relay pool, or raise ``HookBusy`` at once when it is full."""
        self._admit(source_ip, seat, action)
        self._running += 1
        self._by_ip[source_ip] += 1
        if seat is not None:
            self._by_seat[seat] += 1
        try:
            # Never waits: admission keeps the calls in flight at most the limiter's size.
            return await anyio.to_thread.run_sync(call, limiter=self._limiter)
        finally:
            self._running -= 1
            _release(self._by_ip, source_ip)
            if seat is not None:
                _release(self._by_seat, seat)

    def _admit(self, source_ip: str, seat: str | None, action: str) -> None:
        if seat is not None and self._by_seat[seat] >= self._per_seat:
            self._refuse(source_ip, action, "a relay call for this server is already "
                         "in progress")
        if self._by_ip[source_ip] >= self._per_source_ip:
            self._refuse(source_ip, action, f"at most {self._per_source_ip} relay calls per "
                         "source address at a time")
        if self._running >= self._threads:
            self._refuse(source_ip, action, "the relay is busy with other servers")

    def _refuse(self, source_ip: str, action: str, message: str) -> None:
        if self._sampler is not None:
            self._sampler.record((source_ip, action, "busy"), actor=ACTOR_HOOK,
                                 kind=EventKind.DEEPLINK, action=action, server_uuid=None,
                                 result="busy", detail={"source_ip": source_ip,
                                                        "reason": message})
        raise HookBusy(f"{message}; retry in {RETRY_AFTER_S} s")


def _release(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


def publish_seat(body: bytes) -> str | None:
    """Return the ``node_id`` a publish body names (its seat), or None if it names none.

    Only a cheap peek for admission: the relay validates the body itself, in its order.
    """
    try:
        node_id = json.loads(body).get("node_id")
    except (ValueError, UnicodeDecodeError, AttributeError, RecursionError):
        return None
    return node_id if isinstance(node_id, str) and _HEX64.fullmatch(node_id) else None


async def gated(request: Request, call: Callable[[], T], *, seat: str | None = None) -> T:
    """Run a relay ``call`` for ``request`` through the app's ``HookGate``."""
    gate: HookGate = request.app.state.hook_gate
    action = request.url.path.rsplit("/", 1)[-1]
    return await gate.run(call, source_ip=client_ip(request), seat=seat, action=action)
