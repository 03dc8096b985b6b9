"""``RegistryWorker``: the registry's background thread.

At start it re-checks the stored values the node would run through ``sh -c``
(``Registry.recheck_stored_values``). It does the outbox work as it falls due (backoff
and jitter come from the store), wakes at once when the registry queues new work
(``Registry.set_wakeup``), re-scans every ``rescan_s`` for claims whose lease expired,
and checks drift every ``drift_every_s``.
It never dies of an error: each step is guarded, the error is logged (class and message;
agent and baremetal errors carry no secrets), recorded as a ``registry`` event when it
differs from the previous one, and the loop goes on after ``error_pause_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from agent.models import ACTOR_REGISTRY, EventKind
from agent.registry.service import OutboxRun, Registry

__all__ = ["RegistryWorker"]

_LOGGER = logging.getLogger(__name__)


class RegistryWorker:
    """Background thread: outbox work when due, drift every ``drift_every_s`` seconds."""

    def __init__(self, registry: Registry, *, drift_every_s: float = 300.0,
                 first_drift_s: float = 10.0, poll_s: float = 2.0, rescan_s: float = 60.0,
                 error_pause_s: float = 5.0, outbox_limit: int = 100) -> None:
        if drift_every_s <= 0 or poll_s <= 0:
            raise ValueError("drift_every_s and poll_s must be positive")
        self._registry = registry
        self._drift_every_s = drift_every_s
        self._first_drift_s = first_drift_s
        self._poll_s = poll_s
        self._rescan_s = rescan_s
        self._error_pause_s = error_pause_s
        self._limit = outbox_limit
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_errors: dict[str, str] = {}
        self.last_run: OutboxRun | None = None
        self.errors = 0

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Release a killed predecessor's claims and start the thread (idempotent)."""
        if self.running:
            return
        self._stop.clear()
        self._guard("recover", self._registry.recover)
        self._guard("start-up re-check", self._registry.recheck_stored_values)
        self._registry.set_wakeup(self.wake)
        self._thread = threading.Thread(target=self._loop, name="registry-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the thread to stop and wait for it (an in-flight node call ends first)."""
        self._stop.set()
        self._wake.set()
        self._registry.set_wakeup(None)
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                _LOGGER.warning("registry worker still busy after %.1f s", timeout_s)
        self._thread = None

    def wake(self) -> None:
        """Look at the outbox now (new work was queued)."""
        self._wake.set()

    def _loop(self) -> None:
        next_drift = time.monotonic() + self._first_drift_s
        next_rescan = 0.0
        while not self._stop.is_set():
            self._wake.clear()
            if self._outbox_due() or time.monotonic() >= next_rescan:
                next_rescan = time.monotonic() + self._rescan_s
                self._run_outbox()
            if self._stop.is_set():
                break
            if time.monotonic() >= next_drift:
                self._guard("drift check", self._registry.check_drift)
                next_drift = time.monotonic() + self._drift_every_s
            self._wake.wait(self._sleep_s(next_drift, next_rescan))

    def _run_outbox(self) -> None:
        while not self._stop.is_set():
            run = self._guard("outbox run", lambda: self._registry.process_outbox(
                limit=self._limit))
            if run is None:
                return
            self.last_run = run
            if run.claimed < self._limit or run.deferred or run.lost:
                return  # drained, or the node is struggling: let backoff decide

    def _outbox_due(self) -> bool:
        due = self._guard("outbox check", self._registry.next_due_at)
        return due is not None and due <= self._registry.clock()

    def _sleep_s(self, next_drift: float, next_rescan: float) -> float:
        now = time.monotonic()
        waits = [self._poll_s, next_drift - now, next_rescan - now]
        due = self._guard("outbox check", self._registry.next_due_at)
        if due is not None:
            waits.append(due - self._registry.clock())
        return max(0.01, min(waits))

    def _guard(self, what: str, step: Callable[[], Any]) -> Any:
        """Run one step; on any error log it, record it once, pause, and carry on."""
        try:
            result = step()
        except Exception as exc:  # the worker must outlive every failure
            self.errors += 1
            text = f"{what} failed: {type(exc).__name__}: {exc}"[:300]
            _LOGGER.error("registry worker: %s", text)
            self._record(what, text)
            self._stop.wait(self._error_pause_s)
            return None
        self._last_errors.pop(what, None)
        return result

    def _record(self, what: str, text: str) -> None:
        if self._last_errors.get(what) == text:
            return
        self._last_errors[what] = text
        try:
            self._registry.store.events.append(
                actor=ACTOR_REGISTRY, kind=EventKind.REGISTRY, action="worker_error",
                result="failed", detail={"step": what, "error": text})
        except Exception as exc:  # the store itself may be what fails
            _LOGGER.error("registry worker: cannot record the error: %s", type(exc).__name__)
