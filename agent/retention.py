"""What housekeeping deletes, and when: ``prune_old_records(store, settings)``.

- events older than ``[retention] events_days`` (default 90), except audit events (staff
  actions), which the store never deletes;
- sampled events (hook refusals and failures, ``agent.hook.event_sampler``) older than
  ``[retention] refusals_days`` (default 7);
- hook nonces older than twice ``[hook] replay_window_s`` (plus a minute): a replay that
  old fails the timestamp check anyway;
- readings beyond ``[store] readings_per_server`` per server (the monitor prunes as it
  writes; this catches a lowered setting).

The agent runs it at the first housekeeping tick and then every 10 minutes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from agent.config import Settings
from agent.models import EventKind
from agent.store import Store

__all__ = ["PruneCounts", "prune_old_records"]

DAY_S = 86400.0
_NONCE_SLACK_S = 60.0
_PRUNABLE_KINDS = tuple(k for k in EventKind if k != EventKind.AUDIT)


@dataclass(frozen=True)
class PruneCounts:
    """Rows deleted by one ``prune_old_records``."""

    events: int
    refusals: int
    nonces: int
    readings: int


def prune_old_records(store: Store, settings: Settings, *, now: float | None = None
                      ) -> PruneCounts:
    """Delete what is older than the retention settings; return how many of each."""
    now = time.time() if now is None else now
    retention = settings.retention
    refusals = store.events.prune_sampled(older_than=now - retention.refusals_days * DAY_S)
    events = store.events.prune(older_than=now - retention.events_days * DAY_S,
                                kinds=_PRUNABLE_KINDS)
    nonces = store.nonces.prune(
        older_than=now - 2 * settings.hook.replay_window_s - _NONCE_SLACK_S)
    readings = store.checks.prune_history(keep_per_server=settings.store.readings_per_server)
    return PruneCounts(events=events, refusals=refusals, nonces=nonces, readings=readings)
