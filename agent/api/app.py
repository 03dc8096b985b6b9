"""``create_app(agent)``: the FastAPI application of bm-agent (API, hook relay, dashboard).

- JSON API under ``/api/v1`` (OpenAPI at ``/openapi.json``; Swagger UI at ``/docs`` comes
  with the dashboard, from the package and behind its login: ``agent.web.apidocs``; no
  ReDoc), ``/healthz``, ``/metrics``; the boot-hook relay under ``/api/v1/hook``;
- the dashboard (``agent.web.build_web_router``, issue 5) under ``/ui`` when installed;
- one error mapping for everything (``agent.api.errors``);
- every request observed by ``Metrics.observe_http`` (route template, status, seconds).

Routes are plain ``def``: the store and IPMI are blocking, so FastAPI runs them in its
thread pool. ``background=True`` (``bm-agent serve``) starts the monitor, the registry
worker and housekeeping with the app and stops them (and closes the agent) at shutdown;
tests and tools leave it False and manage the agent themselves.

Serve it with uvicorn's ``proxy_headers=False``: the hook relay trusts the TCP peer address,
which an ``X-Forwarded-For`` header must never override. (uvicorn's own option would trust
any header from its ``forwarded_allow_ips`` and take the left-most hop; ``[api]
trusted_proxies`` is applied instead by ``agent.api.deps.client_ip``, right-most first.)
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.api import (
    routes_actions,
    routes_auth,
    routes_deeplink,
    routes_events,
    routes_hook,
    routes_seats,
    routes_servers,
    routes_system,
    routes_users,
)
from agent.api.errors import install_error_handlers
from agent.api.hook_gate import HookGate
from agent.api.rendering import RowRenderer
from agent.api.schemas import ErrorOut

if TYPE_CHECKING:
    from agent.app import Agent
    from agent.metrics import Metrics

__all__ = ["API_PREFIX", "create_app", "route_template"]

API_PREFIX = "/api/v1"
_DESCRIPTION = (
    "bm-agent: inventory, registration with the DBC bare-metal node, IPMI cross-checks, "
    "staff actions and the DeepLink hook relay of a cloud internet café.\n\n"
    "Authenticate with `Authorization: Bearer <token>` (POST /api/v1/auth/tokens) or the "
    "session cookie of POST /api/v1/auth/login (then send `X-CSRF-Token` on writes). "
    "Errors are `{\"error\": {\"code\", \"message\"}}`; messages follow `?lang=` or "
    "`Accept-Language` (zh_CN or en)."
)


class _ObserveHttp:
    """Pure ASGI middleware: report (route template, status, seconds) of every request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, send_observed)
        finally:
            self._metrics.observe_http(route_template(scope), status,
                                       time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """Return the matched route's template (``/api/v1/servers/{uuid}``), else "unmatched".

    Rebuilt from the path and its parameters: routes of included routers only know their
    path relative to their router. Labels stay bounded: one per route, never a raw path.
    """
    if scope.get("route") is None:
        return "unmatched"
    parts = str(scope.get("path", "")).split("/")
    for name, value in dict(scope.get("path_params") or {}).items():
        for index in range(len(parts) - 1, 0, -1):
            if parts[index] == str(value):
                parts[index] = "{" + name + "}"
                break
    return "/".join(parts)


def _api_router() -> APIRouter:
    # Documented on every route, in the one error shape: malformed body (400), no or bad
    # credentials (401), role too low or CSRF (403), unknown id (404), refused value (422),
    # store busy (503).
    router = APIRouter(prefix=API_PREFIX, responses={
        status: {"model": ErrorOut} for status in (400, 401, 403, 404, 422, 503)})
    for module in (routes_auth, routes_users, routes_servers, routes_actions, routes_events,
                   routes_deeplink, routes_hook, routes_seats):
        router.include_router(module.router)
    router.include_router(routes_system.api_router)
    return router


def _web_router(agent: Agent) -> APIRouter | None:
    """Return the dashboard's router (issue 5) when the ``agent.web`` package is present."""
    if importlib.util.find_spec("agent.web") is None:
        return None
    from agent.web import build_web_router

    return build_web_router(agent)


def create_app(agent: Agent, *, background: bool = False) -> FastAPI:
    """Build the application around ``agent``; start background work only if asked."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if background:
            agent.start_background()
        try:
            yield
        finally:
            if background:
                agent.stop()

    # FastAPI's own /docs and /redoc load their scripts from a CDN: off (agent.web.apidocs).
    app = FastAPI(title="bm-agent", version="1", description=_DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None,
                  swagger_ui_oauth2_redirect_url=None)
    app.state.agent = agent
    app.state.default_lang = agent.settings.ui.default_lang
    app.state.row_renderer = RowRenderer()
    app.state.hook_gate = HookGate.from_settings(
        agent.settings.hook, agent.hook_relay.event_sampler if agent.hook_relay else None)
    install_error_handlers(app)
    app.include_router(routes_system.root_router)
    app.include_router(_api_router())
    web = _web_router(agent)
    if web is not None:
        app.include_router(web)
    app.add_middleware(_ObserveHttp, metrics=agent.metrics)
    return app
