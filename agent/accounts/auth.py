"""Staff authentication: argon2id passwords, users with roles, bearer tokens, sessions + CSRF.

API (``Authenticator(store, ...)`` or ``Authenticator.from_settings(store, settings.auth)``):

- users: ``create_user``, ``change_password``, ``set_role``, ``set_disabled``, ``remove_user``
  (each takes ``actor=`` and writes an audit event in the same transaction; the last enabled
  admin cannot be removed, demoted or disabled), ``list_users``;
- ``login(name=, password=, source_ip=) -> User``: booked and rate limited before the hash,
  hashes bounded (``agent.accounts.ratelimit``: ``RateLimited``, ``LoginBusy``), constant work for
  unknown names, ``AuthFailed`` otherwise; rehashes old-parameter hashes;
- ``change_password(...) -> PasswordChange``: the old password limited like a login; ends
  every session and revokes every bearer token of the user;
- ``issue_token(user=, label=, ttl_s=) -> IssuedToken`` (shown once; life capped per role,
  ``agent.accounts.rules.TokenCaps``), ``authenticate_token(token) -> Principal``, ``revoke_token``;
- ``open_session(user=) -> IssuedSession``, ``authenticate_session(cookie) -> Principal``,
  ``check_csrf(principal, presented)``, ``close_session(cookie)``;
- ``require_role(user, needed)`` raises ``PermissionDenied``.

Tokens and cookies are split tokens ``bmt_<selector>_<verifier>`` / ``bms_<...>``: the
random 8-byte selector finds the row, the 32-byte verifier's SHA-256 is compared with
``hmac.compare_digest``; only the hash is stored. Passwords are argon2id (libsodium via
PyNaCl) with opslimit=3, memlimit=64 MiB: 66 ms per hash on the 2-core CI box (INTERACTIVE,
2/64 MiB, measured 50 ms; MODERATE, 3/256 MiB, 520 ms: too slow for a login page).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from secrets import token_hex, token_urlsafe
from typing import TYPE_CHECKING

import nacl.exceptions
import nacl.pwhash

from agent.accounts.ratelimit import LoginRateLimiter, PasswordGate
from agent.accounts.rules import (
    TokenCaps,
    check_password_length,
    reject_unsafe_text,
    validate_user_name,
)
from agent.errors import (
    AuthFailed,
    CsrfFailed,
    NotFound,
    PermissionDenied,
    UserNotFound,
    ValidationError,
)
from agent.models import ACTOR_ANONYMOUS, ApiToken, EventKind, Role, User, WebSession
from agent.secrets import Secret

if TYPE_CHECKING:
    from agent.config import AuthSettings
    from agent.store import Store

__all__ = [
    "MEMLIMIT",
    "OPSLIMIT",
    "Authenticator",
    "IssuedSession",
    "IssuedToken",
    "PasswordChange",
    "PasswordHasher",
    "Principal",
    "require_role",
    "validate_user_name",
]

OPSLIMIT = 3
MEMLIMIT = 64 * 1024 * 1024
_SPLIT_TOKEN = re.compile(r"(bm[ts])_([0-9a-f]{16})_([0-9a-f]{64})")
_TOUCH_EVERY_S = 60.0


class PasswordHasher:
    """argon2id hashing with fixed cost parameters."""

    def __init__(self, *, opslimit: int = OPSLIMIT, memlimit: int = MEMLIMIT) -> None:
        self._ops = opslimit
        self._mem = memlimit
        self._dummy = self.hash(Secret("not a password: equalises unknown-user timing"))

    def hash(self, password: Secret) -> str:
        """Return the modular-crypt argon2id string for ``password``."""
        raw = nacl.pwhash.argon2id.str(password.reveal().encode("utf-8"),
                                       opslimit=self._ops, memlimit=self._mem)
        return raw.decode("ascii")

    def verify(self, pwhash: str, password: Secret) -> bool:
        """Tell whether ``password`` matches ``pwhash``."""
        try:
            return bool(nacl.pwhash.verify(pwhash.encode("ascii"),
                                           password.reveal().encode("utf-8")))
        except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, ValueError):
            return False

    def verify_dummy(self, password: Secret) -> None:
        """Spend the same time as a real verification (for unknown user names)."""
        self.verify(self._dummy, password)

    def needs_rehash(self, pwhash: str) -> bool:
        """Tell whether ``pwhash`` was made with other parameters than ours."""
        wanted = f"$argon2id$v=19$m={self._mem // 1024},t={self._ops},p=1$"
        return not pwhash.startswith(wanted)


@dataclass(frozen=True)
class IssuedToken:
    """A new bearer token: ``token`` is shown to the user once and never stored."""

    token: Secret
    info: ApiToken


@dataclass(frozen=True)
class IssuedSession:
    """A new browser session: ``cookie`` goes into an HttpOnly cookie, never stored."""

    cookie: Secret
    session: WebSession


@dataclass(frozen=True)
class Principal:
    """Who is calling, and how they proved it."""

    user: User
    via: str
    session: WebSession | None = None


def require_role(user: User, needed: Role) -> None:
    """Raise PermissionDenied unless ``user`` has at least role ``needed``."""
    if not user.role.allows(needed):
        raise PermissionDenied(needed=str(needed))


@dataclass(frozen=True)
class PasswordChange:
    """A changed password: the user, and how many sessions and tokens it ended."""

    user: User
    revoked_sessions: int
    revoked_tokens: int


def _new_split_token(prefix: str) -> tuple[str, str, bytes]:
    selector, verifier = token_hex(8), token_hex(32)
    return f"{prefix}_{selector}_{verifier}", selector, hashlib.sha256(verifier.encode()).digest()


def _parse_split_token(text: str, prefix: str) -> tuple[str, bytes]:
    match = _SPLIT_TOKEN.fullmatch(text.strip())
    if match is None or match.group(1) != prefix:
        raise AuthFailed("malformed credential")
    return match.group(2), hashlib.sha256(match.group(3).encode()).digest()


class Authenticator:
    """Users, passwords, tokens and sessions over the store."""

    def __init__(self, store: Store, *, hasher: PasswordHasher | None = None,
                 limiter: LoginRateLimiter | None = None,
                 passwd_limiter: LoginRateLimiter | None = None,
                 gate: PasswordGate | None = None, session_idle_s: float = 7200,
                 session_max_s: float = 43200, token_ttl_s: float = 90 * 86400,
                 token_caps: TokenCaps | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._hasher = hasher or PasswordHasher()
        self._limiter = limiter or LoginRateLimiter()
        # Old-password guesses count apart from logins, with the same limits.
        self._passwd_limiter = passwd_limiter or LoginRateLimiter()
        self._gate = gate or PasswordGate()
        self._idle_s = session_idle_s
        self._max_s = session_max_s
        self._caps = token_caps or TokenCaps(default_s=int(token_ttl_s))
        self._clock = clock

    @classmethod
    def from_settings(cls, store: Store, settings: AuthSettings,
                      observe: Callable[[str, str], None] | None = None) -> Authenticator:
        """Build one from the ``[auth]`` settings (``observe``: password-attempt outcomes)."""
        def limiter() -> LoginRateLimiter:
            return LoginRateLimiter(max_failures=settings.login_max_failures,
                                    ip_max_failures=settings.login_ip_max_failures,
                                    name_max_failures=settings.login_name_max_failures,
                                    window_s=settings.login_window_s)
        return cls(store, limiter=limiter(), passwd_limiter=limiter(),
                   gate=PasswordGate(slots=settings.login_hash_slots, observe=observe),
                   session_idle_s=settings.session_idle_s,
                   session_max_s=settings.session_max_s,
                   token_caps=TokenCaps.from_settings(settings))

    def _audit(self, actor: str, action: str, target: str, **detail: str) -> None:
        self._store.events.append(actor=actor, kind=EventKind.AUDIT, action=action,
                                  result="ok", detail={"user": target, **detail})

    def create_user(self, *, name: str, password: Secret, role: Role, actor: str) -> User:
        """Create a staff user (audited)."""
        validate_user_name(name)
        check_password_length(password)
        with self._gate.slot():
            pwhash = self._hasher.hash(password)
        with self._store.transaction():
            user = self._store.users.create(name=name, role=Role(role), pwhash=pwhash)
            self._audit(actor, "user_add", name, role=str(role))
        return user

    def change_password(self, *, name: str, new_password: Secret, actor: str,
                        old_password: Secret | None = None,
                        source_ip: str = "") -> PasswordChange:
        """Set a new password; end every session and revoke every token of the user.

        With ``old_password`` (one's own change) the old one is checked first, rate limited
        per (user, ``source_ip``) like a login (``RateLimited``, ``LoginBusy``).
        """
        check_password_length(new_password)
        user, current = self._store.users.password_hash(name=name)
        if old_password is None:
            with self._gate.slot():
                pwhash = self._hasher.hash(new_password)
        else:
            with self._gate.attempt(self._passwd_limiter, name=user.name, source_ip=source_ip,
                                    purpose="password_change"):
                if not self._hasher.verify(current, old_password):
                    raise AuthFailed("old password does not match")
                pwhash = self._hasher.hash(new_password)
        with self._store.transaction():
            user = self._store.users.set_password_hash(user_id=user.id, pwhash=pwhash)
            sessions = self._store.sessions.remove_for_user(user_id=user.id)
            tokens = self._store.tokens.remove_for_user(user_id=user.id)
            self._audit(actor, "user_passwd", user.name, revoked_sessions=str(sessions),
                        revoked_tokens=str(tokens))
        return PasswordChange(user=user, revoked_sessions=sessions, revoked_tokens=tokens)

    def set_role(self, *, name: str, role: Role, actor: str) -> User:
        """Change a user's role (audited); the last admin keeps theirs."""
        with self._store.transaction():
            user = self._store.users.get(name=name)
            if role != Role.ADMIN:
                self._guard_last_admin(user)
            user = self._store.users.set_role(user_id=user.id, role=Role(role))
            self._audit(actor, "user_role", user.name, role=str(role))
        return user

    def set_disabled(self, *, name: str, disabled: bool, actor: str) -> User:
        """Disable (ending sessions) or re-enable a user (audited)."""
        with self._store.transaction():
            user = self._store.users.get(name=name)
            if disabled:
                self._guard_last_admin(user)
                self._store.sessions.remove_for_user(user_id=user.id)
            user = self._store.users.set_disabled(user_id=user.id, disabled=disabled)
            self._audit(actor, "user_disable" if disabled else "user_enable", user.name)
        return user

    def remove_user(self, *, name: str, actor: str) -> None:
        """Delete a user with their tokens and sessions (audited)."""
        with self._store.transaction():
            user = self._store.users.get(name=name)
            self._guard_last_admin(user)
            self._store.users.remove(user_id=user.id)
            self._audit(actor, "user_rm", user.name)

    def _guard_last_admin(self, user: User) -> None:
        if user.role == Role.ADMIN and not user.disabled and \
                self._store.users.count_active_admins() <= 1:
            raise ValidationError(field="role", reason="the last enabled admin must stay")

    def list_users(self) -> list[User]:
        """Return every user by name."""
        return self._store.users.all()

    def login(self, *, name: str, password: Secret, source_ip: str) -> User:
        """Check a password login; raise RateLimited, LoginBusy or AuthFailed (never which part).

        The attempt is booked as a failure before the hash (taken back on success), so
        parallel guesses cannot outrun the limit; the hash holds one of the gate's slots.
        """
        with self._gate.attempt(self._limiter, name=name, source_ip=source_ip):
            try:
                user, pwhash = self._store.users.password_hash(name=name)
            except UserNotFound:
                self._hasher.verify_dummy(password)
                self._login_failed(name, source_ip, known=False)
                raise AuthFailed("unknown user") from None
            if not self._hasher.verify(pwhash, password) or user.disabled:
                self._login_failed(user.name, source_ip, known=True)
                raise AuthFailed("user disabled" if user.disabled else "wrong password")
            if self._hasher.needs_rehash(pwhash):
                self._store.users.set_password_hash(user_id=user.id,
                                                    pwhash=self._hasher.hash(password))
        self._store.events.append(actor=user.name, kind=EventKind.AUTH, action="login",
                                  result="ok", detail={"source_ip": source_ip})
        return user

    def _login_failed(self, name: str, source_ip: str, *, known: bool) -> None:
        # Counted already (booked by the gate). An unknown "name" may be a password: not kept.
        self._store.events.append(actor=name if known else ACTOR_ANONYMOUS, kind=EventKind.AUTH,
                                  action="login", result="failed",
                                  detail={"source_ip": source_ip})

    def issue_token(self, *, user: User, label: str = "",
                    ttl_s: float | None = None) -> IssuedToken:
        """Make a bearer token for ``user``: ttl_s None/0 = the default, capped by role.

        Raise TokenTtlTooLong over the role's cap, UnsafeText for a control/bidi label.
        """
        ttl = self._caps.lifetime(user.role, ttl_s)
        reject_unsafe_text("label", label)
        token, selector, digest = _new_split_token("bmt")
        info = self._store.tokens.create(user_id=user.id, selector=selector,
                                         verifier_hash=digest, label=label[:64],
                                         expires_at=self._clock() + ttl)
        return IssuedToken(token=Secret(token), info=info)

    def authenticate_token(self, token: str) -> Principal:
        """Return the principal for an ``Authorization: Bearer`` token or raise AuthFailed."""
        selector, digest = _parse_split_token(token, "bmt")
        try:
            info, stored = self._store.tokens.lookup(selector=selector)
        except NotFound:
            raise AuthFailed("unknown token") from None
        now = self._clock()
        if not hmac.compare_digest(stored, digest):
            raise AuthFailed("wrong token")
        user = self._active_user(info.user_id)
        # The role's cap ends old tokens stored without an expiry, and those of a demoted user.
        expires = info.created_at + self._caps.cap(user.role)
        if info.expires_at is not None:
            expires = min(expires, info.expires_at)
        if expires <= now:
            raise AuthFailed("token expired")
        if info.last_used_at is None or now - info.last_used_at > _TOUCH_EVERY_S:
            self._store.tokens.touch(token_id=info.id)
        return Principal(user=user, via="token")

    def revoke_token(self, *, token_id: int, actor: str) -> None:
        """Delete a token (audited)."""
        with self._store.transaction():
            self._store.tokens.revoke(token_id=token_id)
            self._store.events.append(actor=actor, kind=EventKind.AUDIT, action="token_revoke",
                                      result="ok", detail={"token_id": token_id})

    def _active_user(self, user_id: int) -> User:
        try:
            user = self._store.users.get_by_id(user_id=user_id)
        except UserNotFound:
            raise AuthFailed("user removed") from None
        if user.disabled:
            raise AuthFailed("user disabled")
        return user

    def open_session(self, *, user: User) -> IssuedSession:
        """Start a browser session with a fresh CSRF token."""
        cookie, selector, digest = _new_split_token("bms")
        now = self._clock()
        session = self._store.sessions.create(
            user_id=user.id, selector=selector, verifier_hash=digest,
            csrf_token=token_urlsafe(32), expires_at=now + min(self._idle_s, self._max_s))
        return IssuedSession(cookie=Secret(cookie), session=session)

    def authenticate_session(self, cookie: str) -> Principal:
        """Return the principal for a session cookie or raise AuthFailed; slide the expiry."""
        selector, digest = _parse_split_token(cookie, "bms")
        try:
            session, stored = self._store.sessions.lookup(selector=selector)
        except NotFound:
            raise AuthFailed("unknown session") from None
        if not hmac.compare_digest(stored, digest):
            raise AuthFailed("wrong session")
        now = self._clock()
        if session.expires_at <= now:
            self._store.sessions.remove(session_id=session.id)
            raise AuthFailed("session expired")
        user = self._active_user(session.user_id)
        if now - session.last_seen_at > _TOUCH_EVERY_S:
            expires = min(now + self._idle_s, session.created_at + self._max_s)
            self._store.sessions.extend(session_id=session.id, expires_at=expires)
        return Principal(user=user, via="session", session=session)

    def check_csrf(self, principal: Principal, presented: str | None) -> None:
        """Raise CsrfFailed unless a session principal presents its CSRF token."""
        if principal.session is None:
            return  # bearer tokens are not sent by browsers on their own: no CSRF risk
        if not presented or not hmac.compare_digest(principal.session.csrf_token.encode(),
                                                    presented.encode()):
            raise CsrfFailed()

    def close_session(self, cookie: str) -> None:
        """End the session of ``cookie`` (logout); unknown cookies are ignored."""
        try:
            principal = self.authenticate_session(cookie)
        except AuthFailed:
            return
        if principal.session is not None:
            self._store.sessions.remove(session_id=principal.session.id)
