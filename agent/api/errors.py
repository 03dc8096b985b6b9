"""The API's one error mapping: every exception becomes ``{"error": {"code", "message"}}``.

- ``AgentError`` leaves answer with their ``code`` and the status ``_AGENT_STATUS`` maps their
  class to (the most specific class of the MRO that is listed wins; domain errors carry no
  HTTP status); the message is ``agent.i18n`` text in the request's language (``?lang=``,
  else ``Accept-Language``, else ``[ui] default_lang``). ``RateLimited`` adds ``Retry-After``.
- ``BaremetalError`` leaves (node and BMC failures that reach a route) are mapped by
  ``_BAREMETAL`` below: the node unreachable or wrong is 502, a BMC that does not answer 503.
- The boot-hook relay's refusals (``HookRefused``: ``relay.HookRefusal``...) keep the
  contract's status (their own ``status``), code and English message exactly
  (tests/contract/hook_relay.json); each is counted by code in
  ``bm_agent_hook_refusals_total``, and 429 ``busy`` carries ``Retry-After``.
- FastAPI's request validation and Starlette's HTTP errors (unknown route, wrong method) get
  the same shape. Validation answers name the field, never echo the value sent: it may be a
  password.
- Anything else is logged with its traceback and answered 500 ``internal_error``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.errors import (
    AgentError,
    AuthFailed,
    BadSignature,
    Conflict,
    HookAuthError,
    HookRefused,
    NotFound,
    PermissionDenied,
    RateLimited,
    RegistryError,
    ReplayedRequest,
    SeatRented,
    StoreBusy,
    StoreFull,
    UnknownActionFamily,
    ValidationError,
    WrongSourceIp,
)
from agent.i18n import DEFAULT_LANG, normalize_lang, translate, translate_error
from baremetal import errors as bm

__all__ = ["agent_error_status", "baremetal_status", "error_body", "error_class_status",
           "install_error_handlers", "request_lang"]

_LOGGER = logging.getLogger(__name__)

# AgentError class -> HTTP status; a class not listed takes its nearest listed ancestor's
# (its MRO, most specific first), the root's 500 at worst. HookRefused answers its own status.
_AGENT_STATUS: dict[type[AgentError], int] = {
    AgentError: 500,
    StoreFull: 507,
    StoreBusy: 503,
    NotFound: 404,
    Conflict: 409,
    PermissionDenied: 403,
    AuthFailed: 401,
    RateLimited: 429,
    ValidationError: 422,
    UnknownActionFamily: 400,
    HookAuthError: 401,
    BadSignature: 403,
    ReplayedRequest: 409,
    WrongSourceIp: 403,
    RegistryError: 502,
}
# First match wins (leaves before their parents).
_BAREMETAL: tuple[tuple[type[bm.BaremetalError], int, str], ...] = (
    (bm.DeepLinkNotConnected, 503, "deeplink_not_connected"),
    (bm.TransportError, 502, "node_unreachable"),
    (bm.ApiError, 502, "node_error"),
    (bm.DecodeError, 502, "node_error"),
    (bm.IpmiUnreachable, 503, "bmc_unreachable"),
    (bm.IpmiTimeout, 503, "bmc_unreachable"),
    (bm.IpmiBusy, 503, "bmc_unreachable"),
    (bm.IpmiError, 502, "bmc_error"),
    (bm.InvalidInput, 422, "invalid_input"),
    (bm.BaremetalError, 502, "upstream_error"),
)
# Starlette/FastAPI's own refusals (400: a body that is not JSON or not UTF-8).
_HTTP_CODES = {400: "bad_request", 404: "route_not_found", 405: "method_not_allowed",
               413: "payload_too_large"}


def request_lang(request: Request) -> str:
    """Pick the answer language: ``?lang=``, then ``Accept-Language``, then the default."""
    chosen = normalize_lang(request.query_params.get("lang"))
    if chosen:
        return chosen
    for tag in _accept_language(request.headers.get("accept-language", "")):
        chosen = normalize_lang(tag)
        if chosen:
            return chosen
    return str(getattr(request.app.state, "default_lang", DEFAULT_LANG))


def _accept_language(header: str) -> list[str]:
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and weight > 0:
            weighted.append((-weight, index, tag))
    return [tag for _w, _i, tag in sorted(weighted)]


def error_body(code: str, message: str) -> dict[str, Any]:
    """Return the one error shape every failed request answers with."""
    return {"error": {"code": code, "message": message}}


def error_class_status(cls: type[AgentError]) -> int:
    """Return the HTTP status of an AgentError class: its most specific listed ancestor's."""
    for base in cls.__mro__:
        status = _AGENT_STATUS.get(base)
        if status is not None:
            return status
    return 500  # pragma: no cover - every AgentError has the root in its MRO


def agent_error_status(exc: AgentError) -> int:
    """Return the HTTP status to answer an AgentError with (a relay refusal: its own)."""
    if isinstance(exc, HookRefused):
        return exc.status
    return error_class_status(type(exc))


def baremetal_status(exc: bm.BaremetalError) -> tuple[int, str]:
    """Return the HTTP status and error code for a node or BMC failure."""
    for cls, status, code in _BAREMETAL:
        if isinstance(exc, cls):
            return status, code
    return 502, "upstream_error"  # pragma: no cover - the table ends with the root


async def _agent_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AgentError)
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    status = agent_error_status(exc)
    if isinstance(exc, AuthFailed):
        # The reason is for the log only: a client never learns which part was wrong.
        _LOGGER.info("%s %s: authentication failed (%s)", request.method, request.url.path,
                     exc.reason)
    elif status >= 500:
        _LOGGER.error("%s %s: %s", request.method, request.url.path, exc.message())
    body = error_body(exc.code, translate_error(exc, request_lang(request)))
    if isinstance(exc, SeatRented):  # which servers are rented, until when (for the prompt)
        body["error"]["rented"] = exc.rented
    return JSONResponse(body, status_code=status, headers=headers)


async def _baremetal_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, bm.BaremetalError)
    status, code = baremetal_status(exc)
    _LOGGER.warning("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    message = translate(code, request_lang(request), detail=str(exc)[:300])
    return JSONResponse(error_body(code, message), status_code=status)


async def _hook_refusal(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HookRefused)
    agent = getattr(request.app.state, "agent", None)
    if agent is not None:
        agent.metrics.count_hook_refusal(exc.code)
    retry_after = getattr(exc, "retry_after_s", None)  # 429 busy (agent.api.hook_gate)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(error_body(exc.code, exc.detail), status_code=agent_error_status(exc),
                        headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
    reason = str(first.get("msg", "invalid"))[:200]
    message = translate("validation_error", request_lang(request), field=where or "body",
                        reason=reason)
    return JSONResponse(error_body("validation_error", message), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = translate(code, request_lang(request), status=exc.status_code,
                        detail=str(exc.detail)[:200])
    return JSONResponse(error_body(code, message), status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    _LOGGER.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    message = translate("internal_error", request_lang(request))
    return JSONResponse(error_body("internal_error", message), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping above on ``app``."""
    app.add_exception_handler(AgentError, _agent_error)
    app.add_exception_handler(bm.BaremetalError, _baremetal_error)
    app.add_exception_handler(HookRefused, _hook_refusal)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
