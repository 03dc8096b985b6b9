"""AuthGuard: hold a server after repeated refused logins, release on time or new credentials."""

from __future__ import annotations

import dataclasses

from agent.models import ServerCredentials
from agent.monitor.login_guard import AuthGuard
from agent.secrets import Secret
from tests.support.clock import Clock


def _cred(server_id: int = 1, password: str = "wrong-pass1") -> ServerCredentials:
    return ServerCredentials(server_id=server_id, uuid=f"seat-{server_id}", ipmi_host="127.0.0.5",
                             ipmi_port=623, ipmi_user="admin", ipmi_password=Secret(password))


def test_held_after_two_refusals_until_the_hold_ends():
    clock = Clock()
    guard = AuthGuard(hold_s=900, clock=clock)
    cred = _cred()
    guard.record(cred, auth_failed=True)
    assert guard.hold_left_s(cred) is None  # one refusal may be a typo being fixed
    guard.record(cred, auth_failed=True)
    assert guard.hold_left_s(cred) == 900
    clock.now += 899
    assert guard.hold_left_s(cred) == 1
    clock.now += 1
    assert guard.hold_left_s(cred) is None
    guard.record(cred, auth_failed=True)  # the retry is refused again: held again
    assert guard.hold_left_s(cred) == 900


def test_new_credentials_are_tried_at_once_and_success_clears_the_count():
    guard = AuthGuard(hold_s=900, clock=Clock())
    cred = _cred()
    for _ in range(3):
        guard.record(cred, auth_failed=True)
    fixed = dataclasses.replace(cred, ipmi_password=Secret("right-pass1"))
    assert guard.hold_left_s(fixed) is None
    for user in ("root", "ADMIN"):
        assert guard.hold_left_s(dataclasses.replace(cred, ipmi_user=user)) is None
    guard.record(fixed, auth_failed=True)  # a different password starts a new count
    assert guard.hold_left_s(fixed) is None
    guard.record(fixed, auth_failed=False)
    guard.record(fixed, auth_failed=True)
    assert guard.hold_left_s(fixed) is None


def test_servers_are_independent_forgotten_when_removed_and_zero_disables():
    guard = AuthGuard(hold_s=900, clock=Clock())
    one, two = _cred(1), _cred(2)
    for _ in range(2):
        guard.record(one, auth_failed=True)
    assert guard.hold_left_s(one) and guard.hold_left_s(two) is None
    guard.forget_except({2})
    assert guard.hold_left_s(one) is None
    off = AuthGuard(hold_s=0, clock=Clock())
    for _ in range(5):
        off.record(one, auth_failed=True)
    assert off.hold_left_s(one) is None


def test_no_password_is_kept_in_the_guard():
    guard = AuthGuard(hold_s=900, clock=Clock())
    guard.record(_cred(password="s3cret-Pw9"), auth_failed=True)
    state = repr(vars(guard)) + repr(guard._failures)
    assert "s3cret-Pw9" not in state
