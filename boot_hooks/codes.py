"""Fresh DeepLink verification codes and the salted hash of the last one.

DeepLink accepts 6-16 letters and digits (DeepLinkSDK-Win docs/sdk_user_manual.md §3.4;
docs/protocol.md §13.1). A new code must differ from the code DeepLink or the node reports
now and from the last code this PC made; only a salted hash of that last code is kept on
disk (:class:`LastCodeStore`), or in memory for this boot only when the PC has no
per-machine state directory (:class:`MemoryCodeStore`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

__all__ = ["CodeStore", "LastCodeStore", "MemoryCodeStore", "is_valid_code", "make_code"]

_LOGGER = logging.getLogger(__name__)
_ALPHABET = string.ascii_letters + string.digits
_VALID = re.compile(r"[A-Za-z0-9]{6,16}")
_SALT_BYTES = 16


def is_valid_code(code: str) -> bool:
    """Tell whether ``code`` follows DeepLink's rule: 6-16 ASCII letters and digits."""
    return bool(_VALID.fullmatch(code))


class CodeStore(Protocol):
    """Where the last code's salted hash is kept (a file, or memory)."""

    def matches(self, code: str) -> bool:
        """Tell whether ``code`` is the last code recorded (False if none is)."""

    def remember(self, code: str) -> None:
        """Record ``code`` as the last one; never raises."""


def make_code(length: int, avoid: Iterable[str] = (), store: CodeStore | None = None) -> str:
    """Make a random code of ``length`` with a letter and a digit, unlike ``avoid`` and the last."""
    if not 6 <= length <= 16:
        raise ValueError("DeepLink codes are 6 to 16 characters long")
    excluded = {code for code in avoid if code}
    while True:
        code = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        # "a combination of letters and numbers": keep both kinds, some UIs insist.
        if not (any(c.isdigit() for c in code) and any(c.isalpha() for c in code)):
            continue
        if code in excluded or (store is not None and store.matches(code)):
            continue
        return code


class LastCodeStore:
    """The salted SHA-256 of the last code made on this PC, in one small file."""

    def __init__(self, path: str) -> None:
        """Keep the path; nothing is read until asked."""
        self.path = Path(path)

    def matches(self, code: str) -> bool:
        """Tell whether ``code`` is the last code recorded (False if none is)."""
        try:
            salt_hex, digest_hex = self.path.read_text(encoding="ascii").strip().split(":")
            salt = bytes.fromhex(salt_hex)
        except (OSError, ValueError):
            return False
        return hmac.compare_digest(_digest(salt, code), digest_hex)

    def remember(self, code: str) -> None:
        """Record ``code`` as the last one; a failure is logged, not fatal."""
        salt = secrets.token_bytes(_SALT_BYTES)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(f"{salt.hex()}:{_digest(salt, code)}\n")
            os.replace(tmp, self.path)
        except OSError as exc:
            _LOGGER.warning("could not record the last code's hash in %s: %s", self.path, exc)


class MemoryCodeStore:
    """The salted SHA-256 of the last code, kept in this process only (no state dir)."""

    def __init__(self) -> None:
        """Start with no last code."""
        self._salted: tuple[bytes, str] | None = None

    def matches(self, code: str) -> bool:
        """Tell whether ``code`` is the last code recorded (False if none is)."""
        if self._salted is None:
            return False
        salt, digest_hex = self._salted
        return hmac.compare_digest(_digest(salt, code), digest_hex)

    def remember(self, code: str) -> None:
        """Record ``code`` as the last one (its salted hash, never the code)."""
        salt = secrets.token_bytes(_SALT_BYTES)
        self._salted = (salt, _digest(salt, code))


def _digest(salt: bytes, code: str) -> str:
    return hashlib.sha256(salt + code.encode("ascii")).hexdigest()
