"""HTTP statuses are the API layer's (agent/api/errors.py), not the domain errors' (issue 11)."""

from __future__ import annotations

import pytest

from agent import errors as ae
from agent.api.errors import agent_error_status, error_class_status
from agent.api.hook_gate import HookBusy
from agent.hook.relay import HookRefusal
from agent.i18n import translate_error


def test_domain_errors_carry_no_http_status() -> None:
    for cls in [*ae.all_error_classes(), HookRefusal, HookBusy]:
        assert "http_status" not in vars(cls), cls


@pytest.mark.parametrize(("cls", "status"), [
    (ae.AgentError, 500), (ae.ConfigError, 500), (ae.StoreFull, 507), (ae.StoreBusy, 503),
    (ae.StoreCorrupt, 500), (ae.ServerNotFound, 404), (ae.SeatNotPending, 409),
    (ae.LeaseLost, 409), (ae.CsrfFailed, 403), (ae.AuthFailed, 401), (ae.LoginBusy, 429),
    (ae.UnsafeText, 422), (ae.HookAuthError, 401), (ae.BadSignature, 403),
    (ae.StaleRequest, 401), (ae.ReplayedRequest, 409), (ae.WrongSourceIp, 403),
    (ae.RegistryError, 502), (ae.MonitorError, 500),
])
def test_the_most_specific_listed_class_wins(cls, status) -> None:
    assert error_class_status(cls) == status


def test_a_relay_refusal_is_an_agent_error_with_the_contracts_status_and_code() -> None:
    refusal = HookRefusal(403, "seat_pending", "this PC's seat key waits for approval")
    assert isinstance(refusal, ae.HookRefused) and isinstance(refusal, ae.AgentError)
    assert (refusal.code, refusal.detail) == ("seat_pending",
                                              "this PC's seat key waits for approval")
    assert agent_error_status(refusal) == 403
    assert str(refusal) == "403 seat_pending: this PC's seat key waits for approval"
    busy = HookBusy("too many calls")
    assert (busy.code, agent_error_status(busy), busy.retry_after_s) == ("busy", 429, 2)
    assert translate_error(refusal, "zh_CN").endswith("this PC's seat key waits for approval")
