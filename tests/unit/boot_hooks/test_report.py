"""boot_hooks.report.FailureReports without sockets: the body, the bounded queue, the order,
direct mode, never raising. The sending itself is tested against the real agent in
tests/integration/test_hook_reports.py.
"""

import re

import pytest

from boot_hooks.config import HookConfig
from boot_hooks.errors import (
    AwaitingApproval,
    ConfigError,
    DeepLinkDown,
    NodeDown,
    NotConfirmed,
)
from boot_hooks.report import MAX_MESSAGE, MAX_QUEUED, FailureReports, boot_id, one_line

AGENT = HookConfig(agent_url="http://127.0.0.1:9", seat_key_file="/nonexistent/seat.key")
DIRECT = HookConfig(node_url="http://127.0.0.1:9", node_id="ab" * 32, key_file="/x")


class Agent:
    """Stands in for AgentClient.report: records bodies, fails on demand."""

    def __init__(self, fail_at=None, error=None):
        self.sent, self.fail_at = [], fail_at
        self.error = error or NodeDown("agent 127.0.0.1:9 did not answer")

    def report(self, payload, timeout_s):
        assert 0 < timeout_s <= AGENT.deadlines.call_s
        if self.fail_at is not None and len(self.sent) == self.fail_at:
            self.fail_at = None
            raise self.error
        self.sent.append(dict(payload))


def reports(agent, config=AGENT):
    sink = FailureReports(config, lambda _secret: None, clock=lambda: 1767225600.0)
    sink._client = lambda: agent  # the seat key and the HTTP client: integration tests
    return sink


def test_a_report_body():
    agent = Agent()
    sink = reports(agent)
    sink.record(NotConfirmed("node did not report\nthe new code\x1b[31m in time"), 2)
    assert sink.flush(5) == 1
    [body] = agent.sent
    assert body["exit_code"] == 6 and body["error"] == "not_confirmed" and body["attempt"] == 2
    assert body["message"] == "node did not report the new code [31m in time"
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", body["boot_id"])
    assert body["uptime_s"] >= 0 and body["occurred_at"] == 1767225600.0


def test_any_other_exception_is_internal():
    agent = Agent()
    sink = reports(agent)
    sink.record(ValueError(), 1)
    sink.flush(5)
    assert agent.sent[0]["exit_code"] == 1 and agent.sent[0]["error"] == "internal"
    assert agent.sent[0]["message"] == "ValueError"


def test_the_queue_keeps_the_newest_twenty_in_order_and_says_how_many_were_dropped():
    agent = Agent()
    sink = reports(agent)
    for attempt in range(1, MAX_QUEUED + 6):
        sink.record(DeepLinkDown(f"attempt {attempt}"), attempt)
    assert (sink.queued, sink.dropped) == (MAX_QUEUED, 5)
    assert sink.flush(5) == MAX_QUEUED
    assert [b["attempt"] for b in agent.sent] == list(range(6, MAX_QUEUED + 6))
    assert agent.sent[0]["message"] == "[5 older failure reports dropped] attempt 6"
    assert agent.sent[1]["message"] == "attempt 7"
    assert (sink.queued, sink.dropped) == (0, 0)


def test_the_first_failure_stops_the_flush_and_keeps_the_rest_in_order():
    agent = Agent(fail_at=1)
    sink = reports(agent)
    for attempt in (1, 2, 3):
        sink.record(DeepLinkDown("down"), attempt)
    assert sink.flush(5) == 1 and sink.queued == 2
    assert sink.flush(5) == 2 and sink.queued == 0
    assert [b["attempt"] for b in agent.sent] == [1, 2, 3]


def test_a_report_the_agent_calls_malformed_is_dropped_not_resent():
    agent = Agent(fail_at=0, error=ConfigError("agent answered HTTP 400 bad_request: boot_id"))
    sink = reports(agent)
    sink.record(DeepLinkDown("one"), 1)
    sink.record(DeepLinkDown("two"), 2)
    assert sink.flush(5) == 1 and sink.queued == 0
    assert [b["attempt"] for b in agent.sent] == [2]


def test_no_time_left_sends_nothing():
    agent = Agent()
    sink = reports(agent)
    sink.record(AwaitingApproval("waits"), 1)
    assert sink.flush(0) == 0 and sink.queued == 1


def test_flush_never_raises():
    class Broken:
        def report(self, payload, timeout_s):
            raise RuntimeError("bug")

    sink = reports(Broken())
    sink.record(DeepLinkDown("x"), 1)
    assert sink.flush(5) == 0 and sink.queued == 1


def test_record_never_raises():
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no text")

    sink = reports(Agent())
    sink.record(Unprintable(), 1)  # logged, not raised
    assert sink.queued == 0


def test_direct_mode_logs_and_sends_nothing(caplog):
    agent = Agent()
    sink = reports(agent, DIRECT)
    with caplog.at_level("INFO", logger="boot_hooks.report"):
        sink.record(DeepLinkDown("DeepLink's SDK is not there"), 4)
    assert sink.queued == 0 and sink.flush(5) == 0 and agent.sent == []
    assert "direct mode, not sent" in caplog.text and "exit 4" in caplog.text


def test_without_a_seat_key_file_nothing_is_sent_and_no_key_is_made(tmp_path):
    config = HookConfig(agent_url="http://127.0.0.1:9", seat_key_file=str(tmp_path / "seat.key"))
    sink = FailureReports(config, lambda _secret: None)
    sink.record(DeepLinkDown("x"), 1)
    assert sink.flush(1) == 0 and sink.queued == 1
    assert not (tmp_path / "seat.key").exists()


@pytest.mark.parametrize(("text", "shown"), [
    ("a\nb\r\nc\td", "a b c d"),
    ("rtl \u202eexe.txt", "rtl exe.txt"),
    ("x" * (MAX_MESSAGE + 10), "x" * (MAX_MESSAGE - 1) + "…"),
])
def test_one_line(text, shown):
    assert one_line(text) == shown


def test_boot_id_fits_the_contract():
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", boot_id())
