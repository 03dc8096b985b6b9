"""Who may read a file on Windows: its DACL, judged by well-known SIDs (never by names).

A key file may be readable by SYSTEM (``S-1-5-18``), Administrators (``S-1-5-32-544``) and
TrustedInstaller (the Windows Modules Installer service's SID: only that service of the
OS itself runs as it, and it can replace any system file anyway). Any other SID granted
read is an offending reader. Judged per access-allowed entry, in order:

- "read" means the bits that hand over the key: ``FILE_READ_DATA``, ``GENERIC_READ``,
  ``GENERIC_ALL``, and also ``WRITE_DAC`` / ``WRITE_OWNER`` (whoever may rewrite the ACL
  or take ownership can grant itself read). ``GENERIC_EXECUTE`` maps to
  ``FILE_GENERIC_EXECUTE`` (execute, attributes, read-control, synchronize): no data, so
  it is not read; nor are ``FILE_READ_ATTRIBUTES`` / ``FILE_READ_EA`` / ``READ_CONTROL``.
- a deny entry placed BEFORE an allow entry cancels the bits it denies, when it names the
  same SID or Everyone (Windows reads entries in order; group membership of other SIDs
  cannot be known here, so any other deny is not counted: a conservative verdict).
- a NULL DACL grants everyone everything; an empty DACL grants nobody anything.
- ``OWNER RIGHTS`` (``S-1-3-4``) is not trusted: the owner may be an ordinary user.

:func:`untrusted_readers` is pure (tested on every OS with recorded DACLs);
:func:`read_file_aces` is the thin pywin32 reader, used on Windows only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from boot_hooks.errors import ConfigError

__all__ = ["Ace", "describe_sids", "read_file_aces", "untrusted_readers"]

SYSTEM = "S-1-5-18"
ADMINISTRATORS = "S-1-5-32-544"
TRUSTED_INSTALLER = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
EVERYONE = "S-1-1-0"
TRUSTED_READERS = frozenset({SYSTEM, ADMINISTRATORS, TRUSTED_INSTALLER})

ACCESS_ALLOWED, ACCESS_DENIED, ACCESS_ALLOWED_CALLBACK = 0, 1, 9
INHERIT_ONLY_ACE = 0x08
FILE_READ_DATA = 0x1
WRITE_DAC, WRITE_OWNER = 0x40000, 0x80000
GENERIC_ALL, GENERIC_READ = 0x10000000, 0x80000000
_TAKES_THE_KEY = FILE_READ_DATA | WRITE_DAC | WRITE_OWNER

_NAMES = {
    EVERYONE: "Everyone", "S-1-5-11": "Authenticated Users", "S-1-5-32-545": "Users",
    "S-1-5-32-546": "Guests", "S-1-5-4": "INTERACTIVE", "S-1-3-4": "OWNER RIGHTS",
    "S-1-3-0": "CREATOR OWNER", "S-1-5-7": "ANONYMOUS LOGON",
    "S-1-15-2-1": "ALL APPLICATION PACKAGES",
}

Ace = tuple[str, int, int]  # (SID string, ACE type, access mask)


def untrusted_readers(aces: Sequence[Ace] | None) -> list[str]:
    """Return the SIDs other than SYSTEM/Administrators/TrustedInstaller that may read.

    ``aces`` is the DACL in order, or None for a NULL DACL (everyone may do anything).
    """
    if aces is None:
        return [EVERYONE]
    denied: dict[str, int] = {}
    readers: list[str] = []
    for sid, ace_type, mask in aces:
        if ace_type == ACCESS_DENIED:
            denied[sid] = denied.get(sid, 0) | _effective(mask)
            continue
        if ace_type not in (ACCESS_ALLOWED, ACCESS_ALLOWED_CALLBACK) or sid in TRUSTED_READERS:
            continue
        blocked = denied.get(sid, 0) | denied.get(EVERYONE, 0)
        if _effective(mask) & ~blocked & _TAKES_THE_KEY and sid not in readers:
            readers.append(sid)
    return readers


def _effective(mask: int) -> int:
    """Map the generic bits that matter onto the specific ones."""
    if mask & GENERIC_ALL:
        mask |= FILE_READ_DATA | WRITE_DAC | WRITE_OWNER
    if mask & GENERIC_READ:
        mask |= FILE_READ_DATA
    return mask


def describe_sids(sids: Sequence[str]) -> str:
    """Name well-known SIDs for a technician: ``Users (S-1-5-32-545)``."""
    return ", ".join(f"{_NAMES[sid]} ({sid})" if sid in _NAMES else sid for sid in sids)


def read_file_aces(path: str, what: str) -> list[Ace] | None:
    """Read ``path``'s DACL through pywin32 (Windows only); None for a NULL DACL."""
    try:
        import pywintypes
        import win32security
    except ImportError:
        raise ConfigError(f"cannot check the key file's ACL of {what} {path}: pywin32 is"
                          " missing (pip install pywin32)") from None
    try:
        descriptor = win32security.GetNamedSecurityInfo(
            path, win32security.SE_FILE_OBJECT, win32security.DACL_SECURITY_INFORMATION)
        dacl = descriptor.GetSecurityDescriptorDacl()
    except pywintypes.error as exc:
        raise ConfigError(f"cannot read {what} {path}'s ACL: {exc.strerror}") from None
    if dacl is None:
        return None
    return [ace for ace in (_ace(dacl.GetAce(i), win32security)
                            for i in range(dacl.GetAceCount())) if ace is not None]


def _ace(raw: Any, win32security: Any) -> Ace | None:
    # pywin32: ((AceType, AceFlags), Mask, PySID) for the plain allow/deny entries.
    (ace_type, flags), mask = raw[0], raw[1]
    if flags & INHERIT_ONLY_ACE or ace_type not in (ACCESS_ALLOWED, ACCESS_DENIED,
                                                     ACCESS_ALLOWED_CALLBACK):
        return None
    sid = str(win32security.ConvertSidToStringSid(raw[-1]))
    return (sid, int(ace_type), int(mask) & 0xFFFFFFFF)
