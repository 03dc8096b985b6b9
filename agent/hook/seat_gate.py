"""Seat keys and pinned DeepLink device_ids: who may ask the relay for which server.

The café hook token is on every PC image, so it only proves "some PC of this café". Each
PC therefore makes its own ed25519 seat key on first boot (bm-hook) and ENROLLS it with a
request signed by the café token (``POST /api/v1/hook/enroll``); the key becomes the
pending seat key of the server registered at the request's source IP, and staff approve it
(``agent.hook.seats``). From then on whoami and deeplink must be signed by the approved seat key
(named in ``X-BM-Seat-Key``); the café token alone is refused (403 ``seat_not_enrolled``),
a pending key too (403 ``seat_pending``), a rejected one (403 ``seat_rejected``), another
server's key is ``forbidden_source``. A new key for a server that has an approved one is a
re-enrollment: pending again, an event, never a silent replacement. Competing enrollments
for one server all stay pending side by side (at most a few: then 409
``too_many_pending``) until staff approve one by fingerprint.

``SeatGate.check_device_id``: the first confirmed DeepLink device_id of a server is pinned;
another one is refused (409 ``device_id_changed``, recorded as a pending change) until
staff approve it. Refusals are recorded through the relay's ``event`` callback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from agent.hook.relay import HookRefusal
from agent.models import ACTOR_HOOK, EventKind, SeatKey, SeatState, Server
from agent.store import Store

__all__ = ["SEAT_PENDING_MESSAGE", "SeatGate", "parse_seat_key"]

_LOGGER = logging.getLogger(__name__)
_HEX64 = re.compile(r"[0-9a-f]{64}")
SEAT_PENDING_MESSAGE = "this PC waits for staff approval in the dashboard"
_NOT_ENROLLED = ("this PC has no approved seat key: it enrolls one (POST /api/v1/hook/enroll)"
                 " and staff approve it in the dashboard")

Event = Callable[[str, str, str, dict[str, Any]], None]


def parse_seat_key(text: Any) -> str | None:
    """Return a seat public key as 64 lowercase hex, or None if ``text`` is not one."""
    if not isinstance(text, str):
        return None
    key = text.strip().lower()
    return key if _HEX64.fullmatch(key) else None


class SeatGate:
    """The relay's seat-key and device_id checks over the store."""

    def __init__(self, *, store: Store, event: Event) -> None:
        self._store = store
        self._event = event

    def lookup(self, header: str | None) -> SeatKey | None:
        """Return the key ``X-BM-Seat-Key`` names (None: signed by the café token)."""
        if header is None:
            return None
        key = parse_seat_key(header)
        if key is None:
            raise HookRefusal(403, "bad_signature",
                              "X-BM-Seat-Key is not a 64-hex ed25519 public key")
        seat = self._store.seats.get_by_key(public_key=key)
        if seat is None:
            raise HookRefusal(403, "seat_not_enrolled", _NOT_ENROLLED)
        return seat

    def authorise(self, server: Server, seat: SeatKey | None, source_ip: str, *,
                  allow_pending: bool = False) -> None:
        """Let the request through only with the server's approved (or pending) seat key."""
        if seat is None:
            if self._store.seats.approved(server_id=server.id) is not None:
                self._event(server.uuid, "seat", "token_refused", {"source_ip": source_ip})
            raise HookRefusal(403, "seat_not_enrolled", _NOT_ENROLLED)
        if seat.server_id != server.id:
            self._event(server.uuid, "seat", "forbidden_source",
                        {"source_ip": source_ip, "seat_of": seat.uuid,
                         "fingerprint": seat.fingerprint})
            raise HookRefusal(403, "forbidden_source",
                              "this seat key is enrolled for another server")
        if seat.state == SeatState.PENDING and not allow_pending:
            raise HookRefusal(403, "seat_pending", SEAT_PENDING_MESSAGE)
        if seat.state == SeatState.REJECTED:
            raise HookRefusal(403, "seat_rejected",
                              "staff rejected this PC's seat key; ask staff, then re-enroll")

    def enroll(self, server: Server, public_key: str, source_ip: str) -> tuple[int, str]:
        """Record the PC's key as pending (or report its state); return (HTTP status, state)."""
        done = self._store.seats.enroll(server_id=server.id, public_key=public_key,
                                        source_ip=source_ip)
        if done is None:
            self._event(server.uuid, "enroll", "too_many_pending", {"source_ip": source_ip})
            raise HookRefusal(409, "too_many_pending",
                              "too many seat keys wait for approval for this PC; staff must"
                              " approve or reject them in the dashboard first")
        seat = done.seat
        if seat.server_id != server.id:
            self._event(server.uuid, "enroll", "forbidden_source",
                        {"source_ip": source_ip, "seat_of": seat.uuid})
            raise HookRefusal(403, "forbidden_source",
                              "this seat key is enrolled for another server")
        if seat.state == SeatState.REJECTED:
            raise HookRefusal(403, "seat_rejected",
                              "staff rejected this PC's seat key; ask staff, then re-enroll")
        if done.new:
            result = "reenroll" if done.has_approved else "pending"
            self._record(server.uuid, "enroll", result, {
                "fingerprint": seat.fingerprint, "source_ip": source_ip,
                "other_pending": done.other_pending})
            _LOGGER.warning("hook enroll from %s: seat key %s of %s waits for approval%s",
                            source_ip, seat.fingerprint, server.uuid,
                            " (re-enrollment)" if done.has_approved else "")
        return (200 if seat.state == SeatState.APPROVED else 202), str(seat.state)

    def check_device_id(self, server: Server, device_id: str) -> None:
        """Refuse a device_id other than the pinned one (and record it for staff)."""
        pin = self._store.pins.get(server_id=server.id)
        if not device_id or pin is None or device_id == pin.device_id:
            return
        self._store.pins.propose(server_id=server.id, device_id=device_id)
        self._event(server.uuid, "rotate", "device_id_changed",
                    {"pinned": pin.device_id, "seen": device_id})
        raise HookRefusal(409, "device_id_changed",
                          "DeepLink's device code differs from the one pinned for this PC;"
                          " staff must approve the change in the dashboard")

    def pin_confirmed(self, server: Server, device_id: str) -> None:
        """Pin the first confirmed device_id; refuse (after the fact) a different one."""
        if not device_id:
            return
        pin = self._store.pins.pin_first(server_id=server.id, device_id=device_id,
                                         by=ACTOR_HOOK)
        if pin.device_id != device_id:
            self.check_device_id(server, device_id)

    def _record(self, uuid: str, action: str, result: str, detail: dict[str, Any]) -> None:
        # Not a refusal: always recorded (the relay's ``_event`` is for refusals).
        self._store.events.append(actor=ACTOR_HOOK, kind=EventKind.DEEPLINK, action=action,
                                  server_uuid=uuid, result=result, detail=detail)
