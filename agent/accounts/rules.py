"""The rules for staff account input: user names, passwords, free text, token lifetimes. No I/O.

- ``validate_user_name``: 1-32 ASCII letters, digits, ``.``, ``_``, ``-`` (not first);
- ``check_password_length``: 8 to 256 characters;
- ``reject_unsafe_text(field, text)``: ``UnsafeText`` (422) for control characters (C0, DEL,
  C1) and the bidirectional marks and overrides that make a name read differently from what
  it is (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), by the one rule of
  ``agent.display_text`` that the inventory uses too. A user name cannot hold them anyway;
  token labels and login names typed by anyone can.
- ``TokenCaps``: the longest life of a bearer token per role (``[auth]
  token_max_ttl_<role>_s``: viewer 30 days, operator 90, admin 365 by default) and
  ``lifetime(role, requested)``: a missing or 0 ``ttl_s`` takes ``[auth] token_ttl_s``
  (0 there: the cap) cut to the role's cap; a longer request is refused
  (``TokenTtlTooLong``, 422), never silently shortened. An admin allows longer tokens by
  raising the role's cap in the config: the API never mints an endless token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.display_text import hidden_character
from agent.errors import TokenTtlTooLong, UnsafeText, ValidationError
from agent.models import Role

if TYPE_CHECKING:
    from agent.config import AuthSettings
    from agent.secrets import Secret

__all__ = [
    "PASSWORD_MAX",
    "PASSWORD_MIN",
    "TokenCaps",
    "check_password_length",
    "reject_unsafe_text",
    "validate_user_name",
]

PASSWORD_MIN = 8
PASSWORD_MAX = 256
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_DAY = 86400


def validate_user_name(name: str) -> str:
    """Return ``name`` if it is 1-32 of letters, digits, ``.``, ``_``, ``-`` (not first)."""
    reject_unsafe_text("name", name)
    if not _NAME.fullmatch(name):
        raise ValidationError(field="name", reason="1-32 letters, digits, '.', '_' or '-'")
    return name


def check_password_length(password: Secret) -> None:
    """Raise ValidationError unless the password has 8 to 256 characters."""
    size = len(password.reveal())
    if size < PASSWORD_MIN or size > PASSWORD_MAX:
        raise ValidationError(field="password",
                              reason=f"{PASSWORD_MIN} to {PASSWORD_MAX} characters")


def reject_unsafe_text(field: str, text: str) -> str:
    """Return ``text``; raise UnsafeText if it holds a control or bidirectional mark."""
    if hidden_character(text) is not None:
        raise UnsafeText(field=field)
    return text


@dataclass(frozen=True)
class TokenCaps:
    """Longest bearer-token life per role, and the default asked-for life."""

    viewer_s: int = 30 * _DAY
    operator_s: int = 90 * _DAY
    admin_s: int = 365 * _DAY
    default_s: int = 90 * _DAY

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> TokenCaps:
        """Build them from the ``[auth]`` settings."""
        return cls(viewer_s=settings.token_max_ttl_viewer_s,
                   operator_s=settings.token_max_ttl_operator_s,
                   admin_s=settings.token_max_ttl_admin_s, default_s=settings.token_ttl_s)

    def cap(self, role: Role) -> int:
        """Return the longest life, in seconds, of a token of a user with ``role``."""
        return {Role.VIEWER: self.viewer_s, Role.OPERATOR: self.operator_s,
                Role.ADMIN: self.admin_s}[Role(role)]

    def lifetime(self, role: Role, requested: float | None) -> float:
        """Return the life of a new token: the default when 0/None, refused over the cap."""
        cap = self.cap(role)
        if not requested:
            return min(self.default_s, cap) if self.default_s else cap
        if requested > cap:
            raise TokenTtlTooLong(role=str(role), max_s=cap)
        return requested
