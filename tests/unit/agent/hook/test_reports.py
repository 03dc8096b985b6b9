"""bm-hook failure reports on the agent side (agent.hook.reports): body rules, seat rules,
the rate bound. No sockets: the relay over a real store, requests signed like bm-hook.
"""

import json
from pathlib import Path

import pytest

from agent.hook.relay import HookRefusal
from agent.hook.reports import ERROR_NAMES, MAX_MESSAGE, parse_report_body, record_report
from agent.hook.seats import Seats
from agent.models import EventKind
from boot_hooks.errors import ExitCode
from boot_hooks.relay import REPORT_PATH, encode_body
from tests.unit.agent.hook import test_seats
from tests.unit.agent.hook.test_seats import enroll, refusal, request

cafe = test_seats.cafe  # the relay over a real store, one server pc-23 at 192.168.1.23

CONTRACT = json.loads((Path(__file__).parents[3] / "contract" / "hook_relay.json").read_text())
EXAMPLE = json.loads(CONTRACT["endpoints"]["report"]["request"]["body"])


def body(**changes):
    payload = {**EXAMPLE, **changes}
    return encode_body({k: v for k, v in payload.items() if v is not ...})


def bad_request(raw):
    with pytest.raises(HookRefusal) as caught:
        parse_report_body(raw)
    assert (caught.value.status, caught.value.code) == (400, "bad_request")
    return caught.value.detail


def test_the_contracts_example_parses():
    report = parse_report_body(CONTRACT["endpoints"]["report"]["request"]["body"].encode())
    assert (report.exit_code, report.error, report.attempt) == (4, "deeplink_unreachable", 3)
    assert report.boot_id == EXAMPLE["boot_id"] and report.uptime_s == EXAMPLE["uptime_s"]


def test_error_names_are_bm_hooks_exit_codes():
    assert {int(c): c.name.lower() for c in ExitCode if c != ExitCode.OK} == ERROR_NAMES


@pytest.mark.parametrize(("raw", "names"), [
    (body(exit_code=True), "exit_code"),            # a JSON bool is no exit code
    (body(exit_code=0), "exit_code"),
    (body(exit_code=9), "exit_code"),
    (body(exit_code="4"), "exit_code"),
    (body(exit_code=...), "exit_code"),
    (body(error="node_unreachable"), "error"),      # does not match exit_code 4
    (body(error=...), "error"),
    (body(message=None), "message"),
    (body(message="x" * (MAX_MESSAGE + 1)), "message"),
    (body(attempt=0), "attempt"),
    (body(attempt=1.5), "attempt"),
    (body(attempt=10**12), "attempt"),
    (body(boot_id="../../etc"), "boot_id"),
    (body(boot_id=""), "boot_id"),
    (body(boot_id="a" * 65), "boot_id"),
    (body(boot_id="id\u202e"), "boot_id"),
    (body(uptime_s=-1), "uptime_s"),
    (body(uptime_s=False), "uptime_s"),
    (b'{"exit_code":4,"error":"deeplink_unreachable","message":"m","attempt":1,'
     b'"boot_id":"b","uptime_s":NaN,"occurred_at":1}', "uptime_s"),
    (b'{"exit_code":4,"error":"deeplink_unreachable","message":"m","attempt":1,'
     b'"boot_id":"b","uptime_s":1,"occurred_at":Infinity}', "occurred_at"),
    (body(occurred_at=1e300), "occurred_at"),
    (body(occurred_at="yesterday"), "occurred_at"),
    (body(device_password="Q7wK2mZ9pL4x"), "unknown field 'device_password'"),
    (b"[]", "JSON object"),
    (b"not json", "not JSON"),
    (b'{"a":' * 1600, "nested"),                     # 8000 bytes, deeper than json recurses
    (b" " * 9000 + encode_body(EXAMPLE), "larger than 8192 bytes"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_each_bad_field_is_a_400_naming_it(raw, names):
    assert names in bad_request(raw)


def test_hidden_characters_are_shown_and_the_message_is_capped():
    report = parse_report_body(body(message="ok\u202eexe.txt\nnext\x00"))
    assert report.message == "ok<U+202E>exe.txt<U+000A>next<U+0000>"
    long = parse_report_body(body(message="x\u202e" * (MAX_MESSAGE // 2)))
    assert len(long.message) == MAX_MESSAGE and long.message.endswith("…")


def report(cafe, seat=None, source_ip="192.168.1.23", **changes):
    signed = request(cafe, "POST", REPORT_PATH, body(**changes), seat=seat, source_ip=source_ip)
    return record_report(cafe["relay"], signed)


def failures(cafe):
    return [e for e in cafe["store"].events.page(limit=100).items if e.action == "hook_failure"]


def test_a_pending_seat_reports_and_staff_see_it(cafe):
    seat = "31" * 32
    enroll(cafe, seat)
    assert report(cafe, seat).error == "deeplink_unreachable"
    [event] = failures(cafe)
    assert (event.kind, event.server_uuid, event.result) == (EventKind.DEEPLINK, "pc-23",
                                                             "deeplink_unreachable")
    assert event.detail["message"] == EXAMPLE["message"]
    assert event.detail["seat_state"] == "pending" and len(event.detail["seat"]) == 16
    assert "public_key" not in json.dumps(event.detail)


def test_an_approved_seat_reports(cafe):
    seat = "32" * 32
    enroll(cafe, seat)
    Seats(cafe["store"]).decide(uuids=["pc-23"], approve=True, actor="oper")
    report(cafe, seat, exit_code=3, error="node_unreachable")
    [event] = failures(cafe)
    assert event.detail["seat_state"] == "approved" and event.result == "node_unreachable"


def test_refused_seats(cafe):
    assert refusal(lambda: report(cafe)) == (403, "seat_not_enrolled")          # café token
    assert refusal(lambda: report(cafe, "33" * 32)) == (403, "seat_not_enrolled")  # unknown
    enroll(cafe, "34" * 32)
    Seats(cafe["store"]).decide(uuids=["pc-23"], approve=False, actor="oper")
    assert refusal(lambda: report(cafe, "34" * 32)) == (403, "seat_rejected")
    assert failures(cafe) == []


def test_a_seat_key_from_another_address_is_forbidden_source(cafe):
    enroll(cafe, "35" * 32)
    assert refusal(lambda: report(cafe, "35" * 32, source_ip="192.168.1.99")) == (
        403, "forbidden_source")


def test_a_boot_loop_writes_one_row_a_minute_per_error(cafe):
    seat = "36" * 32
    enroll(cafe, seat)
    for attempt in range(1, 51):
        report(cafe, seat, attempt=attempt)
    report(cafe, seat, exit_code=6, error="not_confirmed")
    rows = failures(cafe)
    assert sorted(e.result for e in rows) == ["deeplink_unreachable", "not_confirmed"]
