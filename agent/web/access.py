"""Who is looking at a dashboard page, in which language, and the headers every answer gets.

- ``page_lang(request, default)``: ``?lang=`` (zh/en spellings), else the ``bm_lang`` cookie,
  else the configured default (zh_CN);
- ``session_principal(auth, request)``: the staff user behind the session cookie, or None;
- ``api_principal(auth, request)``: a session cookie or an ``Authorization: Bearer`` token,
  else ``AuthFailed`` (401 JSON through the API's error handlers);
- ``check_form_csrf(auth, principal, presented)``: the session's CSRF token must come back
  with every state-changing form (hidden field) or fetch (``X-CSRF-Token``);
- ``secure(response)``: CSP (``'self'`` only: no inline script, no inline style), no
  framing, no sniffing, no referrer to other sites, no caching of pages.
"""

from __future__ import annotations

import secrets

from fastapi import Request
from starlette.responses import Response

from agent.accounts.auth import Authenticator, Principal
from agent.api.deps import SESSION_COOKIE
from agent.errors import AuthFailed
from agent.i18n import normalize_lang
from agent.models import Role

__all__ = [
    "CSP",
    "LANG_COOKIE",
    "LOGIN_CSRF_COOKIE",
    "SESSION_COOKIE",
    "api_principal",
    "can_act",
    "can_import",
    "cookie_secure",
    "new_login_csrf",
    "page_lang",
    "remember_lang",
    "secure",
    "session_principal",
]

LANG_COOKIE = "bm_lang"
LOGIN_CSRF_COOKIE = "bm_login_csrf"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def secure(response: Response, *, cache: str = "no-store") -> Response:
    """Add the security headers (and a Cache-Control) to ``response``; return it."""
    for name, value in _HEADERS.items():
        response.headers[name] = value
    response.headers["Cache-Control"] = cache
    return response


def page_lang(request: Request, default: str) -> str:
    """Return the page language: query, then cookie, then ``default``."""
    return (normalize_lang(request.query_params.get("lang"))
            or normalize_lang(request.cookies.get(LANG_COOKIE))
            or normalize_lang(default) or "zh_CN")


def cookie_secure(request: Request, *, always: bool = False) -> bool:
    """Mark cookies Secure over HTTPS, behind a TLS proxy, or when configured (``always``)."""
    return always or request.url.scheme == "https" or \
        request.headers.get("x-forwarded-proto", "").lower() == "https"


def remember_lang(request: Request, response: Response) -> None:
    """Persist an explicit ``?lang=`` choice in a cookie (one year)."""
    chosen = normalize_lang(request.query_params.get("lang"))
    if chosen and chosen != request.cookies.get(LANG_COOKIE):
        response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, path="/",
                            httponly=True, samesite="lax", secure=cookie_secure(request))


def session_principal(auth: Authenticator, request: Request) -> Principal | None:
    """Return the principal of the session cookie, or None (missing, expired, revoked)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        return auth.authenticate_session(cookie)
    except AuthFailed:
        return None


def api_principal(auth: Authenticator, request: Request) -> Principal:
    """Return the caller of a dashboard JSON read (session or bearer) or raise AuthFailed."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return auth.authenticate_token(header[7:].strip())
    principal = session_principal(auth, request)
    if principal is None:
        raise AuthFailed("no session")
    return principal


def can_act(principal: Principal) -> bool:
    """Operators and admins may power servers and set boot devices."""
    return principal.user.role.allows(Role.OPERATOR)


def can_import(principal: Principal) -> bool:
    """Operators and admins may import servers."""
    return principal.user.role.allows(Role.OPERATOR)


def new_login_csrf() -> str:
    """Return a fresh token for the login form (double-submit: cookie + hidden field)."""
    return secrets.token_urlsafe(24)
