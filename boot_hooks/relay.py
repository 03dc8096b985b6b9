r"""Agent mode: ask bm-agent to sign and publish for us (contract: tests/contract/hook_relay.json).

Every request carries three headers signed with an ed25519 key (PyNaCl ``SigningKey``):
``enroll`` with the café-wide hook token (``[agent] token_key_file``), whoami and deeplink
with this PC's own seat key (``[agent] seat_key_file``), named in a fourth header
``X-BM-Seat-Key`` (its public key, 64 hex)::

    X-BM-Timestamp  unix seconds, decimal
    X-BM-Nonce      16 random bytes as 32 lowercase hex characters
    X-BM-Signature  128 lowercase hex: ed25519 over the canonical string

    canonical = METHOD "\n" TARGET "\n" TIMESTAMP "\n" NONCE "\n" sha256hex(BODY BYTES)

TARGET is the request target exactly as sent (path, plus ``?query`` if any). The agent
also checks that the request comes from the server's registered IP.

- ``POST /api/v1/hook/enroll`` ``{"seat_key"}`` -> 202 ``{"status": "pending"}`` (staff must
  approve it) or 200 ``{"status": "approved"}``;
- ``GET /api/v1/hook/whoami?ip=..&mac=..`` -> ``{"node_id": ..., "node_version"?: ...}``
- ``POST /api/v1/hook/report`` (seat key, approved or pending) a failed run -> 202
  ``{"status": "recorded"}`` (boot_hooks.report builds the body);
- ``POST /api/v1/hook/deeplink`` ``{"node_id", "device_password", "device_id"?}`` ->
  ``{"status": "confirmed", "rotated_at"}``; errors are ``{"error": {"code", "message"}}``
  with 400/401/403/409/429/502/503/504 (403 ``seat_not_enrolled``: enroll; ``seat_pending``
  and 409 ``device_id_changed``: staff must approve, exit 7; 429 ``busy``: the agent's
  relay is full, retried like 502 until the deadline).
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import nacl.exceptions
import nacl.signing

from boot_hooks.errors import (
    AuthRefused,
    AwaitingApproval,
    ConfigError,
    DeepLinkDown,
    NodeDown,
    NotConfirmed,
)
from boot_hooks.identity import LocalIdentity
from boot_hooks.tls_pin import connection_factory

__all__ = [
    "DEEPLINK_PATH",
    "ENROLL_PATH",
    "REPORT_PATH",
    "SEAT_KEY_HEADER",
    "WHOAMI_PATH",
    "AgentBusy",
    "AgentClient",
    "AgentNodeDown",
    "AgentNotConnectedYet",
    "AgentUnreachable",
    "Confirmation",
    "Replayed",
    "SeatNotEnrolled",
    "SeatSigner",
    "StaleTimestamp",
    "TokenSigner",
    "WhoAmI",
    "canonical_string",
    "encode_body",
]

_LOGGER = logging.getLogger(__name__)
WHOAMI_PATH = "/api/v1/hook/whoami"
DEEPLINK_PATH = "/api/v1/hook/deeplink"
ENROLL_PATH = "/api/v1/hook/enroll"
REPORT_PATH = "/api/v1/hook/report"
SEAT_KEY_HEADER = "X-BM-Seat-Key"
_MAX_ANSWER_BYTES = 64 * 1024


class AgentUnreachable(NodeDown):
    """No HTTP answer from the agent (retryable until the deadline)."""


class AgentNodeDown(NodeDown):
    """The agent could not reach the node: 502 ``node_unreachable`` (retryable)."""


class AgentBusy(NodeDown):
    """429 ``busy``: the agent's relay is full or already serving this PC (retryable)."""


class AgentNotConnectedYet(DeepLinkDown):
    """DeepLink has no LAN session with the node yet: 503 (retryable)."""


class StaleTimestamp(AuthRefused):
    """401 ``stale_timestamp``: our clock is off; retried once with the agent's clock."""

    def __init__(self, message: str, agent_time: float | None) -> None:
        """Keep the agent's ``Date`` (unix seconds) when it sent one."""
        super().__init__(message)
        self.agent_time = agent_time


class Replayed(AuthRefused):
    """409 ``replayed``: the agent has seen this nonce; retried once with a fresh one."""


class SeatNotEnrolled(AuthRefused):
    """403 ``seat_not_enrolled``: the agent does not know our seat key; enroll it."""


@dataclass(frozen=True)
class WhoAmI:
    """The agent's answer to whoami."""

    node_id: str
    node_version: str = ""


@dataclass(frozen=True)
class Confirmation:
    """The agent confirmed the node reports our code (it never echoes the device_id)."""

    rotated_at: str


def canonical_string(method: str, target: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Build the string the hook token signs."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{method}\n{target}\n{timestamp}\n{nonce}\n{digest}"


def encode_body(payload: Mapping[str, object]) -> bytes:
    """Encode a request body as compact, key-sorted UTF-8 JSON."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")


class TokenSigner:
    """Signs agent requests with the café's hook token (an ed25519 seed)."""

    def __init__(self, seed_hex: str) -> None:
        """Load the 32-byte seed."""
        try:
            self._key = nacl.signing.SigningKey(bytes.fromhex(seed_hex))
        except (ValueError, TypeError, nacl.exceptions.CryptoError):
            raise ConfigError("[agent] token_key_file does not hold a 32-byte hex seed") from None

    def __repr__(self) -> str:
        """Show only the public half."""
        return f"TokenSigner(public={self.public_key_hex})"

    @property
    def public_key_hex(self) -> str:
        """Return the token's public key (what the agent is configured with)."""
        return bytes(self._key.verify_key).hex()

    def headers(
        self, method: str, target: str, body: bytes, timestamp: int, nonce: str
    ) -> dict[str, str]:
        """Return the three X-BM-* headers for one request."""
        text = canonical_string(method, target, str(timestamp), nonce, body)
        signature = self._key.sign(text.encode("utf-8")).signature.hex()
        return {"X-BM-Timestamp": str(timestamp), "X-BM-Nonce": nonce, "X-BM-Signature": signature}


class SeatSigner(TokenSigner):
    """Signs with this PC's own seat key and names it in ``X-BM-Seat-Key``."""

    def __repr__(self) -> str:
        """Show only the public half."""
        return f"SeatSigner(public={self.public_key_hex})"

    @property
    def fingerprint(self) -> str:
        """Short SHA-256 of the public key, as the dashboard shows it."""
        return hashlib.sha256(bytes.fromhex(self.public_key_hex)).hexdigest()[:16]

    def headers(
        self, method: str, target: str, body: bytes, timestamp: int, nonce: str
    ) -> dict[str, str]:
        """Return the X-BM-* headers, the seat key's public half included."""
        signed = super().headers(method, target, body, timestamp, nonce)
        signed[SEAT_KEY_HEADER] = self.public_key_hex
        return signed


@dataclass(frozen=True)
class _Answer:
    status: int
    body: dict[str, Any]
    date: float | None


class AgentClient:
    """Calls bm-agent's hook endpoints over http.client (which can bind a source address)."""

    def __init__(
        self,
        base_url: str,
        signer: TokenSigner,
        source_ip: str = "",
        clock: Callable[[], float] = time.time,
        seat: SeatSigner | None = None,
        cert_sha256: str = "",
    ) -> None:
        """Talk to ``base_url``; bind to ``source_ip`` when set (multi-homed PCs, tests).

        ``signer`` (the café token) signs ``enroll``; ``seat`` signs whoami and deeplink
        (without one they go out signed by the café token, which the agent refuses).
        ``https://`` needs ``cert_sha256``, the agent certificate's pinned SHA-256.
        """
        parts = urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._connect = connection_factory(self._https, cert_sha256)
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._signer = signer
        self._seat = seat
        self._source_ip = source_ip
        self._clock = clock
        self._clock_offset = 0.0

    @property
    def host(self) -> str:
        """Return the agent's host name or address."""
        return self._host

    @property
    def port(self) -> int:
        """Return the agent's TCP port."""
        return self._port

    def whoami(self, me: LocalIdentity, timeout_s: float) -> WhoAmI:
        """Ask which server this PC is; the agent decides by our source IP."""
        query = urlencode({"ip": me.ip, "mac": ",".join(me.macs)})
        answer = self._signed("GET", f"{self._prefix}{WHOAMI_PATH}?{query}", b"", timeout_s,
                              self._seat or self._signer)
        node_id = answer.body.get("node_id")
        if not isinstance(node_id, str) or not node_id:
            raise AgentUnreachable("agent whoami answered without a node_id")
        version = answer.body.get("node_version")
        return WhoAmI(node_id=node_id, node_version=version if isinstance(version, str) else "")

    def publish(self, node_id: str, code: str, device_id: str, timeout_s: float) -> Confirmation:
        """POST the new code; return the agent's confirmation or raise a typed error."""
        payload = {"node_id": node_id, "device_password": code}
        if device_id:
            payload["device_id"] = device_id
        body = encode_body(payload)
        answer = self._signed("POST", f"{self._prefix}{DEEPLINK_PATH}", body, timeout_s,
                              self._seat or self._signer)
        if answer.body.get("status") != "confirmed":
            raise NotConfirmed("agent answered 200 without status confirmed")
        return Confirmation(rotated_at=str(answer.body.get("rotated_at", "")))

    def enroll(self, timeout_s: float) -> str:
        """Enroll our seat key (signed by the café token); return ``pending`` or ``approved``."""
        if self._seat is None:
            raise ConfigError("agent mode needs a seat key to enroll")
        body = encode_body({"seat_key": self._seat.public_key_hex})
        answer = self._signed("POST", f"{self._prefix}{ENROLL_PATH}", body, timeout_s,
                              self._signer)
        state = answer.body.get("status")
        if state not in ("pending", "approved"):
            raise AgentUnreachable(f"agent answered enroll with HTTP {answer.status} and no state")
        return str(state)

    def report(self, payload: Mapping[str, object], timeout_s: float) -> None:
        """POST one failure report, signed by our seat key; raise a typed error if refused."""
        if self._seat is None:
            raise ConfigError("failure reports are signed by this PC's seat key")
        answer = self._signed("POST", f"{self._prefix}{REPORT_PATH}", encode_body(payload),
                              timeout_s, self._seat)
        if answer.body.get("status") != "recorded":
            raise AgentUnreachable(f"agent answered report with HTTP {answer.status}")

    def _signed(self, method: str, target: str, body: bytes, timeout_s: float,
                signer: TokenSigner) -> _Answer:
        # A stale timestamp (PC clock wrong at boot) is retried once on the agent's
        # clock; a replay (should never happen: fresh nonce) once with a new nonce.
        for attempt in (1, 2):
            try:
                return self._send_once(method, target, body, timeout_s, signer)
            except StaleTimestamp as exc:
                if attempt == 2 or exc.agent_time is None:
                    raise
                self._clock_offset = exc.agent_time - self._clock()
                _LOGGER.warning("agent says our clock is off by %.0f s; retrying",
                                self._clock_offset)
            except Replayed:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_once(self, method: str, target: str, body: bytes, timeout_s: float,
                   signer: TokenSigner) -> _Answer:
        timestamp = int(self._clock() + self._clock_offset)
        headers = signer.headers(method, target, body, timestamp, secrets.token_hex(16))
        if body:
            headers["Content-Type"] = "application/json"
        answer = self._exchange(method, target, body, headers, timeout_s)
        if answer.status not in (200, 202):
            raise _error_for(answer)
        return answer

    def _exchange(
        self, method: str, target: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> _Answer:
        source = (self._source_ip, 0) if self._source_ip else None
        conn = self._connect(self._host, self._port, timeout=timeout_s, source_address=source)
        try:
            conn.request(method, target, body=body or None, headers=headers)
            response = conn.getresponse()
            raw = response.read(_MAX_ANSWER_BYTES)
            date = response.getheader("Date")
        except (OSError, http.client.HTTPException) as exc:
            where = f"{self._host}:{self._port}"
            raise AgentUnreachable(f"agent {where} did not answer: {exc}") from None
        finally:
            conn.close()
        return _Answer(status=response.status, body=_json_object(raw), date=_parse_date(date))


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _parse_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


_AWAITING = {
    "seat_pending": "this PC waits for staff approval in the dashboard",
    "device_id_changed": "DeepLink's device code on this PC changed; staff must approve the"
                         " change in the dashboard",
    "too_many_pending": "several seat keys already wait for approval for this PC; staff must"
                        " approve (by fingerprint) or reject them in the dashboard",
}


def _error_for(answer: _Answer) -> Exception:
    error = answer.body.get("error")
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code", ""))[:60]
    text = f"agent answered HTTP {answer.status} {code}: {str(error.get('message', ''))[:200]}"
    if answer.status == 401:
        return StaleTimestamp(text, answer.date)
    if code in _AWAITING:
        return AwaitingApproval(f"{_AWAITING[code]} ({text})")
    if answer.status == 409:
        return Replayed(text)
    if code == "seat_not_enrolled":
        return SeatNotEnrolled(text)
    if answer.status == 403:
        return AuthRefused(text)
    if answer.status == 400:
        return ConfigError(text)
    if answer.status == 503:
        return AgentNotConnectedYet(text)
    if answer.status == 504:
        return NotConfirmed(text)
    if answer.status == 502:
        return AgentNodeDown(text)
    if answer.status == 429:
        return AgentBusy(text)
    return AgentUnreachable(text)
