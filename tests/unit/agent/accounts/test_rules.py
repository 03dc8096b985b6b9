"""Account input rules (unsafe text, token caps) and what a password change revokes."""

from __future__ import annotations

import hashlib

import pytest
from nacl.pwhash import argon2id

from agent.accounts.auth import Authenticator, PasswordHasher
from agent.accounts.ratelimit import LoginRateLimiter
from agent.accounts.rules import TokenCaps, reject_unsafe_text, validate_user_name
from agent.api.errors import agent_error_status
from agent.display_text import BIDI_CONTROLS
from agent.errors import AuthFailed, RateLimited, TokenTtlTooLong, UnsafeText
from agent.models import Role
from agent.secrets import Secret
from agent.store import Store
from tests.support.clock import Clock

FAST = PasswordHasher(opslimit=argon2id.OPSLIMIT_MIN, memlimit=argon2id.MEMLIMIT_MIN)
DAY = 86400


@pytest.fixture
def clock() -> Clock:
    return Clock(1_000_000.0)


@pytest.fixture
def store_clock(clock: Clock) -> Clock:
    return clock


@pytest.fixture
def auth(store: Store, clock: Clock) -> Authenticator:
    limiter = LoginRateLimiter(max_failures=5, ip_max_failures=50, window_s=300, clock=clock)
    passwd = LoginRateLimiter(max_failures=5, ip_max_failures=50, window_s=300, clock=clock)
    return Authenticator(store, hasher=FAST, limiter=limiter, passwd_limiter=passwd,
                         clock=clock, token_caps=TokenCaps())


@pytest.mark.parametrize("char", [*sorted(BIDI_CONTROLS), "\x00", "\x1b", "\x7f", "\x85"])
def test_bidi_and_control_characters_are_refused(char: str) -> None:
    with pytest.raises(UnsafeText) as info:
        reject_unsafe_text("label", f"ci{char}nimda")
    assert agent_error_status(info.value) == 422 and info.value.field == "label"
    with pytest.raises(UnsafeText):
        validate_user_name(f"adm{char}in")


def test_every_listed_bidi_mark_is_in_the_set() -> None:
    listed = [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]
    assert {chr(c) for c in listed} == BIDI_CONTROLS


def test_ordinary_text_passes() -> None:
    assert reject_unsafe_text("label", "前台 PC-01 (café)") == "前台 PC-01 (café)"


def test_token_lifetime_rule() -> None:
    caps = TokenCaps(viewer_s=30 * DAY, operator_s=90 * DAY, admin_s=365 * DAY,
                     default_s=90 * DAY)
    assert caps.lifetime(Role.VIEWER, None) == 30 * DAY  # default cut to the cap
    assert caps.lifetime(Role.VIEWER, 0) == 30 * DAY
    assert caps.lifetime(Role.ADMIN, 0) == 90 * DAY  # the default, under the cap
    assert caps.lifetime(Role.OPERATOR, 3600) == 3600
    assert TokenCaps(default_s=0).lifetime(Role.ADMIN, None) == 365 * DAY
    with pytest.raises(TokenTtlTooLong) as info:
        caps.lifetime(Role.VIEWER, 30 * DAY + 1)
    assert agent_error_status(info.value) == 422
    assert info.value.params == {"field": "ttl_s", "role": "viewer", "max_s": 30 * DAY}


def test_ttl_zero_no_longer_makes_an_endless_token(auth: Authenticator, clock: Clock) -> None:
    viewer = auth.create_user(name="vic", password=Secret("vic-password"), role=Role.VIEWER,
                              actor="a")
    issued = auth.issue_token(user=viewer, ttl_s=0)
    assert issued.info.expires_at == clock.now + 30 * DAY
    with pytest.raises(TokenTtlTooLong):
        auth.issue_token(user=viewer, ttl_s=31 * DAY)
    with pytest.raises(UnsafeText):
        auth.issue_token(user=viewer, label="ci\u202egnp.exe")


def test_role_cap_ends_tokens_stored_without_expiry(auth: Authenticator, store: Store,
                                                   clock: Clock) -> None:
    viewer = auth.create_user(name="old", password=Secret("old-password"), role=Role.VIEWER,
                              actor="a")
    # A token from before the caps: no expiry in the store.
    store.tokens.create(user_id=viewer.id, selector="00112233aabbccdd",
                        verifier_hash=hashlib.sha256(b"f" * 64).digest())
    token = "bmt_00112233aabbccdd_" + "f" * 64
    assert auth.authenticate_token(token).user.name == "old"
    clock.now += 30 * DAY + 1
    with pytest.raises(AuthFailed) as info:
        auth.authenticate_token(token)
    assert info.value.reason == "token expired"


def test_password_change_revokes_sessions_and_tokens(auth: Authenticator) -> None:
    user = auth.create_user(name="fay", password=Secret("old-password"), role=Role.OPERATOR,
                            actor="a")
    tokens = [auth.issue_token(user=user) for _ in range(2)]
    session = auth.open_session(user=user)
    changed = auth.change_password(name="fay", new_password=Secret("new-password"),
                                   old_password=Secret("old-password"), actor="fay",
                                   source_ip="10.0.0.5")
    assert (changed.revoked_sessions, changed.revoked_tokens) == (1, 2)
    for issued in tokens:
        with pytest.raises(AuthFailed):
            auth.authenticate_token(issued.token.reveal())
    with pytest.raises(AuthFailed):
        auth.authenticate_session(session.cookie.reveal())


def test_old_password_guesses_are_rate_limited(auth: Authenticator) -> None:
    auth.create_user(name="gus", password=Secret("old-password"), role=Role.VIEWER, actor="a")
    for _ in range(5):
        with pytest.raises(AuthFailed):
            auth.change_password(name="gus", new_password=Secret("new-password"),
                                 old_password=Secret("guess-guess"), actor="gus",
                                 source_ip="10.0.0.6")
    with pytest.raises(RateLimited):
        auth.change_password(name="gus", new_password=Secret("new-password"),
                             old_password=Secret("old-password"), actor="gus",
                             source_ip="10.0.0.6")
    # Logins keep their own counter: a stolen session's guesses do not lock the login.
    assert auth.login(name="gus", password=Secret("old-password"), source_ip="10.0.0.6")
