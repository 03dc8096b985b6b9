"""The boot-hook relay endpoints, exactly as tests/contract/hook_relay.json pins them.

No staff login: requests carry an ed25519 signature over the raw request
(``X-BM-Timestamp``, ``X-BM-Nonce``, ``X-BM-Signature``) and must come from the server's
registered IP (see ``agent.hook.relay``), directly or through a proxy listed in ``[api]
trusted_proxies`` (``agent.api.deps.client_ip``). ``enroll`` is signed by the café hook
token; whoami and deeplink by the PC's approved seat key, named in ``X-BM-Seat-Key``
(``agent.hook.seat_gate``). Refusals answer the contract's status
and code. ``report`` (seat key approved or pending) records a failed boot for staff
(``agent.hook.reports``). 404 ``hook_relay_disabled`` when ``[hook] token_public_key`` is
not configured.
Every relay call goes through ``agent.api.hook_gate.gated`` (its own bounded pool, per-server
and per-address caps, 429 ``busy`` at once when full).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse

from agent.api.deps import (
    AgentDep,
    RawBody,
    client_ip,
    request_target,
    trusted_forwarded_for,
)
from agent.api.hook_gate import gated, publish_seat
from agent.api.schemas import ErrorOut
from agent.hook.relay import HookRefusal, HookRelay, SignedRequest
from agent.hook.reports import ERROR_NAMES, MAX_MESSAGE, record_report
from agent.hook.signing import HEADER_NONCE, HEADER_SEAT_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP

__all__ = ["router"]

router = APIRouter(prefix="/hook", tags=["hook"], responses={
    s: {"model": ErrorOut} for s in (400, 401, 403, 404, 409, 429, 502, 503, 504)})

_PROXY_HEADERS = ("x-forwarded-for", "x-real-ip", "forwarded")
_DEEPLINK_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "required": ["node_id", "device_password"], "properties": {
        "node_id": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "device_password": {"type": "string", "pattern": "^[A-Za-z0-9]{6,16}$"},
        "device_id": {"type": "string"}}}}}}}
_ENROLL_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "required": ["seat_key"], "properties": {
        "seat_key": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}}}}}}
_REPORT_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "additionalProperties": False, "required": [
        "exit_code", "error", "message", "attempt", "boot_id", "uptime_s", "occurred_at"],
        "properties": {
            "exit_code": {"type": "integer", "minimum": 1, "maximum": 8},
            "error": {"type": "string", "enum": sorted(ERROR_NAMES.values())},
            "message": {"type": "string", "maxLength": MAX_MESSAGE},
            "attempt": {"type": "integer", "minimum": 1},
            "boot_id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
            "uptime_s": {"type": "number", "minimum": 0},
            "occurred_at": {"type": "number", "minimum": 0}}}}}}}


def _relay(agent: AgentDep) -> HookRelay:
    if agent.hook_relay is None:
        raise HookRefusal(404, "hook_relay_disabled",
                          "the hook relay is off: set [hook] token_public_key")
    return agent.hook_relay


def _signed(request: Request, body: bytes) -> SignedRequest:
    headers = request.headers
    # The hook connects directly, or through a proxy in [api] trusted_proxies (then the
    # forwarded client counts). Proxy headers from anyone else mean the source cannot be
    # told, so it counts as unknown and the request fails the source-IP check in its
    # place in the contract's order.
    forwarded = trusted_forwarded_for(request)
    proxied = forwarded is None and any(name in headers for name in _PROXY_HEADERS)
    return SignedRequest(method=request.method, target=request_target(request), body=body,
                         timestamp=headers.get(HEADER_TIMESTAMP),
                         nonce=headers.get(HEADER_NONCE),
                         signature=headers.get(HEADER_SIGNATURE),
                         seat_key=headers.get(HEADER_SEAT_KEY),
                         source_ip="" if proxied else client_ip(request))


@router.get("/whoami")
async def whoami(request: Request, body: RawBody, agent: AgentDep,
           ip: str = Query("", max_length=64, description="the hook's IP (informational)"),
           mac: str = Query("", max_length=400, description="its MACs, comma-separated")
           ) -> dict[str, Any]:
    """Tell the calling PC which server it is (decided by the TCP source IP)."""
    del ip  # informational only: the TCP source address decides
    call = partial(_relay(agent).whoami, _signed(request, body), macs=mac.split(","))
    return await gated(request, call, seat=f"ip:{client_ip(request)}")


@router.post("/deeplink", openapi_extra=_DEEPLINK_BODY)
async def deeplink(request: Request, body: RawBody, agent: AgentDep) -> dict[str, Any]:
    """Publish the PC's new DeepLink code with the server key we hold; confirm it."""
    call = partial(_relay(agent).publish, _signed(request, body))
    return await gated(request, call, seat=publish_seat(body))


@router.post("/enroll", openapi_extra=_ENROLL_BODY, status_code=202)
async def enroll(request: Request, body: RawBody, agent: AgentDep) -> JSONResponse:
    """Enroll the PC's seat key (café token): pending until staff approve it."""
    call = partial(_relay(agent).enroll, _signed(request, body))
    status, answer = await gated(request, call)
    return JSONResponse(answer, status_code=status)


@router.post("/report", openapi_extra=_REPORT_BODY, status_code=202)
async def report(request: Request, body: RawBody, agent: AgentDep) -> JSONResponse:
    """Record a failed boot-hook run for the seat's page (seat key approved or pending)."""
    call = partial(record_report, _relay(agent), _signed(request, body))
    recorded = await gated(request, call, seat=f"report:{client_ip(request)}")
    agent.metrics.count_hook_report(recorded.error)
    return JSONResponse({"status": "recorded"}, status_code=202)
