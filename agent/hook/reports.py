"""Failure reports from bm-hook (``POST /api/v1/hook/report``, tests/contract/hook_relay.json v3).

A diskless PC loses its own log at the next reset, so bm-hook also tells us each failed
rotation attempt; staff then see it on the seat's page (an event of kind ``deeplink``,
action ``hook_failure``, result = the hook's error name) and in ``bm-agent events``.

Checks, in the contract's order, through the relay's own code path (``HookRelay.caller``):
seat key named, signature, timestamp, nonce, then this body, then the server registered
at the TCP source IP (and its neighbour-table MAC), then the seat key: the server's
approved OR pending key (a PC waiting for approval is when staff most need its reports);
rejected, unknown, another server's key, or the café token alone are refused as usual.

The body is small and strict (``parse_report_body``; 400 ``bad_request`` naming the field).
The message is the PC's own text: hidden characters (agent.display_text) are written as
``<U+XXXX>`` and it is capped. Rate bound: events go through the relay's
``EventSampler``, so a PC in a boot loop writes at most one row per (server, error) a
minute (8 error names: at most 8 rows a minute per server); repeats are counted into the
next row's ``repeats``. Every accepted report is counted in
``bm_agent_hook_failure_reports_total{error}``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from agent.display_text import visible
from agent.hook.relay import HookRefusal, HookRelay, SignedRequest, _json_object
from agent.models import ACTOR_HOOK, EventKind, SeatKey

__all__ = ["ACTION", "ERROR_NAMES", "MAX_BODY_BYTES", "MAX_MESSAGE", "FailureReport",
           "parse_report_body", "record_report"]

ACTION = "hook_failure"
MAX_BODY_BYTES = 8192
MAX_MESSAGE = 500
_MAX_ATTEMPT = 10**9
_MAX_UPTIME_S = 10.0**9
_MAX_UNIX_S = 4102444800  # 2100-01-01: a PC clock beyond that is not a time
_BOOT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# bm-hook's exit codes (boot_hooks.errors.ExitCode) and their names, lower case.
ERROR_NAMES = {1: "internal", 2: "config", 3: "node_unreachable", 4: "deeplink_unreachable",
               5: "auth_refused", 6: "not_confirmed", 7: "awaiting_approval",
               8: "tls_pin_mismatch"}
_FIELDS = ("attempt", "boot_id", "error", "exit_code", "message", "occurred_at", "uptime_s")


@dataclass(frozen=True)
class FailureReport:
    """One validated failure report (message already made visible and capped)."""

    exit_code: int
    error: str
    message: str
    attempt: int
    boot_id: str
    uptime_s: float
    occurred_at: float

    def detail(self, seat: SeatKey | None) -> dict[str, Any]:
        """Return the event detail: the report, and which seat key (and its state) sent it."""
        detail: dict[str, Any] = {
            "exit_code": self.exit_code, "message": self.message, "attempt": self.attempt,
            "boot_id": self.boot_id, "uptime_s": self.uptime_s,
            "occurred_at": self.occurred_at}
        if seat is not None:
            detail["seat"] = seat.fingerprint
            detail["seat_state"] = str(seat.state)
        return detail


def _bad(message: str) -> HookRefusal:
    return HookRefusal(400, "bad_request", message)


def _integer(payload: dict[str, Any], name: str, low: int, high: int) -> int:
    value = payload.get(name)
    if type(value) is not int or not low <= value <= high:  # bool is not a number here
        raise _bad(f"{name} must be an integer from {low} to {high}")
    return value


def _number(payload: dict[str, Any], name: str, high: float) -> float:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or not 0 <= value <= high:
        raise _bad(f"{name} must be a number from 0 to {high:.0f}")
    return float(value)


def _message(payload: dict[str, Any]) -> str:
    text = payload.get("message")
    if not isinstance(text, str) or len(text) > MAX_MESSAGE:
        raise _bad(f"message must be a string of at most {MAX_MESSAGE} characters")
    shown = visible(text.strip())
    return shown if len(shown) <= MAX_MESSAGE else shown[:MAX_MESSAGE - 1] + "…"


def parse_report_body(body: bytes) -> FailureReport:
    """Validate a report body; raise 400 ``bad_request`` naming the first bad field."""
    if len(body) > MAX_BODY_BYTES:
        raise _bad(f"body larger than {MAX_BODY_BYTES} bytes")
    payload = _json_object(body)
    unknown = sorted(set(payload) - set(_FIELDS))
    if unknown:
        raise _bad(f"unknown field {unknown[0][:40]!r}; a report has {', '.join(_FIELDS)}")
    exit_code = _integer(payload, "exit_code", 1, 8)
    error = payload.get("error")
    if error != ERROR_NAMES[exit_code]:
        raise _bad(f"error must be {ERROR_NAMES[exit_code]!r} for exit_code {exit_code}")
    message = _message(payload)
    attempt = _integer(payload, "attempt", 1, _MAX_ATTEMPT)
    boot_id = payload.get("boot_id")
    if not isinstance(boot_id, str) or not _BOOT_ID.fullmatch(boot_id):
        raise _bad("boot_id must be 1-64 of A-Z a-z 0-9 . _ -")
    uptime_s = _number(payload, "uptime_s", _MAX_UPTIME_S)
    occurred_at = _number(payload, "occurred_at", _MAX_UNIX_S)
    return FailureReport(exit_code=exit_code, error=ERROR_NAMES[exit_code], message=message,
                         attempt=attempt, boot_id=boot_id, uptime_s=uptime_s,
                         occurred_at=occurred_at)


def record_report(relay: HookRelay, request: SignedRequest) -> FailureReport:
    """Check a report like any seat-signed relay call, then record it (sampled) as an event."""
    server, seat, report = relay.caller(request, parse_report_body, allow_pending=True)
    relay.event_sampler.record((server.uuid, ACTION, report.error), actor=ACTOR_HOOK,
                               kind=EventKind.DEEPLINK, action=ACTION,
                               server_uuid=server.uuid, result=report.error,
                               detail=report.detail(seat))
    return report
