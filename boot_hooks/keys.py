"""Read the 32-byte hex seeds bm-hook signs with; refuse files others can read.

Two key files exist (docs/hook.md):

- ``[server] key_file``: this PC's ``node_private_key`` (sr25519 seed, direct mode);
- ``[agent] token_key_file``: the café-wide hook token (ed25519 seed, agent mode).

Both hold 64 hex characters, optionally as a ``name=value`` line as in the node's
``dat/node.dat``. Their text never reaches a log or an exception message.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field

from boot_hooks.errors import ConfigError

__all__ = ["Seed", "read_seed_file"]

_HEX64 = re.compile(r"(?:0x)?([0-9a-fA-F]{64})")
_MAX_KEY_FILE_BYTES = 4096


@dataclass(frozen=True)
class Seed:
    """A 32-byte secret seed as lowercase hex (never printed)."""

    hex: str = field(repr=False)
    source: str = ""


def read_seed_file(path: str, what: str, field_name: str = "node_private_key") -> Seed:
    """Read a 64-hex seed from ``path``; ``what`` names the setting in error messages."""
    _refuse_loose_permissions(path, what)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_MAX_KEY_FILE_BYTES)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    text = raw.decode("utf-8", errors="replace")
    seed = _find_seed(text, field_name)
    if seed is None:
        raise ConfigError(f"{what} {path} holds no 64-hex-character key")
    return Seed(hex=seed.lower(), source=path)


def _find_seed(text: str, field_name: str) -> str | None:
    for line in text.splitlines():
        line = line.strip()
        name, sep, value = line.partition("=")
        if sep and name.strip() != field_name:
            continue
        match = _HEX64.fullmatch((value if sep else line).strip())
        if match:
            return match.group(1)
    return None


def _refuse_loose_permissions(path: str, what: str) -> None:
    # Like ssh: a secret others can read is already leaked. Windows uses ACLs; the
    # installer (packaging/windows/install.ps1) restricts them to SYSTEM.
    if os.name == "nt":
        return
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{what} {path} is readable by others; chmod 600 it")
