"""Sampled events: a flood of the same refusal becomes one row a minute, with a count.

A signed hook request from the wrong address, or one the node keeps failing, used to write
one event row each (432 rows/s under a flood, never pruned). ``EventSampler.record`` writes
the first event of a key (e.g. (server, code)) at once, then only counts repeats for
``window_s``; the next event after the window, or ``flush_due()`` (called by housekeeping),
writes one row carrying ``repeats``: how many were suppressed since the previous row. Every
sampled row has ``"sampled": true`` in its detail, which is what ``[retention]
refusals_days`` prunes by (``EventRepo.prune_sampled``).

Memory stays bounded: at most ``max_keys`` keys; when full, a new key is counted under one
overflow key per (action, result) instead. Thread-safe (the relay runs in worker threads).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.errors import AgentError
from agent.models import EventKind
from agent.store import Store

__all__ = ["SAMPLE_WINDOW_S", "EventSampler"]

_LOGGER = logging.getLogger(__name__)

SAMPLE_WINDOW_S = 60.0
_MAX_KEYS = 4096
_OVERFLOW = "(many)"


@dataclass
class _Pending:
    """What a key last wrote, and the repeats seen since."""

    written_at: float
    repeats: int = 0
    last: dict[str, Any] = field(default_factory=dict)


class EventSampler:
    """Write at most one event per key per window; count the rest into the next one."""

    def __init__(self, store: Store, *, window_s: float = SAMPLE_WINDOW_S,
                 max_keys: int = _MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._window_s = window_s
        self._max_keys = max_keys
        self._clock = clock
        self._keys: dict[Hashable, _Pending] = {}
        self._lock = threading.Lock()

    def record(self, key: Hashable, *, actor: str, kind: EventKind, action: str,
               server_uuid: str | None, result: str,
               detail: Mapping[str, Any] | None = None) -> bool:
        """Sample one event under ``key``; return True when a row was written now."""
        event = {"actor": actor, "kind": kind, "action": action, "server_uuid": server_uuid,
                 "result": result, "detail": dict(detail or {})}
        now = self._clock()
        with self._lock:
            key = self._admit(key, action, result, now)
            if key not in self._keys:
                self._keys[key] = _Pending(written_at=now)
                repeats = 0
            else:
                pending = self._keys[key]
                if now - pending.written_at < self._window_s:
                    pending.repeats += 1
                    pending.last = event
                    return False
                repeats, pending.repeats, pending.written_at = pending.repeats, 0, now
                pending.last = {}
        self._write(event, repeats)
        return True

    def flush_due(self) -> int:
        """Write the counted repeats of every key whose window has passed; forget idle keys."""
        now = self._clock()
        due: list[tuple[dict[str, Any], int]] = []
        with self._lock:
            for key, pending in list(self._keys.items()):
                if now - pending.written_at < self._window_s:
                    continue
                if pending.repeats:
                    due.append((pending.last, pending.repeats))
                    pending.repeats, pending.written_at, pending.last = 0, now, {}
                else:
                    del self._keys[key]
        for event, repeats in due:
            self._write(event, repeats)
        return len(due)

    def _admit(self, key: Hashable, action: str, result: str, now: float) -> Hashable:
        if key in self._keys or len(self._keys) < self._max_keys:
            return key
        for old, pending in list(self._keys.items()):
            if not pending.repeats and now - pending.written_at >= self._window_s:
                del self._keys[old]
        if len(self._keys) < self._max_keys:
            return key
        return (_OVERFLOW, action, result)

    def _write(self, event: dict[str, Any], repeats: int) -> None:
        detail = {**event["detail"], "sampled": True, "repeats": repeats}
        try:
            self._store.events.append(actor=event["actor"], kind=event["kind"],
                                      action=event["action"], server_uuid=event["server_uuid"],
                                      result=event["result"][:100], detail=detail)
        except AgentError as exc:
            _LOGGER.warning("cannot record a sampled %s event: %s", event["action"],
                            exc.message())
