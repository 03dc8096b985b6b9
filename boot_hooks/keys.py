"""Read the 32-byte hex seeds bm-hook signs with; refuse files others can read.

Two key files exist (docs/hook.md):

- ``[server] key_file``: this PC's ``node_private_key`` (sr25519 seed, direct mode);
- ``[agent] token_key_file``: the café-wide hook token (ed25519 seed, agent mode);
- ``[agent] seat_key_file``: this PC's own seat key (ed25519 seed, agent mode), made by
  ``load_or_create_seat_key`` on first boot, written owner-only (0600 in a 0700 directory;
  on Windows ``icacls`` gives the file to SYSTEM and Administrators only, no inheritance).

Both hold 64 hex characters, optionally as a ``name=value`` line as in the node's
``dat/node.dat``. Their text never reaches a log or an exception message.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nacl.signing

from boot_hooks.errors import ConfigError

__all__ = ["SEAT_KEY_FIELD", "Seed", "load_or_create_seat_key", "read_seed_file",
           "restrict_windows_acl"]

_LOGGER = logging.getLogger(__name__)
SEAT_KEY_FIELD = "seat_key"

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


def load_or_create_seat_key(path: str) -> tuple[Seed, bool]:
    """Read this PC's seat key, or make one (first boot); return (seed, created)."""
    what = "[agent] seat_key_file"
    if os.path.exists(path):
        return read_seed_file(path, what, SEAT_KEY_FIELD), False
    seed = bytes(nacl.signing.SigningKey.generate()).hex()
    try:
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_EXCL: two runs racing at boot never both write; the loser reads the winner's.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_seed_file(path, what, SEAT_KEY_FIELD), False
    except OSError as exc:
        raise ConfigError(f"cannot create {what} {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(f"{SEAT_KEY_FIELD}={seed}\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        os.unlink(path)
        raise ConfigError(f"cannot write {what} {path}: {exc.strerror}") from None
    if os.name == "nt":
        restrict_windows_acl(path)
    _LOGGER.info("step seat: made this PC's seat key in %s", path)
    return Seed(hex=seed, source=path), True


# Well-known SIDs, not names: "SYSTEM" and "Administrators" are localised on Chinese Windows.
_WINDOWS_OWNERS = ("*S-1-5-18:F", "*S-1-5-32-544:F")


def restrict_windows_acl(path: str,
                         run: Callable[[Sequence[str]], int] | None = None) -> None:
    """Give ``path`` to SYSTEM and Administrators only (no inherited entries), or remove it."""
    command = ["icacls", path, "/inheritance:r"]
    for owner in _WINDOWS_OWNERS:
        command += ["/grant:r", owner]
    runner = run or _run_quietly
    try:
        code = runner(command)
    except (OSError, subprocess.SubprocessError) as exc:
        code, reason = -1, type(exc).__name__
    else:
        reason = f"exit {code}"
    if code != 0:
        os.unlink(path)
        raise ConfigError(f"cannot restrict [agent] seat_key_file {path} to SYSTEM and"
                          f" Administrators (icacls {reason})")


def _run_quietly(command: Sequence[str]) -> int:
    return subprocess.run(list(command), capture_output=True, timeout=30,
                          check=False).returncode
