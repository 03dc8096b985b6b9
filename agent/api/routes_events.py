"""The event log, newest first, keyset-paged: ``/api/v1/events`` and ``/api/v1/audit``.

Pass ``before_id=<next_before_id>`` of one page to get the next; ``next_before_id`` is null
on the last page. Filters (all optional, combined with AND): ``kind`` (repeatable),
``server`` (an exact uuid), ``seat`` (part of a uuid, description or label value: ``B04``
finds ``PC-B04``), ``actor`` (a person, any case), ``action`` (an action or a family:
``power`` matches ``power_on``...; an unknown one is 400 with the list of families),
``from``/``to`` (ISO-8601; without an offset in the café's zone, see
``agent.event_filters``), ``since`` (Unix seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Query

from agent.api.deps import MAX_ID, AgentDep, Viewer
from agent.api.schemas import ErrorOut, EventPageOut
from agent.event_filters import cafe_zone, parse_instant
from agent.models import EventKind

if TYPE_CHECKING:
    from agent.app import Agent

__all__ = ["router"]

# A sane range for ``since`` (to the year 2286): inf, nan and 1e400 are refused (422).
MAX_UNIX_S = 10**10

router = APIRouter(tags=["events"], responses={400: {"model": ErrorOut},
                                               401: {"model": ErrorOut},
                                               422: {"model": ErrorOut}})


@dataclass
class EventFilters:
    """The query parameters both routes share."""

    before_id: int | None = Query(None, ge=1, le=MAX_ID)
    limit: int = Query(50, ge=1, le=500)
    server: str | None = Query(None, max_length=64, description="an exact server uuid")
    seat: str | None = Query(None, max_length=64,
                             description="part of a uuid, description or label value")
    actor: str | None = Query(None, max_length=64, description="who did it (a user name)")
    action: str | None = Query(None, max_length=64,
                               description="an action (power_on) or a family (power)")
    from_: str | None = Query(None, alias="from", max_length=40,
                              description="ISO-8601 date or date-time, inclusive")
    to: str | None = Query(None, max_length=40,
                           description="ISO-8601 date (whole day) or date-time, exclusive")
    since: float | None = Query(None, ge=0, le=MAX_UNIX_S, allow_inf_nan=False,
                                description="Unix seconds")


def _page(agent: Agent, kinds: list[EventKind], f: EventFilters) -> EventPageOut:
    zone = cafe_zone(agent.settings)
    since = f.since
    if f.from_:
        start = parse_instant(f.from_, field="from", zone=zone)
        since = start if since is None else max(since, start)
    until = parse_instant(f.to, field="to", zone=zone, end_of_day=True) if f.to else None
    page = agent.events_page(before_id=f.before_id, limit=f.limit, server_uuid=f.server,
                             kinds=kinds or None, action=f.action, since_ts=since,
                             until_ts=until, seat=f.seat, actor=f.actor)
    return EventPageOut.from_page(page)


@router.get("/events", response_model=EventPageOut)
def events(_viewer: Viewer, agent: AgentDep,
           kind: list[EventKind] = Query(default=[]),  # noqa: B008
           filters: EventFilters = Depends()) -> EventPageOut:  # noqa: B008
    """Return a page of events (every kind unless filtered)."""
    return _page(agent, kind, filters)


@router.get("/audit", response_model=EventPageOut)
def audit(_viewer: Viewer, agent: AgentDep,
          filters: EventFilters = Depends()) -> EventPageOut:  # noqa: B008
    """Return a page of the audit log: staff actions (who, what, when, result)."""
    return _page(agent, [EventKind.AUDIT], filters)
