"""Bearer tokens and browser sessions with CSRF, on a real SQLite store."""

from __future__ import annotations

import pytest
from nacl.pwhash import argon2id

from agent.accounts.auth import Authenticator, PasswordHasher, Principal
from agent.errors import AuthFailed, CsrfFailed
from agent.models import EventKind, Role, User
from agent.secrets import Secret
from agent.store import Store
from tests.support.clock import Clock

FAST = PasswordHasher(opslimit=argon2id.OPSLIMIT_MIN, memlimit=argon2id.MEMLIMIT_MIN)


@pytest.fixture
def clock() -> Clock:
    return Clock(1_000_000.0)


@pytest.fixture
def store_clock(clock: Clock) -> Clock:
    return clock


@pytest.fixture
def auth(store: Store, clock: Clock) -> Authenticator:
    return Authenticator(store, hasher=FAST, clock=clock, session_idle_s=600,
                         session_max_s=3600, token_ttl_s=86400)


@pytest.fixture
def user(auth: Authenticator) -> User:
    return auth.create_user(name="ops", password=Secret("ops-password"), role=Role.OPERATOR,
                            actor="@system")


def test_token_round_trip_stores_only_a_hash(auth: Authenticator, store: Store,
                                             user: User) -> None:
    issued = auth.issue_token(user=user, label="cli on laptop")
    token = issued.token.reveal()
    assert token.startswith("bmt_") and token not in repr(issued)
    principal = auth.authenticate_token(token)
    assert principal.user.name == "ops" and principal.via == "token"
    on_disk = b"".join(path.read_bytes() for path in store.path.parent.iterdir()
                       if path.name.startswith(store.path.name))
    verifier = token.split("_")[2]
    assert verifier.encode() not in on_disk and token.encode() not in on_disk
    assert store.tokens.for_user(user_id=user.id)[0].label == "cli on laptop"


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),  # wrong verifier
    lambda t: "bmt_" + "0" * 16 + t[20:],  # unknown selector
    lambda t: t.replace("bmt_", "bms_"),  # a session cookie is not a token
    lambda t: t[:30],  # truncated
    lambda t: "",
    lambda t: "Bearer " + t,
])
def test_bad_tokens_fail(auth: Authenticator, user: User, mangle: object) -> None:
    token = auth.issue_token(user=user).token.reveal()
    with pytest.raises(AuthFailed):
        auth.authenticate_token(mangle(token))  # type: ignore[operator]


def test_token_expiry_revocation_and_disabled_user(auth: Authenticator, clock: Clock,
                                                   user: User) -> None:
    short = auth.issue_token(user=user, ttl_s=60)
    # ttl_s 0 no longer means "never": it takes the default, [auth] token_ttl_s (here 1 day).
    forever = auth.issue_token(user=user, ttl_s=0)
    assert forever.info.expires_at == clock.now + 86400
    clock.now += 61
    with pytest.raises(AuthFailed) as info:
        auth.authenticate_token(short.token.reveal())
    assert info.value.reason == "token expired"
    assert auth.authenticate_token(forever.token.reveal()).user.id == user.id
    auth.create_user(name="admin", password=Secret("admin-password"), role=Role.ADMIN,
                     actor="@system")
    auth.set_disabled(name="ops", disabled=True, actor="admin")
    with pytest.raises(AuthFailed):
        auth.authenticate_token(forever.token.reveal())
    auth.set_disabled(name="ops", disabled=False, actor="admin")
    auth.revoke_token(token_id=forever.info.id, actor="admin")
    with pytest.raises(AuthFailed):
        auth.authenticate_token(forever.token.reveal())


def test_token_use_is_recorded_but_throttled(auth: Authenticator, store: Store,
                                             clock: Clock, user: User) -> None:
    issued = auth.issue_token(user=user)
    auth.authenticate_token(issued.token.reveal())
    first = store.tokens.for_user(user_id=user.id)[0].last_used_at
    assert first == clock.now
    clock.now += 10
    auth.authenticate_token(issued.token.reveal())
    assert store.tokens.for_user(user_id=user.id)[0].last_used_at == first
    clock.now += 61
    auth.authenticate_token(issued.token.reveal())
    assert store.tokens.for_user(user_id=user.id)[0].last_used_at == clock.now


def test_session_csrf_and_logout(auth: Authenticator, user: User) -> None:
    issued = auth.open_session(user=user)
    cookie = issued.cookie.reveal()
    assert cookie.startswith("bms_") and cookie not in repr(issued)
    assert issued.session.csrf_token not in repr(issued.session)
    principal = auth.authenticate_session(cookie)
    assert principal.via == "session" and principal.user.id == user.id
    auth.check_csrf(principal, issued.session.csrf_token)
    for wrong in (None, "", issued.session.csrf_token[:-1] + "x"):
        with pytest.raises(CsrfFailed):
            auth.check_csrf(principal, wrong)
    auth.check_csrf(Principal(user=user, via="token"), None)  # bearer: no CSRF needed
    auth.close_session(cookie)
    with pytest.raises(AuthFailed):
        auth.authenticate_session(cookie)
    auth.close_session(cookie)  # twice is fine
    with pytest.raises(AuthFailed):
        auth.authenticate_session(auth.issue_token(user=user).token.reveal())


def test_session_idle_and_absolute_expiry(auth: Authenticator, clock: Clock,
                                          user: User) -> None:
    idle = auth.open_session(user=user).cookie.reveal()
    clock.now += 601
    with pytest.raises(AuthFailed) as info:
        auth.authenticate_session(idle)
    assert info.value.reason == "session expired"
    busy = auth.open_session(user=user).cookie.reveal()
    for _ in range(7):  # active every 500 s: the idle limit slides, the absolute one holds
        clock.now += 500
        auth.authenticate_session(busy)
    clock.now += 500
    with pytest.raises(AuthFailed):
        auth.authenticate_session(busy)


def test_sessions_and_tokens_go_with_the_user(auth: Authenticator, store: Store,
                                              user: User) -> None:
    auth.create_user(name="admin", password=Secret("admin-password"), role=Role.ADMIN,
                     actor="@system")
    cookie = auth.open_session(user=user).cookie.reveal()
    token = auth.issue_token(user=user).token.reveal()
    auth.remove_user(name="ops", actor="admin")
    for call in (lambda: auth.authenticate_session(cookie),
                 lambda: auth.authenticate_token(token)):
        with pytest.raises(AuthFailed):
            call()
    assert store.events.page(kinds=[EventKind.AUDIT]).items[0].action == "user_rm"
