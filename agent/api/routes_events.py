"""The event log, newest first, keyset-paged: ``/api/v1/events`` and ``/api/v1/audit``.

Pass ``before_id=<next_before_id>`` of one page to get the next; ``next_before_id`` is null
on the last page. Filters: ``kind`` (repeatable), ``server`` (uuid), ``action``, ``since``.
"""

from __future__ import annotations

from fastapi import APIRouter, Query

from agent.api.deps import MAX_ID, AgentDep, Viewer
from agent.api.schemas import ErrorOut, EventPageOut
from agent.models import EventKind

__all__ = ["router"]

# A sane range for ``since`` (to the year 2286): inf, nan and 1e400 are refused (422).
MAX_UNIX_S = 10**10

router = APIRouter(tags=["events"], responses={401: {"model": ErrorOut}, 422: {"model": ErrorOut}})


def _page(agent: AgentDep, kinds: list[EventKind], before_id: int | None, limit: int,
          server: str | None, action: str | None, since: float | None) -> EventPageOut:
    page = agent.events_page(before_id=before_id, limit=limit, server_uuid=server,
                             kinds=kinds or None, action=action, since_ts=since)
    return EventPageOut.from_page(page)


@router.get("/events", response_model=EventPageOut)
def events(_viewer: Viewer, agent: AgentDep,
           kind: list[EventKind] = Query(default=[]),  # noqa: B008
           before_id: int | None = Query(None, ge=1, le=MAX_ID),
           limit: int = Query(50, ge=1, le=500),
           server: str | None = Query(None, max_length=64),
           action: str | None = Query(None, max_length=64),
           since: float | None = Query(None, ge=0, le=MAX_UNIX_S, allow_inf_nan=False,
                                       description="Unix seconds")) -> EventPageOut:
    """Return a page of events (every kind unless filtered)."""
    return _page(agent, kind, before_id, limit, server, action, since)


@router.get("/audit", response_model=EventPageOut)
def audit(_viewer: Viewer, agent: AgentDep,
          before_id: int | None = Query(None, ge=1, le=MAX_ID),
          limit: int = Query(50, ge=1, le=500),
          server: str | None = Query(None, max_length=64),
          action: str | None = Query(None, max_length=64),
          since: float | None = Query(None, ge=0, le=MAX_UNIX_S, allow_inf_nan=False,
                                      description="Unix seconds")) -> EventPageOut:
    """Return a page of the audit log: staff actions (who, what, when, result)."""
    return _page(agent, [EventKind.AUDIT], before_id, limit, server, action, since)
