"""Windows key-file ACLs: who may read, judged on recorded DACLs (runs on every OS).

The DACLs below are what ``GetNamedSecurityInfo`` returns for real files (``icacls``
spelling in the comments): F = 0x1F01FF (FILE_ALL_ACCESS), RX = 0x1200A9.
"""

import sys
import types

import pytest

from boot_hooks import winacl
from boot_hooks.errors import ConfigError
from boot_hooks.keys import permission_problem, read_seed_file
from boot_hooks.winacl import describe_sids, read_file_aces, untrusted_readers

SYSTEM, ADMINS, USERS = "S-1-5-18", "S-1-5-32-544", "S-1-5-32-545"
AUTH_USERS, EVERYONE, OWNER_RIGHTS = "S-1-5-11", "S-1-1-0", "S-1-3-4"
ADMIN_USER = "S-1-5-21-3623811015-3361044348-30300820-1001"
TRUSTED_INSTALLER = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
FULL, READ_EXECUTE = 0x1F01FF, 0x1200A9
ALLOW, DENY = 0, 1
SEED = "4c2e7133834d6d7dd35088beda5556215f6f5b15d2cd3c3153f117aaeec2c28b"

# A key copied into C:\ProgramData\bm-hook by hand: inherited from C:\ProgramData
#   NT AUTHORITY\SYSTEM:(I)(F)  BUILTIN\Administrators:(I)(F)  PC\admin:(I)(F)  (CREATOR OWNER)
#   BUILTIN\Users:(I)(RX)
PROGRAMDATA_DEFAULT = [(SYSTEM, ALLOW, FULL), (ADMINS, ALLOW, FULL), (ADMIN_USER, ALLOW, FULL),
                       (USERS, ALLOW, READ_EXECUTE)]
# install.ps1: icacls /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F on
# the config dir, the key inherits:  NT AUTHORITY\SYSTEM:(I)(F)  BUILTIN\Administrators:(I)(F)
INSTALLER_RESTRICTED = [(SYSTEM, ALLOW, FULL), (ADMINS, ALLOW, FULL)]


def test_default_programdata_inheritance_lets_users_read():
    assert untrusted_readers(PROGRAMDATA_DEFAULT) == [ADMIN_USER, USERS]


def test_a_key_restricted_by_the_installer_passes():
    assert untrusted_readers(INSTALLER_RESTRICTED) == []


def test_a_null_dacl_is_everyone():
    assert untrusted_readers(None) == [EVERYONE]


def test_an_empty_dacl_grants_nobody():
    assert untrusted_readers([]) == []


def test_a_deny_before_the_allow_cancels_the_read():
    # icacls /deny *S-1-5-32-545:(R): Windows puts the deny first (canonical order).
    aces = [(USERS, DENY, 0x120089), *PROGRAMDATA_DEFAULT[:2], (USERS, ALLOW, READ_EXECUTE)]
    assert untrusted_readers(aces) == []


def test_a_deny_after_the_allow_does_not_count():
    aces = [*INSTALLER_RESTRICTED, (USERS, ALLOW, READ_EXECUTE), (USERS, DENY, 0x120089)]
    assert untrusted_readers(aces) == [USERS]


def test_a_deny_for_everyone_covers_every_sid():
    aces = [(EVERYONE, DENY, 0x80000000), *INSTALLER_RESTRICTED, (AUTH_USERS, ALLOW, READ_EXECUTE)]
    assert untrusted_readers(aces) == []


def test_a_deny_for_another_group_is_not_trusted():
    # Membership is unknown here: a deny for Guests says nothing about Users.
    aces = [("S-1-5-32-546", DENY, FULL), *INSTALLER_RESTRICTED, (USERS, ALLOW, READ_EXECUTE)]
    assert untrusted_readers(aces) == [USERS]


@pytest.mark.parametrize(("mask", "reads"), [
    (0x1, True),            # FILE_READ_DATA alone
    (0x80000000, True),     # GENERIC_READ
    (0x10000000, True),     # GENERIC_ALL
    (0x40000, True),        # WRITE_DAC: may grant itself read
    (0x80000, True),        # WRITE_OWNER: may take the file
    (0x20000000, False),    # GENERIC_EXECUTE = FILE_GENERIC_EXECUTE: no data
    (0x120080, False),      # READ_CONTROL | SYNCHRONIZE | FILE_READ_ATTRIBUTES
    (0x8, False),           # FILE_READ_EA
    (0x116, False),         # write/append data, write EA/attributes: no read
])
def test_which_bits_hand_over_the_key(mask, reads):
    assert untrusted_readers([(AUTH_USERS, ALLOW, mask)]) == ([AUTH_USERS] if reads else [])


def test_trusted_installer_may_read_but_owner_rights_may_not():
    aces = [*INSTALLER_RESTRICTED, (TRUSTED_INSTALLER, ALLOW, FULL), (OWNER_RIGHTS, ALLOW, FULL)]
    assert untrusted_readers(aces) == [OWNER_RIGHTS]


def test_callback_allows_count_and_audit_entries_do_not():
    aces = [(USERS, 2, FULL), (AUTH_USERS, 9, READ_EXECUTE)]
    assert untrusted_readers(aces) == [AUTH_USERS]


def test_well_known_sids_are_named_for_the_technician():
    assert describe_sids([USERS, ADMIN_USER]) == f"Users ({USERS}), {ADMIN_USER}"


def test_the_key_file_check_refuses_users_read_on_windows(tmp_path, monkeypatch):
    path = tmp_path / "hook-token.key"
    path.write_text(f"hook_token={SEED}\n")
    monkeypatch.setattr("boot_hooks.keys.read_file_aces", lambda p, what: PROGRAMDATA_DEFAULT)
    problem = permission_problem(str(path), "[agent] token_key_file", is_windows=True)
    assert f"readable by {ADMIN_USER}, Users ({USERS})" in problem
    assert "/inheritance:r /grant:r *S-1-5-18:F /grant:r *S-1-5-32-544:F" in problem
    assert SEED not in problem


def test_read_seed_file_refuses_a_loose_acl_on_windows(tmp_path, monkeypatch):
    # As found: on Windows the check returned early, so a key copied by hand into
    # C:\ProgramData (Users may read it) was used without a word.
    path = tmp_path / "server.key"
    path.write_text(SEED)
    path.chmod(0o600)
    monkeypatch.setattr("boot_hooks.keys.os.name", "nt")
    monkeypatch.setattr("boot_hooks.keys.read_file_aces", lambda p, what: PROGRAMDATA_DEFAULT)
    with pytest.raises(ConfigError, match=r"server.key is readable by .*Users \(S-1-5-32-545\)"):
        read_seed_file(str(path), "[server] key_file")
    monkeypatch.setattr("boot_hooks.keys.read_file_aces", lambda p, what: None)
    with pytest.raises(ConfigError, match=r"readable by Everyone \(S-1-1-0\)"):
        read_seed_file(str(path), "[server] key_file")
    monkeypatch.setattr("boot_hooks.keys.read_file_aces", lambda p, what: INSTALLER_RESTRICTED)
    assert read_seed_file(str(path), "[server] key_file").hex == SEED


def test_without_pywin32_the_acl_cannot_be_checked(monkeypatch):
    monkeypatch.setitem(sys.modules, "win32security", None)  # import fails, as on Linux
    with pytest.raises(ConfigError, match="cannot check the key file's ACL"):
        read_file_aces(r"C:\ProgramData\bm-hook\hook-token.key", "[agent] token_key_file")


class _Dacl:
    def __init__(self, aces):
        self._aces = aces

    def GetAceCount(self):  # pywin32 spells them so
        return len(self._aces)

    def GetAce(self, index):
        return self._aces[index]


def test_the_reader_turns_pywin32_aces_into_tuples(monkeypatch):
    # pywin32's shapes: ((type, flags), mask, PySID); masks may come back signed.
    dacl = _Dacl([((0, 0x10), FULL, "sid:" + SYSTEM), ((0, 0x10), -0x80000000, "sid:" + USERS),
                  ((0, 0x08), FULL, "sid:" + EVERYONE), ((5, 0), FULL, 1, 2, "sid:x")])
    descriptor = types.SimpleNamespace(GetSecurityDescriptorDacl=lambda: dacl)
    fake = types.SimpleNamespace(
        SE_FILE_OBJECT=1, DACL_SECURITY_INFORMATION=4,
        GetNamedSecurityInfo=lambda path, kind, info: descriptor,
        ConvertSidToStringSid=lambda sid: sid.removeprefix("sid:"))
    monkeypatch.setitem(sys.modules, "win32security", fake)
    monkeypatch.setitem(sys.modules, "pywintypes", types.SimpleNamespace(error=OSError))
    aces = read_file_aces("k", "[server] key_file")
    assert aces == [(SYSTEM, 0, FULL), (USERS, 0, 0x80000000)]
    assert untrusted_readers(aces) == [USERS]
    assert winacl.GENERIC_READ == 0x80000000
