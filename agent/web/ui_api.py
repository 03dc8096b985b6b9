"""The dashboard's read endpoints: compact JSON the browser polls (ETag / If-None-Match).

- ``GET /ui/api/grid``: every server in one compact row (short keys, no secrets):
  ``u`` uuid, ``ip``, ``d`` description, ``l`` labels, ``st`` registration state, ``v``
  verdict, ``p`` power, ``b`` boot device, ``bp`` persistent, ``t`` last reading time,
  ``e`` IPMI error class, ``dl`` DeepLink (``f`` freshness, ``rot`` last rotation, ``res``
  last result, ``dup`` duplicate device code) or null. The ETag is a hash of the body, so
  an unchanged grid answers 304 with no body; the body is cached per store state, so
  50 polls per second of 500 servers stay cheap.
- ``GET /ui/api/servers/{uuid}``: the API's server detail shape (``ServerDetailOut``)
  plus the server's newest events, in one request.
- ``GET /ui/api/events``: a page of the event log (``kind``, ``server``, ``before``,
  ``limit``), newest first, the API's ``EventPageOut`` shape.

Reads only; a viewer may call them. Actions and imports go to the JSON API under /api/v1,
which checks the role and the CSRF token itself.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from agent.api.schemas import deeplink_out, event_out, intent_out, reading_out, server_row
from agent.auth import Authenticator
from agent.deeplink_status import deeplink_views, freshness
from agent.errors import ValidationError
from agent.models import EventKind, ServerStatus, Verdict
from agent.store import Store
from agent.web.access import api_principal

__all__ = ["GridCache", "build_ui_api_router", "grid_row"]

_HISTORY = 60
_EVENTS = 30


def grid_row(status: ServerStatus, deeplink: dict[str, Any] | None) -> dict[str, Any]:
    """Return one server's compact grid row."""
    server, reading, verdict = status.server, status.reading, status.verdict
    return {
        "u": server.uuid, "ip": server.ip, "d": server.desc, "l": dict(server.labels),
        "st": str(server.state),
        "v": str(verdict.verdict) if verdict else str(Verdict.UNKNOWN),
        "p": reading.power if reading else None,
        "b": reading.boot_device if reading else None,
        "bp": bool(reading.boot_persistent) if reading else False,
        "t": reading.ts if reading else None,
        "e": reading.error_class if reading else None,
        "dl": deeplink,
    }


def _deeplink_cells(store: Store) -> tuple[dict[int, dict[str, Any]], tuple[Any, ...]]:
    statuses = store.deeplink.all()
    dups = {d for d, uuids in store.deeplink.duplicate_device_ids().items() if len(uuids) > 1}
    cells = {s.server_id: {"f": freshness(s), "rot": s.last_rotated_at,
                           "res": s.last_result, "dup": bool(s.device_id in dups)}
             for s in statuses}
    return cells, tuple((s.server_id, s.updated_at, s.last_boot_seen_at) for s in statuses)


class GridCache:
    """The encoded grid body and its ETag, rebuilt only when the rows changed."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._rows: list[ServerStatus] = []  # held so the ids in _key cannot be reused
        self._body = b""
        self._etag = ""

    def get(self) -> tuple[bytes, str]:
        """Return (JSON body, strong ETag) for the current store state."""
        # One caller at a time: after a pass, the first rebuilds (~15 ms) and the others
        # then hit the cache, instead of all rebuilding at once and fighting for the GIL.
        with self._lock:
            rows = self._store.status.find()
            cells, dl_key = _deeplink_cells(self._store)
            # The status rows are immutable records shared from the store's cache: their
            # identities change exactly when the store rebuilt them.
            key = (tuple(id(r) for r in rows), dl_key)
            if key != self._key:
                servers = [grid_row(r, cells.get(r.server.id)) for r in rows]
                body = json.dumps({"servers": servers}, ensure_ascii=False,
                                  separators=(",", ":")).encode("utf-8")
                etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
                self._key, self._rows, self._body, self._etag = key, rows, body, etag
            return self._body, self._etag


def _with_now(body: bytes, now: float) -> bytes:
    # "now" lets the page show "12 s ago" without trusting the browser's clock; it is
    # spliced in after hashing so the ETag stays the same while nothing changed.
    return b'{"now":' + f"{now:.3f}".encode() + b"," + body[1:]


def _not_modified(request: Request, etag: str) -> bool:
    sent = request.headers.get("if-none-match", "")
    return etag in [part.strip() for part in sent.split(",")]


def _json(data: Any, *, etag: str | None = None) -> Response:
    headers = {"Cache-Control": "no-cache"}
    if etag:
        headers["ETag"] = etag
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, media_type="application/json", headers=headers)


def server_detail(store: Store, uuid: str, clock: Callable[[], float]) -> dict[str, Any]:
    """Return one server's detail with its newest events (the API detail shape + events)."""
    server = store.servers.get_by_uuid(uuid=uuid)
    data = server_row(store.status.get(server_id=server.id))
    data["intent"] = intent_out(store.intents.get(server_id=server.id))
    data["history"] = [reading_out(r) for r in store.checks.history(server_id=server.id,
                                                                    limit=_HISTORY)]
    data["deeplink"] = deeplink_out(deeplink_views(store, uuid=uuid)[0])
    data["events"] = [event_out(e) for e in store.events.page(server_uuid=uuid,
                                                             limit=_EVENTS).items]
    data["now"] = clock()
    return data


def _kinds(kind: str | None) -> list[EventKind] | None:
    if not kind or kind == "all":
        return None
    try:
        return [EventKind(part) for part in kind.split(",")]
    except ValueError:
        raise ValidationError(field="kind", reason="unknown event kind") from None


def build_ui_api_router(*, store: Store, auth: Authenticator,
                        clock: Callable[[], float] = time.time) -> APIRouter:
    """Return the router of the dashboard's read endpoints (paths start with /ui/api)."""
    router = APIRouter(prefix="/ui/api", include_in_schema=False)
    grid = GridCache(store, clock)

    @router.get("/grid")
    def grid_data(request: Request) -> Response:
        api_principal(auth, request)
        body, etag = grid.get()
        if _not_modified(request, etag):
            return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "no-cache"})
        return Response(_with_now(body, clock()), media_type="application/json",
                        headers={"ETag": etag, "Cache-Control": "no-cache"})

    @router.get("/servers/{uuid}")
    def detail_data(request: Request, uuid: str) -> Response:
        api_principal(auth, request)
        data = server_detail(store, uuid, clock)
        now = data.pop("now")
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
        etag = '"' + hashlib.blake2b(body.encode(), digest_size=12).hexdigest() + '"'
        if _not_modified(request, etag):
            return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "no-cache"})
        return _json({**data, "now": now}, etag=etag)

    @router.get("/events")
    def events_data(request: Request, kind: str | None = Query(None, max_length=80),
                    server: str | None = Query(None, max_length=64),
                    before: int | None = Query(None, ge=1),
                    limit: int = Query(50, ge=1, le=200)) -> Response:
        api_principal(auth, request)
        page = store.events.page(before_id=before, limit=limit, server_uuid=server or None,
                                 kinds=_kinds(kind))
        return _json({"items": [event_out(e) for e in page.items],
                      "next_before_id": page.next_before_id, "now": clock()})

    return router
