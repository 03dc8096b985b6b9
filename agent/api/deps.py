"""Dependencies shared by the routes: the agent, who is calling, their role, the raw body.

Authentication: ``Authorization: Bearer bmt_...`` (CLI, scripts; no CSRF needed: a browser
never sends it on its own), else the ``bm_session`` cookie (browser), whose state-changing
requests must carry the session's CSRF token in ``X-CSRF-Token``. Roles: ``Viewer`` reads,
``Operator`` acts on servers, ``Admin`` manages users.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, cast

from fastapi import Depends, Request
from starlette.exceptions import HTTPException

from agent.accounts.auth import Principal, require_role
from agent.api.errors import request_lang
from agent.api.proxies import forwarded_client, is_trusted
from agent.errors import AuthFailed
from agent.models import Role

if TYPE_CHECKING:
    from agent.app import Agent

__all__ = [
    "CSRF_HEADER",
    "MAX_BODY_BYTES",
    "MAX_ID",
    "SESSION_COOKIE",
    "Admin",
    "AgentDep",
    "Lang",
    "Operator",
    "RawBody",
    "Viewer",
    "client_ip",
    "current_principal",
    "get_agent",
    "raw_body",
    "request_target",
    "trusted_forwarded_for",
]

SESSION_COOKIE = "bm_session"
CSRF_HEADER = "X-CSRF-Token"
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_ID = 2**63 - 1  # SQLite's INTEGER range: larger ids are refused (422), not a 500
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in
# its thread pool, and each such hop waits for the GIL again when the monitor is busy.

async def get_agent(request: Request) -> Agent:
    """Return the Agent the app was created with."""
    return cast("Agent", request.app.state.agent)


async def _lang(request: Request) -> str:
    return request_lang(request)


AgentDep = Annotated["Agent", Depends(get_agent)]
Lang = Annotated[str, Depends(_lang)]


def trusted_forwarded_for(request: Request) -> str | None:
    """Return the client a trusted proxy names in ``X-Forwarded-For``, else None.

    None unless the TCP peer is in ``[api] trusted_proxies`` and sent the header; then the
    right-most address that is not itself a trusted proxy ("" when that entry is garbage).
    """
    trusted = request.app.state.agent.settings.api.trusted_proxies
    peer = request.client.host if request.client else ""
    values = request.headers.getlist("x-forwarded-for")
    if not trusted or not values or not is_trusted(peer, trusted):
        return None
    return forwarded_client(values, trusted)


def client_ip(request: Request) -> str:
    """Return the client's address: the TCP peer, or whom a trusted proxy forwarded for.

    uvicorn runs without proxy headers, so ``request.client`` is the real TCP peer; only a
    peer listed in ``[api] trusted_proxies`` may name another client (``agent.api.proxies``).
    """
    forwarded = trusted_forwarded_for(request)
    if forwarded is not None:
        return forwarded
    return request.client.host if request.client else ""


def current_principal(request: Request, agent: AgentDep) -> Principal:
    """Authenticate the request (bearer token, else session cookie + CSRF on writes)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return agent.auth.authenticate_token(value.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        principal = agent.auth.authenticate_session(cookie)
        if request.method in _UNSAFE_METHODS:
            agent.auth.check_csrf(principal, request.headers.get(CSRF_HEADER))
        return principal
    raise AuthFailed("no credentials")


def _require(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def dependency(principal: Annotated[Principal, Depends(current_principal)]
                         ) -> Principal:
        require_role(principal.user, role)
        return principal
    dependency.__name__ = f"require_{role}"
    return dependency


Viewer = Annotated[Principal, Depends(_require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(_require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(_require(Role.ADMIN))]


async def raw_body(request: Request) -> bytes:
    """Read the request body as bytes (at most MAX_BODY_BYTES, else 413)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413)
        chunks.append(chunk)
    return b"".join(chunks)


RawBody = Annotated[bytes, Depends(raw_body)]


def request_target(request: Request) -> str:
    """Return the request target exactly as sent: raw path, plus ``?`` and the raw query."""
    raw = request.scope.get("raw_path") or request.url.path.encode("ascii")
    query = request.scope.get("query_string", b"")
    target = raw.decode("latin-1")
    return f"{target}?{query.decode('latin-1')}" if query else target


