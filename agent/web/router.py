"""The staff dashboard: ``build_web_router(agent)`` returns the routes under ``/ui`` (and ``/``).

Pages (HTML shells; the scripts fill them from JSON with ``textContent``): ``/ui/login``,
``/ui/`` (grid), ``/ui/servers/{uuid}``, ``/ui/audit``, ``/ui/import``, ``/ui/seats``,
``/ui/users`` (admins);
``POST /ui/login`` and ``POST /ui/logout`` are forms protected by CSRF tokens (a
double-submit cookie before login, the session's token after). Assets at
``/ui/static/<version>/<name>``; the dashboard's read endpoints at ``/ui/api/*`` (see
``agent.web.ui_api``). Actions, imports and seat approvals go to the JSON API under
``/api/v1``, which enforces roles and CSRF itself.

Sessions use the API's ``bm_session`` cookie (HttpOnly, SameSite=Strict, Secure over HTTPS or
when ``[api] secure_cookies`` or TLS is on).
Every answer carries a strict CSP (``'self'`` only, no inline script or style).
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from agent.accounts.auth import Principal
from agent.api.deps import SESSION_COOKIE, client_ip
from agent.errors import AgentError, AuthFailed, CsrfFailed, RateLimited, ServerNotFound
from agent.i18n import translate, translate_error
from agent.models import Role
from agent.secrets import Secret
from agent.web import bodies
from agent.web.access import (
    LOGIN_CSRF_COOKIE,
    cookie_secure,
    new_login_csrf,
    page_lang,
    remember_lang,
    secure,
    session_principal,
)
from agent.web.apidocs import build_docs_router
from agent.web.pages import STATIC, Page, render_login, render_page
from agent.web.ui_api import build_ui_api_router

if TYPE_CHECKING:
    from agent.app import Agent

__all__ = ["build_web_router"]

_LOGGER = logging.getLogger(__name__)
_MAX_FORM_FIELD = 512
_MAX_FORM_BYTES = 8192


def _safe_next(value: str | None) -> str:
    """Only same-site dashboard paths (and the login-gated /docs): never an open redirect."""
    if value == "/docs":
        return value
    if value and value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/"


async def _form(request: Request) -> dict[str, str]:
    """Parse a small urlencoded form (the only kind these pages send); last value wins."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            return {}
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return dict(pairs)


def _login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return secure(RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status_code=303))


def _session_cookie(request: Request, response: Response, value: str, *, max_age: int,
                    always_secure: bool) -> None:
    # The same attributes as POST /api/v1/auth/login (agent/api/routes_auth.py).
    response.set_cookie(SESSION_COOKIE, value, max_age=max_age, path="/", httponly=True,
                        samesite="strict",
                        secure=cookie_secure(request, always=always_secure))


class _Web:
    """The route handlers, bound to one agent."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.auth = agent.auth
        self.default_lang = agent.settings.ui.default_lang
        self.timezone = agent.settings.ui.timezone
        self.session_max_s = int(agent.settings.auth.session_max_s)
        self.always_secure = bool(agent.settings.api.always_secure_cookies)

    def lang(self, request: Request) -> str:
        return page_lang(request, self.default_lang)

    def page(self, request: Request, principal: Principal, page: Page,
             status: int = 200) -> Response:
        lang = self.lang(request)
        html = render_page(page, principal=principal, lang=lang, path=request.url.path,
                           query=dict(request.query_params), timezone=self.timezone)
        response = HTMLResponse(html, status_code=status)
        remember_lang(request, response)
        return secure(response)

    def login_form(self, request: Request, *, message: str = "", username: str = "",
                   next_url: str = "/ui/", status: int = 200) -> Response:
        lang = self.lang(request)
        token = new_login_csrf()
        html = render_login(lang=lang, csrf=token, next_url=_safe_next(next_url),
                            username=username, message=message,
                            query=dict(request.query_params))
        response = HTMLResponse(html, status_code=status)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, path="/ui/login",
                            httponly=True, samesite="strict",
                            secure=cookie_secure(request, always=self.always_secure))
        remember_lang(request, response)
        return secure(response)

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        fields = {k: form.get(k, "")[:_MAX_FORM_FIELD]
                  for k in ("username", "password", "csrf_token", "next")}
        lang = self.lang(request)
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(expected, fields["csrf_token"]):
            return self.login_form(request, message=translate("ui.login_expired", lang),
                                   username=fields["username"], next_url=fields["next"],
                                   status=403)
        try:
            user = await run_in_threadpool(
                self.auth.login, name=fields["username"].strip(),
                password=Secret(fields["password"]), source_ip=client_ip(request))
            issued = await run_in_threadpool(self.auth.open_session, user=user)
        except RateLimited as exc:
            return self.login_form(request, message=translate_error(exc, lang),
                                   username=fields["username"], next_url=fields["next"],
                                   status=429)
        except AuthFailed:
            return self.login_form(request, message=translate("ui.login_failed", lang),
                                   username=fields["username"], next_url=fields["next"],
                                   status=401)
        response = RedirectResponse(_safe_next(fields["next"]), status_code=303)
        _session_cookie(request, response, issued.cookie.reveal(), max_age=self.session_max_s,
                        always_secure=self.always_secure)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui/login")
        return secure(response)

    async def logout(self, request: Request) -> Response:
        form = await _form(request)
        principal = await run_in_threadpool(session_principal, self.auth, request)
        if principal is not None:
            try:
                self.auth.check_csrf(principal, str(form.get("csrf_token", "")))
            except CsrfFailed:
                return secure(Response(status_code=403))
            await run_in_threadpool(self.auth.close_session,
                                    request.cookies.get(SESSION_COOKIE, ""))
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return secure(response)

    def signed_in(self, request: Request) -> Principal | None:
        return session_principal(self.auth, request)

    def server_exists(self, uuid: str) -> bool:
        try:
            self.agent.server(uuid)
        except (ServerNotFound, AgentError):
            return False
        return True


def _static(version: str, name: str) -> Response:
    del version  # any version serves the current file: the page names the current one
    asset = STATIC.get(name)
    if asset is None:
        return secure(Response(status_code=404))
    return secure(Response(asset.body, media_type=asset.media_type),
                  cache="public, max-age=31536000, immutable")


def _add_pages(router: APIRouter, web: _Web) -> None:
    @router.get("/ui/", response_class=HTMLResponse)
    def grid(request: Request) -> Response:
        principal = web.signed_in(request)
        if principal is None:
            return _login_redirect(request)
        return web.page(request, principal, bodies.grid_page(principal, web.lang(request)))

    @router.get("/ui/servers/{uuid}", response_class=HTMLResponse)
    def detail(request: Request, uuid: str) -> Response:
        principal = web.signed_in(request)
        if principal is None:
            return _login_redirect(request)
        page = bodies.seat_page(principal, web.lang(request), uuid)
        return web.page(request, principal, page, 200 if web.server_exists(uuid) else 404)

    @router.get("/ui/audit", response_class=HTMLResponse)
    def audit(request: Request) -> Response:
        principal = web.signed_in(request)
        if principal is None:
            return _login_redirect(request)
        return web.page(request, principal, bodies.audit_page(web.lang(request)))

    @router.get("/ui/users", response_class=HTMLResponse)
    def users(request: Request) -> Response:
        principal = web.signed_in(request)
        if principal is None:
            return _login_redirect(request)
        lang = web.lang(request)
        if principal.user.role != Role.ADMIN:
            return web.page(request, principal, bodies.forbidden_page(lang, "users", "ui.users"),
                            403)
        return web.page(request, principal, bodies.users_page(principal, lang))

    @router.get("/ui/seats", response_class=HTMLResponse)
    def seats(request: Request) -> Response:
        principal = web.signed_in(request)
        if principal is None:
            return _login_redirect(request)
        return web.page(request, principal, bodies.seats_page(principal, web.lang(request)))

    @router.get("/ui/import", response_class=HTMLResponse)
    def import_(request: Request) -> Response:
        principal = web.signed_in(request)
        if principal is None:
            return _login_redirect(request)
        return web.page(request, principal, bodies.import_page(principal, web.lang(request)))

    @router.get("/ui/help/operations", response_class=HTMLResponse)
    def manual(request: Request) -> Response:
        principal = web.signed_in(request)
        if principal is None:
            return _login_redirect(request)
        return web.page(request, principal, bodies.manual_page(web.lang(request)))


def _add_session_routes(router: APIRouter, web: _Web) -> None:
    @router.get("/ui/login", response_class=HTMLResponse)
    def login_page(request: Request) -> Response:
        if web.signed_in(request) is not None:
            return secure(RedirectResponse(_safe_next(request.query_params.get("next")),
                                           status_code=303))
        return web.login_form(request, next_url=request.query_params.get("next", "/ui/"))

    @router.post("/ui/login", response_class=HTMLResponse)
    async def login_submit(request: Request) -> Response:
        return await web.login(request)

    @router.post("/ui/logout")
    async def logout(request: Request) -> Response:
        return await web.logout(request)


def build_web_router(agent: Agent) -> APIRouter:
    """Return the dashboard's routes (full paths: include without a prefix)."""
    router = APIRouter(include_in_schema=False)
    web = _Web(agent)

    @router.get("/")
    def root() -> Response:
        return secure(RedirectResponse("/ui/", status_code=303))

    @router.get("/ui")
    def ui_root() -> Response:
        return secure(RedirectResponse("/ui/", status_code=303))

    router.add_api_route("/ui/static/{version}/{name}", _static, methods=["GET"])
    _add_session_routes(router, web)
    _add_pages(router, web)
    router.include_router(build_ui_api_router(agent=agent))
    router.include_router(build_docs_router(agent.auth))
    return router
