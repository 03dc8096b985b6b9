"""Secrets at rest: a ``Secret`` wrapper that never prints, and PyNaCl SecretBox sealing.

API:

- ``Secret(value)``: ``reveal()`` gives the text; ``repr``/``str``/``format`` give ``******``;
  equality is constant-time; it refuses to be pickled or JSON-encoded.
- ``Sealer(key, *older_keys)``: ``seal(secret_or_str) -> str``, ``unseal(str) -> Secret``,
  ``needs_reseal(str)``, ``key_id``; ``Sealer.from_key_file(path)``.
- ``create_key_file(path, *, exist_ok=False)``, ``load_keys(path)``, ``generate_key()``,
  ``key_id_of(key)``.

Sealed format: ``s1:<key id>:<base64url(nonce || ciphertext)>`` where the key id is the first
8 hex digits of a keyed BLAKE2b of the key. The id lets a later key rotation keep older keys
for unsealing (extra key lines in the key file) and re-seal lazily (``needs_reseal``).

The key file lives outside the database (a copied DB alone reveals nothing). It holds one
64-hex key per line, primary first; ``#`` lines are comments. It is created 0600, and a key
file that group or others may read or write is refused (``KeyFileInsecure``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
from pathlib import Path
from typing import NoReturn

import nacl.exceptions
import nacl.secret
import nacl.utils

from agent.errors import KeyFileInsecure, KeyFileMissing, SecretsError, UnsealFailed

__all__ = [
    "MASK",
    "Sealer",
    "Secret",
    "create_key_file",
    "generate_key",
    "key_id_of",
    "load_keys",
]

MASK = "******"
_FORMAT = "s1"
_KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE
_KEY_FILE_HEADER = (
    "# bm-agent secrets key (PyNaCl SecretBox), one 64-hex key per line, primary first.\n"
    "# Back it up apart from the database: without it, sealed IPMI passwords and server\n"
    "# keys cannot be opened. Keep mode 0600.\n"
)


class Secret:
    """A secret string that never shows itself in reprs, logs or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        """Return the secret text (only to hand it to the peer that needs it)."""
        return self._value

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> NoReturn:
        raise TypeError("Secret values cannot be pickled")


def generate_key() -> bytes:
    """Make a fresh random SecretBox key."""
    return nacl.utils.random(_KEY_BYTES)


def key_id_of(key: bytes) -> str:
    """Return the 8-hex id of a key (keyed hash: the id reveals nothing about the key)."""
    return hashlib.blake2b(b"bm-agent key id", key=key, digest_size=4).hexdigest()


class Sealer:
    """Seal with the primary key; unseal with any known key, chosen by the key id."""

    def __init__(self, key: bytes, *older_keys: bytes) -> None:
        for candidate in (key, *older_keys):
            if len(candidate) != _KEY_BYTES:
                raise SecretsError(f"a secrets key must be {_KEY_BYTES} bytes")
        self._primary_id = key_id_of(key)
        self._boxes = {key_id_of(k): nacl.secret.SecretBox(k) for k in (*older_keys, key)}

    def __repr__(self) -> str:
        return f"Sealer(key_id={self._primary_id!r}, keys={len(self._boxes)})"

    @classmethod
    def from_key_file(cls, path: Path) -> Sealer:
        """Load the keys from ``path`` (refusing an insecure file)."""
        keys = load_keys(path)
        return cls(keys[0], *keys[1:])

    @property
    def key_id(self) -> str:
        """Id of the primary key (the one new seals use)."""
        return self._primary_id

    def seal(self, value: Secret | str) -> str:
        """Encrypt and authenticate ``value``; return the printable sealed form."""
        text = value.reveal() if isinstance(value, Secret) else value
        box = self._boxes[self._primary_id]
        blob = bytes(box.encrypt(text.encode("utf-8")))
        encoded = base64.urlsafe_b64encode(blob).decode("ascii").rstrip("=")
        return f"{_FORMAT}:{self._primary_id}:{encoded}"

    def unseal(self, sealed: str) -> Secret:
        """Open a sealed value; raise UnsealFailed if it is unknown, damaged or forged."""
        key_id, blob = _split_sealed(sealed)
        box = self._boxes.get(key_id)
        if box is None:
            raise UnsealFailed(f"sealed with unknown key id {key_id}")
        try:
            plain = box.decrypt(blob)
        except nacl.exceptions.CryptoError:
            raise UnsealFailed("authentication failed (tampered or wrong key)") from None
        return Secret(plain.decode("utf-8"))

    def needs_reseal(self, sealed: str) -> bool:
        """Tell whether ``sealed`` was made with an older key."""
        return _split_sealed(sealed)[0] != self._primary_id


def _split_sealed(sealed: str) -> tuple[str, bytes]:
    parts = sealed.split(":")
    if len(parts) != 3 or parts[0] != _FORMAT:
        raise UnsealFailed("not a sealed value of format s1")
    try:
        blob = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except ValueError:
        raise UnsealFailed("sealed value is not base64") from None
    return parts[1], blob


def create_key_file(path: Path, *, exist_ok: bool = False) -> Path:
    """Create a key file with a fresh key, mode 0600 (parent made 0700 if missing)."""
    path = Path(path)
    if path.exists() and exist_ok:
        load_keys(path)
        return path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise SecretsError("key file already exists; refusing to overwrite it",
                           path=str(path)) from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(_KEY_FILE_HEADER + generate_key().hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return path


def load_keys(path: Path) -> list[bytes]:
    """Read the keys of a key file, primary first; refuse group/world-accessible files."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyFileMissing(path=str(path)) from None
    except OSError as exc:
        raise SecretsError(f"cannot open key file ({exc.strerror})", path=str(path)) from None
    try:
        info = os.fstat(fd)  # fstat the open file: no race with a swap after the check
        if not stat.S_ISREG(info.st_mode):
            raise SecretsError("key file is not a regular file", path=str(path))
        if info.st_mode & 0o077:
            raise KeyFileInsecure(f"{stat.S_IMODE(info.st_mode):04o}", path=str(path))
        with os.fdopen(os.dup(fd), "r", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    finally:
        os.close(fd)
    return _parse_keys(text, path)


def _parse_keys(text: str, path: Path) -> list[bytes]:
    keys: list[bytes] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = bytes.fromhex(line)
        except ValueError:
            key = b""
        if len(key) != _KEY_BYTES:
            raise SecretsError(f"line {number}: expected {2 * _KEY_BYTES} hex digits",
                               path=str(path))
        keys.append(key)
    if not keys:
        raise SecretsError("key file holds no key", path=str(path))
    return keys
