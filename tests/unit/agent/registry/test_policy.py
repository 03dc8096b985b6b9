"""Registry decisions: error classification, batch splitting, what to do after a failed batch."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.registry.policy import (
    MAX_RESEND_DEPTH,
    Failure,
    FailureKind,
    RetryPlan,
    chunks,
    classify,
    plan_after_failure,
)
from baremetal.dbc.models import ADD_CAP
from baremetal.errors import (
    DecodeError,
    InvalidInput,
    NodeTimeout,
    NodeUnreachable,
    api_error_from_reply,
)


def _api(status: int, errcode: int, message: str) -> Failure:
    return classify(api_error_from_reply("add_bare_metal", status, errcode, message))


def test_transport_failures_are_retryable_and_mean_node_down() -> None:
    down = classify(NodeUnreachable("add_bare_metal", "cannot reach node (ConnectionError)"))
    assert down.kind == FailureKind.UNREACHABLE and down.retryable and down.node_down
    late = classify(NodeTimeout("add_bare_metal", "no answer within 5.0s"))
    assert late.kind == FailureKind.UNCERTAIN and late.retryable and late.node_down
    assert "NodeTimeout" in late.text
    garbled = classify(DecodeError("list_bare_metal", "invalid JSON at line 1", 200))
    assert garbled.kind == FailureKind.UNCERTAIN
    assert _api(500, -1, "add bare metal timeout").kind == FailureKind.UNCERTAIN
    assert _api(500, -1, "response parse error").kind == FailureKind.UNCERTAIN


@pytest.mark.parametrize(("status", "errcode"), [(400, -25), (200, -3)])
def test_already_existed_names_the_uuid_on_both_paths(status: int, errcode: int) -> None:
    failure = _api(status, errcode, "bare metal node uuid pc-017 already existed")
    assert failure.kind == FailureKind.EXISTS and failure.uuid == "pc-017"
    assert failure.retryable and not failure.node_down


def test_manager_failures_mean_partial_adds() -> None:
    for text in ("create node id for bare metal error", "write bare metal db error"):
        failure = _api(200, 1, text)
        assert failure.kind == FailureKind.PARTIAL and failure.retryable


def test_missing_node_ids_on_modify_and_delete() -> None:
    assert _api(400, -25, "node id not existed").kind == FailureKind.NOT_FOUND
    assert _api(200, -1, "node id not existed").kind == FailureKind.NOT_FOUND
    gone = _api(200, -1, "bare metal node id " + "a" * 64 + " not existed")
    assert gone.kind == FailureKind.NOT_FOUND and not gone.retryable


def test_configuration_problems_wait_for_staff_but_stay_retryable() -> None:
    assert _api(400, -25, "verify sign failed").kind == FailureKind.CONFIG
    assert _api(200, -3, "verify sign failed").kind == FailureKind.CONFIG
    assert _api(400, -32600, "only bare metal node support").kind == FailureKind.CONFIG
    assert _api(400, -32600, "only bare metal node support").retryable


def test_refusals_name_the_item_when_the_node_does() -> None:
    invalid = _api(400, -25, "bare metal node info pc-009 invalid")
    assert invalid.kind == FailureKind.REFUSED and invalid.uuid == "pc-009"
    assert not invalid.retryable
    port = _api(200, -3, "invalid ipmi port in pc-010")
    assert (port.kind, port.uuid) == (FailureKind.REFUSED, "pc-010")
    assert _api(400, -25, "invalid ipmi port").uuid is None
    assert _api(404, -32601, "not support uri:/api/v1/bare_metal/modify").kind == \
        FailureKind.REFUSED
    assert classify(InvalidInput("uuid may only contain ...")).kind == FailureKind.REFUSED


def test_classify_refuses_foreign_exceptions() -> None:
    with pytest.raises(TypeError):
        classify(ValueError("not from the client"))


def test_chunks_split_in_order_and_respect_the_add_cap() -> None:
    assert [len(c) for c in chunks(list(range(45)), 20)] == [20, 20, 5]
    assert chunks(list(range(45)), 20)[2] == [40, 41, 42, 43, 44]
    assert [len(c) for c in chunks(list(range(250)), 500)] == [ADD_CAP, ADD_CAP, 48]
    assert chunks([], 20) == []
    with pytest.raises(ValueError):
        chunks([1], 0)


EXISTS = Failure(FailureKind.EXISTS, "exists", "b")


def test_existing_uuid_resends_the_rest_and_waits_for_an_odd_one() -> None:
    # "b" was named as existing, yet the lookup did not find it: do not loop on it.
    assert plan_after_failure(["a", "b", "c"], EXISTS, 0) == RetryPlan(
        resend=(("a", "c"),), defer=("b",))
    found = Failure(FailureKind.EXISTS, "exists", "z")  # z was adopted, not in rest
    assert plan_after_failure(["a", "c"], found, 0) == RetryPlan(resend=(("a", "c"),))
    assert plan_after_failure(["a"], found, MAX_RESEND_DEPTH) == RetryPlan(defer=("a",))


def test_partial_add_resends_what_is_not_on_the_node() -> None:
    partial = Failure(FailureKind.PARTIAL, "write bare metal db error")
    assert plan_after_failure(["c", "d"], partial, 1) == RetryPlan(resend=(("c", "d"),))
    assert plan_after_failure(["c", "d"], partial, MAX_RESEND_DEPTH) == RetryPlan(
        defer=("c", "d"))


def test_refused_batch_is_split_to_find_the_culprit() -> None:
    unnamed = Failure(FailureKind.REFUSED, "invalid ipmi port")
    assert plan_after_failure(["a", "b", "c"], unnamed, 0) == RetryPlan(
        resend=(("a",), ("b",), ("c",)))
    assert plan_after_failure(["b"], unnamed, 1) == RetryPlan(refuse=("b",))
    named = Failure(FailureKind.REFUSED, "bare metal node info b invalid", "b")
    assert plan_after_failure(["a", "b", "c"], named, 0) == RetryPlan(
        resend=(("a", "c"),), refuse=("b",))
    assert plan_after_failure(["a", "b"], unnamed, MAX_RESEND_DEPTH) == RetryPlan(
        defer=("a", "b"))


@pytest.mark.parametrize("kind", [FailureKind.UNREACHABLE, FailureKind.UNCERTAIN,
                                  FailureKind.CONFIG])
def test_node_trouble_defers_everything(kind: FailureKind) -> None:
    assert plan_after_failure(["a", "b"], Failure(kind, "x"), 0) == RetryPlan(defer=("a", "b"))
    assert plan_after_failure([], Failure(kind, "x"), 0) == RetryPlan()


@given(rest=st.lists(st.sampled_from("abcdefgh"), max_size=8),
       kind=st.sampled_from(list(FailureKind)), named=st.sampled_from("abcz"),
       depth=st.integers(0, MAX_RESEND_DEPTH + 1))
def test_every_uuid_gets_exactly_one_fate(rest: list[str], kind: FailureKind, named: str,
                                          depth: int) -> None:
    plan = plan_after_failure(rest, Failure(kind, "x", named), depth)
    fates = [u for group in plan.resend for u in group] + list(plan.defer) + list(plan.refuse)
    assert sorted(fates) == sorted(set(rest))
    assert all(group for group in plan.resend)
