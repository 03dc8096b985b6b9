r"""Verification of boot-hook requests relayed by the agent: ed25519 over a canonical request.

Wire contract (the hook side must build exactly this; ``sign_request`` is the reference):

    canonical = METHOD + "\n" + target + "\n" + timestamp + "\n" + nonce + "\n"
                + lowercase hex SHA-256 of the raw body

(pinned by tests/contract/hook_relay.json, which the shipped hook signs: no scheme prefix).

``target`` is the request path with its query string as sent (``/hook/deeplink?x=1``);
``timestamp`` is integer Unix seconds in decimal; ``nonce`` is 16-64 of ``[A-Za-z0-9_-]``.
Headers: ``X-BM-Timestamp``, ``X-BM-Nonce``, ``X-BM-Signature`` (128 hex chars, ed25519 by
the café's signing key; the agent holds only the public key, ``[hook] token_public_key``).

A GPU PC with an enrolled seat key signs with that key instead and names it in
``X-BM-Seat-Key`` (64 hex, its ed25519 public key); ``verify(..., public_key=...)`` then
checks the signature with it (agent.hook.seat_gate decides whether the key may be used).

``HookVerifier.verify`` checks, in order: headers well-formed and signature valid
(``BadSignature``) — first, so unauthenticated junk never reaches the nonce table — then
the timestamp within ``window_s`` of now (``StaleRequest``), then the nonce unseen
(``ReplayedRequest``, nonces kept 2 x window then pruned). ``check_source_ip`` raises
``WrongSourceIp`` when the caller is not the server's registered IP.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nacl.exceptions
import nacl.signing

from agent.errors import BadSignature, ConfigError, ReplayedRequest, StaleRequest, WrongSourceIp
from agent.secrets import Secret

if TYPE_CHECKING:
    from agent.store.hooks import NonceRepo

__all__ = [
    "HEADER_NONCE",
    "HEADER_SEAT_KEY",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "HookRequest",
    "HookVerifier",
    "canonical_request",
    "check_source_ip",
    "generate_hook_keypair",
    "load_public_key",
    "sign_request",
]

HEADER_TIMESTAMP = "X-BM-Timestamp"
HEADER_NONCE = "X-BM-Nonce"
HEADER_SIGNATURE = "X-BM-Signature"
HEADER_SEAT_KEY = "X-BM-Seat-Key"
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{128}")
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
_PRUNE_EVERY_S = 60.0


def canonical_request(*, method: str, target: str, timestamp: int, nonce: str,
                      body: bytes) -> bytes:
    """Return the exact bytes that a hook request's signature covers."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((method.upper(), target, str(timestamp), nonce, digest)).encode()


def sign_request(signing_key: Secret, *, method: str, target: str, body: bytes,
                 nonce: str, timestamp: int | None = None,
                 seat: bool = False) -> dict[str, str]:
    """Return the headers for a request (reference for the hook side and tests).

    ``seat``: the key is a PC's seat key; name it in ``X-BM-Seat-Key``.
    """
    stamp = int(time.time()) if timestamp is None else timestamp
    key = nacl.signing.SigningKey(bytes.fromhex(signing_key.reveal()))
    message = canonical_request(method=method, target=target, timestamp=stamp, nonce=nonce,
                                body=body)
    headers = {HEADER_TIMESTAMP: str(stamp), HEADER_NONCE: nonce,
               HEADER_SIGNATURE: key.sign(message).signature.hex()}
    if seat:
        headers[HEADER_SEAT_KEY] = bytes(key.verify_key).hex()
    return headers


def generate_hook_keypair() -> tuple[Secret, str]:
    """Make an ed25519 key pair: (signing seed hex for the café, public key hex for us)."""
    key = nacl.signing.SigningKey.generate()
    return Secret(bytes(key).hex()), bytes(key.verify_key).hex()


def load_public_key(path: Path) -> bytes:
    """Read a 64-hex ed25519 public key (bare or ``name=<hex>``) from ``path``; ``#`` comments."""
    try:
        lines = Path(path).read_text(encoding="ascii", errors="replace").splitlines()
    except OSError as exc:
        raise ConfigError(key="hook.token_public_key", file=str(path),
                          problem=f"unreadable ({exc.strerror})",
                          expected="a file with a 64-hex ed25519 public key") from None
    # Bare hex, or ``name=<hex>`` like the hook's own token file (hook_relay.json).
    keys = [ln.split("=", 1)[-1].strip() for ln in lines
            if ln.strip() and not ln.strip().startswith("#")]
    if len(keys) != 1 or not _HEX_KEY.fullmatch(keys[0]):
        raise ConfigError(key="hook.token_public_key", file=str(path), problem="malformed",
                          expected="exactly one line of 64 hex digits")
    return bytes.fromhex(keys[0])


@dataclass(frozen=True)
class HookRequest:
    """The authenticated facts of a verified hook request."""

    timestamp: int
    nonce: str


class HookVerifier:
    """Check signature, freshness and uniqueness of boot-hook requests."""

    def __init__(self, *, public_key: bytes, nonces: NonceRepo, window_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._key = nacl.signing.VerifyKey(public_key)
        self._nonces = nonces
        self._window_s = window_s
        self._clock = clock
        self._last_prune = float("-inf")

    def verify(self, *, method: str, target: str, body: bytes, timestamp: str | None,
               nonce: str | None, signature: str | None,
               public_key: bytes | None = None) -> HookRequest:
        """Verify one request (header values as received); raise a HookAuthError leaf.

        ``public_key``: verify with this seat key instead of the café hook token's key.
        """
        key = self._key if public_key is None else nacl.signing.VerifyKey(public_key)
        stamp, nonce_text = self._check_signature(key, method, target, body, timestamp, nonce,
                                                  signature)
        now = self._clock()
        skew = now - stamp
        if abs(skew) > self._window_s:
            raise StaleRequest(skew_s=int(skew), window_s=int(self._window_s))
        self._maybe_prune(now)
        if not self._nonces.remember(nonce=nonce_text, ts=now):
            raise ReplayedRequest()
        return HookRequest(timestamp=stamp, nonce=nonce_text)

    @staticmethod
    def _check_signature(key: nacl.signing.VerifyKey, method: str, target: str, body: bytes,
                         timestamp: str | None, nonce: str | None,
                         signature: str | None) -> tuple[int, str]:
        if timestamp is None or not _TIMESTAMP.fullmatch(timestamp):
            raise BadSignature(f"{HEADER_TIMESTAMP} missing or not integer seconds")
        if nonce is None or not _NONCE.fullmatch(nonce):
            raise BadSignature(f"{HEADER_NONCE} missing or malformed")
        if signature is None or not _SIGNATURE.fullmatch(signature):
            raise BadSignature(f"{HEADER_SIGNATURE} missing or not 128 hex digits")
        message = canonical_request(method=method, target=target, timestamp=int(timestamp),
                                    nonce=nonce, body=body)
        try:
            key.verify(message, bytes.fromhex(signature))
        except nacl.exceptions.BadSignatureError:
            raise BadSignature("signature does not verify") from None
        return int(timestamp), nonce

    def _maybe_prune(self, now: float) -> None:
        if now - self._last_prune >= _PRUNE_EVERY_S:
            self._nonces.prune(older_than=now - 2 * self._window_s - _PRUNE_EVERY_S)
            self._last_prune = now


def check_source_ip(*, source_ip: str, server_ip: str, server_uuid: str) -> None:
    """Raise WrongSourceIp unless the request comes from the server's registered IP."""
    if source_ip.removeprefix("::ffff:") != server_ip:
        raise WrongSourceIp(source_ip=source_ip, expected_ip=server_ip, server=server_uuid)
