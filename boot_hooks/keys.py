"""Read the 32-byte hex seeds bm-hook signs with; refuse files others can read.

Two key files exist (docs/hook.md):

- ``[server] key_file``: this PC's ``node_private_key`` (sr25519 seed, direct mode);
- ``[agent] token_key_file``: the café-wide hook token (ed25519 seed, agent mode);
- ``[agent] seat_key_file``: this PC's own seat key (ed25519 seed, agent mode), made by
  ``load_or_create_seat_key`` on first boot, written owner-only (0600 in a 0700 directory;
  on Windows ``icacls`` gives the file to SYSTEM and Administrators only, no inheritance).

Both hold 64 hex characters, optionally as a ``name=value`` line as in the node's
``dat/node.dat``. Their text never reaches a log or an exception message. A key file
others may read is refused: on Linux any group/other mode bit, on Windows any reader in
its ACL but SYSTEM, Administrators and TrustedInstaller (:mod:`boot_hooks.winacl`).
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
from boot_hooks.winacl import describe_sids, read_file_aces, untrusted_readers

__all__ = ["SEAT_KEY_FIELD", "Seed", "find_seed", "load_or_create_seat_key",
           "permission_problem", "read_seed_file", "restrict_windows_acl",
           "restrict_windows_dir_acl"]

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
    seed = find_seed(text, field_name)
    if seed is None:
        raise ConfigError(f"{what} {path} holds no 64-hex-character key")
    return Seed(hex=seed.lower(), source=path)


def find_seed(text: str, field_name: str) -> str | None:
    """Return the 64-hex value of the ``field_name=`` line, or of a bare line; else None."""
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
    # Like ssh: a secret others can read is already leaked.
    problem = permission_problem(path, what)
    if problem:
        raise ConfigError(f"{what} {path} {problem}")


def permission_problem(path: str, what: str, is_windows: bool | None = None) -> str:
    """Say who else may read the key file and how to fix it; ``""`` when only we may.

    Linux: any group/other bit. Windows: any SID but SYSTEM, Administrators and
    TrustedInstaller granted read in the DACL (:mod:`boot_hooks.winacl`).
    """
    windows = os.name == "nt" if is_windows is None else is_windows
    if windows:
        readers = untrusted_readers(read_file_aces(path, what))
        if not readers:
            return ""
        return (f"is readable by {describe_sids(readers)}; restrict it to SYSTEM and"
                f' Administrators: icacls "{path}" /inheritance:r /grant:r *S-1-5-18:F'
                " /grant:r *S-1-5-32-544:F")
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return "is readable by others; chmod 600 it"
    return ""


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
# Directories: the same two, inherited by every file and subdirectory made inside.
_WINDOWS_DIR_OWNERS = ("*S-1-5-18:(OI)(CI)F", "*S-1-5-32-544:(OI)(CI)F")
Runner = Callable[[Sequence[str]], int]


def restrict_windows_acl(path: str, run: Runner | None = None) -> None:
    """Give ``path`` to SYSTEM and Administrators only (no inherited entries), or remove it."""
    failure = _icacls_restrict(path, _WINDOWS_OWNERS, run)
    if failure:
        os.unlink(path)
        raise ConfigError(f"cannot restrict [agent] seat_key_file {path} to SYSTEM and"
                          f" Administrators (icacls {failure})")


def restrict_windows_dir_acl(path: str, run: Runner | None = None) -> str:
    """Give directory ``path`` (and what it will hold) to SYSTEM and Administrators only.

    Return ``""`` on success, else why not (the caller decides how bad that is).
    """
    return _icacls_restrict(path, _WINDOWS_DIR_OWNERS, run)


def _icacls_restrict(path: str, grants: Sequence[str], run: Runner | None) -> str:
    command = ["icacls", path, "/inheritance:r"]
    for grant in grants:
        command += ["/grant:r", grant]
    try:
        code = (run or _run_quietly)(command)
    except (OSError, subprocess.SubprocessError) as exc:
        return type(exc).__name__
    return f"exit {code}" if code != 0 else ""


def _run_quietly(command: Sequence[str]) -> int:
    return subprocess.run(list(command), capture_output=True, timeout=30,
                          check=False).returncode
