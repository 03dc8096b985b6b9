"""HTTPS to bm-agent pinned to its certificate's SHA-256 (``[agent] cert_sha256``).

The agent's certificate is usually self-signed and for a LAN IP, so neither the CA chain
nor the host name is checked: the hook compares the SHA-256 of the certificate the peer
presents (DER) with the pin printed by ``bm-agent init --tls`` / ``bm-agent tls
fingerprint``, right after the TLS handshake and before a single HTTP byte is written.
On a mismatch the connection is closed and ``PinMismatch`` (exit 8) ends the run; it is
never retried. A plain ``http://`` agent URL still works, with a warning in the log.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import http.client
import logging
import re
import ssl
from collections.abc import Callable
from typing import Any

from boot_hooks.errors import ConfigError, PinMismatch

__all__ = ["PinnedHTTPSConnection", "connection_factory", "normalize_pin"]

_LOGGER = logging.getLogger(__name__)
_HEX64 = re.compile(r"[0-9a-f]{64}")

ConnectionFactory = Callable[..., http.client.HTTPConnection]


def normalize_pin(text: str) -> str:
    """Accept ``AB:CD:..`` or plain hex (any case, spaces ignored); return 64 lowercase hex."""
    plain = re.sub(r"[\s:]", "", text).lower()
    if not _HEX64.fullmatch(plain):
        raise ConfigError("[agent] cert_sha256 must be the agent certificate's SHA-256: 64 hex "
                          "characters, with or without colons (bm-agent tls fingerprint)")
    return plain


def _unverified_context() -> ssl.SSLContext:
    # TLS 1.2+ and the default ciphers; the pin replaces the CA and host-name checks.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection that refuses any peer certificate but the pinned one."""

    def __init__(self, host: str, port: int | None = None, *, pin: str, **kwargs: Any) -> None:
        """``pin``: the expected SHA-256 of the peer's DER certificate (64 lowercase hex)."""
        super().__init__(host, port, context=_unverified_context(), **kwargs)
        self._pin = pin

    def connect(self) -> None:
        """Handshake, then check the pin before the request is sent."""
        super().connect()
        sock = self.sock
        der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
        seen = hashlib.sha256(der).hexdigest() if der else "none"
        if not hmac.compare_digest(seen, self._pin):
            self.close()
            raise PinMismatch(
                f"agent {self.host}:{self.port} presented a certificate with SHA-256 {seen}, "
                f"not the pinned {self._pin} ([agent] cert_sha256); nothing was sent")


def connection_factory(https: bool, pin: str) -> ConnectionFactory:
    """Return how to open connections to the agent: pinned HTTPS, or plain HTTP (warned)."""
    if https:
        if not pin:
            raise ConfigError("an https:// [agent] url needs [agent] cert_sha256 "
                              "(bm-agent tls fingerprint prints it)")
        return functools.partial(PinnedHTTPSConnection, pin=normalize_pin(pin))
    _LOGGER.warning("the agent URL is http://: the hook token's signed requests cross the "
                    "LAN in clear text and the agent is not authenticated; turn on TLS in "
                    "bm-agent and use https:// with [agent] cert_sha256 (docs/operations.md)")
    return http.client.HTTPConnection
