"""The dashboard's read endpoints: compact JSON the browser polls (ETag / If-None-Match).

- ``GET /ui/api/grid``: every server in one compact row (``agent.web.grid_cache``), gzip
  when accepted, the server time in ``X-Server-Time``. The ETag is a hash of the body, so
  an unchanged grid answers 304 with no body; the body is built off the request path, so
  50 polls per second of 500 servers stay cheap. A poll without ``If-None-Match`` (the
  page's first, and the one after a staff action) asks for a fresh monitor pass when the
  last one is older than ``FRESH_S``; ``X-Pass-Asked`` then says since when one is pending
  (the page marks readings older than that and polls again soon).
- ``GET /ui/api/servers/{uuid}``: the API's server detail shape (``ServerDetailOut``)
  plus the server's newest events, in one request (``UiServerDetailOut``).
- ``GET /ui/api/events``: a page of the event log (``kind``, ``server``, ``before``,
  ``limit``), newest first, the API's ``EventPageOut`` shape (``UiEventPageOut``).
  ``before`` stays in SQLite's integer range (a larger one is 422, not an overflow into
  SQLite and a 500).

Reads only; a viewer may call them. Actions and imports go to the JSON API under /api/v1,
which checks the role and the CSRF token itself.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from agent.api.deps import MAX_ID
from agent.api.schemas import EventOut, EventPageOut, ServerDetailOut
from agent.errors import ValidationError
from agent.models import EventKind
from agent.web.access import api_principal
from agent.web.grid_cache import GridCache
from agent.web.shapes import UiEventPageOut, UiServerDetailOut

if TYPE_CHECKING:
    from agent.app import Agent

__all__ = ["build_ui_api_router", "server_detail"]

_HISTORY = 60
_EVENTS = 30


def _not_modified(request: Request, etag: str) -> bool:
    sent = request.headers.get("if-none-match", "")
    return etag in [part.strip() for part in sent.split(",")]


def _json(data: Any, *, etag: str | None = None) -> Response:
    headers = {"Cache-Control": "no-cache"}
    if etag:
        headers["ETag"] = etag
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, media_type="application/json", headers=headers)


def server_detail(agent: Agent, uuid: str, clock: Callable[[], float]) -> UiServerDetailOut:
    """Return one server's detail with its newest events (the API detail shape + events)."""
    found = agent.server_detail(uuid, history=_HISTORY)
    detail = ServerDetailOut.from_detail(found, agent.rental_view(found.status.server.node_id))
    events = agent.events_page(server_uuid=uuid, limit=_EVENTS).items
    return UiServerDetailOut(**dict(detail), events=[EventOut.from_record(e) for e in events],
                             now=clock())


def _kinds(kind: str | None) -> list[EventKind] | None:
    if not kind or kind == "all":
        return None
    try:
        return [EventKind(part) for part in kind.split(",")]
    except ValueError:
        raise ValidationError(field="kind", reason="unknown event kind") from None


def build_ui_api_router(*, agent: Agent,
                        clock: Callable[[], float] = time.time) -> APIRouter:
    """Return the router of the dashboard's read endpoints (paths start with /ui/api)."""
    router = APIRouter(prefix="/ui/api", include_in_schema=False)
    auth = agent.auth
    grid = GridCache(agent)

    @router.get("/grid")
    def grid_data(request: Request) -> Response:
        api_principal(auth, request)
        now = clock()
        asked = grid.request_pass(now) if "if-none-match" not in request.headers else None
        current = grid.get()
        # The server's clock in a header: the page shows "12 s ago" without trusting the
        # browser's clock, and the body (and its ETag) stays the same while nothing changed.
        headers = {"ETag": current.etag, "Cache-Control": "no-cache",
                   "Vary": "Accept-Encoding", "X-Server-Time": f"{now:.3f}"}
        if asked is not None:
            headers["X-Pass-Asked"] = f"{asked:.3f}"
        if _not_modified(request, current.etag):
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(current.gzipped, media_type="application/json", headers=headers)
        return Response(current.body, media_type="application/json", headers=headers)

    @router.get("/servers/{uuid}")
    def detail_data(request: Request, uuid: str) -> Response:
        api_principal(auth, request)
        data = server_detail(agent, uuid, clock)
        # The ETag covers what the server says, not the clock: unchanged detail answers 304.
        body = data.model_dump_json(exclude={"now"})
        etag = '"' + hashlib.blake2b(body.encode(), digest_size=12).hexdigest() + '"'
        if _not_modified(request, etag):
            return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "no-cache"})
        return _json(data.model_dump(mode="json"), etag=etag)

    @router.get("/events")
    def events_data(request: Request, kind: str | None = Query(None, max_length=80),
                    server: str | None = Query(None, max_length=64),
                    before: int | None = Query(None, ge=1, le=MAX_ID),
                    limit: int = Query(50, ge=1, le=200)) -> Response:
        api_principal(auth, request)
        page = agent.events_page(before_id=before, limit=limit, server_uuid=server or None,
                                 kinds=_kinds(kind))
        answer = UiEventPageOut(**dict(EventPageOut.from_page(page)), now=clock())
        return _json(answer.model_dump(mode="json"))

    return router
