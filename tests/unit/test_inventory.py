"""Inventory import: per-row validation, line numbers, hostile values, fuzzing."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.inventory import parse_csv, parse_inventory, parse_json, parse_labels

HEADER = "uuid,ip,os,desc,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port,mac,labels\n"
GOOD = "pc-001,10.0.0.11,Windows 10,A区1号,10.1.0.11,admin,s3cret,623,AA:BB:CC:00:11:22,row=A;zone=vip\n"


def test_good_csv_row_is_parsed_exactly():
    report = parse_csv((HEADER + GOOD).encode())
    assert report.errors == ()
    (server,) = report.servers
    assert server.uuid == "pc-001" and server.ip == "10.0.0.11" and server.ipmi_port == 623
    assert server.desc == "A区1号" and server.mac == "aa:bb:cc:00:11:22"
    assert dict(server.labels) == {"row": "A", "zone": "vip"}
    assert "s3cret" not in repr(server)


def test_bad_rows_are_reported_with_line_and_good_rows_still_import():
    body = HEADER + GOOD + "pc 002,10.0.0.12,,,10.1.0.12,admin,pw,,,\n" + \
        "pc-003,not-an-ip,,,10.1.0.13,admin,pw,,,\n" + "pc-004,10.0.0.14,,,10.1.0.14,admin,pw,70000,,\n"
    report = parse_csv(body.encode())
    assert [s.uuid for s in report.servers] == ["pc-001"]
    assert [(e.line, e.field, e.code) for e in report.errors] == [
        (3, "uuid", "bad_uuid"), (4, "ip", "bad_ip"), (5, "ipmi_port", "bad_port")]
    assert "line 4" in report.errors[1].message()


def test_excel_bom_and_gb18030_are_read():
    assert parse_csv(b"\xef\xbb\xbf" + (HEADER + GOOD).encode()).servers[0].desc == "A区1号"
    assert parse_csv((HEADER + GOOD).encode("gb18030")).servers[0].desc == "A区1号"


def test_duplicate_uuid_in_one_file_is_refused_on_the_later_line():
    report = parse_csv((HEADER + GOOD + GOOD).encode())
    assert len(report.servers) == 1
    assert (report.errors[0].line, report.errors[0].code) == (3, "duplicate_uuid")


def test_bad_header_names_the_problem():
    report = parse_csv(b"uuid,ip,passwd\nx,1.2.3.4,y\n")
    assert report.errors[0].code == "bad_header"
    assert "unknown passwd" in report.errors[0].detail and "missing ipmi_hostname" in report.errors[0].detail


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("ipmi_password", "a;rm -rf /", "unsafe_characters"),
        ("ipmi_password", "$(reboot)", "unsafe_characters"),
        ("ipmi_password", "x" * 200, "too_long"),
        ("ipmi_username", "ad min", "unsafe_characters"),
        ("desc", 'say "hi"', "unsafe_characters"),
        ("desc", "back\\slash", "unsafe_characters"),
        ("desc", "x" * 300, "too_long"),
        ("uuid", "x" * 200, "bad_uuid"),
        ("uuid", "a`id`", "bad_uuid"),
        ("ipmi_hostname", "host;id", "bad_hostname"),
    ],
)
def test_hostile_values_are_refused(field, value, code):
    row = {"uuid": "pc-1", "ip": "10.0.0.1", "ipmi_hostname": "10.1.0.1",
           "ipmi_username": "admin", "ipmi_password": "pw", field: value}
    report = parse_json(json.dumps([row]).encode())
    assert report.servers == ()
    assert (report.errors[0].field, report.errors[0].code) == (field, code)
    assert value not in report.errors[0].message() or field == "uuid"


def test_json_inventory_with_numeric_port_and_wrapper_object():
    rows = {"servers": [{"uuid": "pc-9", "ip": "10.0.0.9", "ipmi_hostname": "bmc-9.lan",
                         "ipmi_username": "admin", "ipmi_password": "pw", "ipmi_port": 6230}]}
    report = parse_inventory(json.dumps(rows).encode(), "servers.json")
    assert report.servers[0].ipmi_port == 6230 and report.errors == ()


def test_json_that_is_not_a_list_is_one_clear_error():
    assert parse_json(b'{"x": 1}').errors[0].code == "bad_json"
    assert parse_json(b"[1, 2").errors[0].code == "bad_json"
    assert parse_json(b"[1]").errors[0].code == "not_an_object"


def test_labels_forms():
    assert parse_labels("row=A, zone=vip;gamer") == {"row": "A", "zone": "vip", "tag": "gamer"}
    assert parse_labels("") == {}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_csv_importer_never_crashes_on_garbage(data):
    report = parse_inventory(data)
    assert len(report.servers) + len(report.errors) >= 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(
    ["uuid", "ip", "os", "desc", "ipmi_hostname", "ipmi_username", "ipmi_password", "ipmi_port",
     "mac", "labels"]), st.one_of(st.text(max_size=30), st.integers(), st.none())), max_size=5))
def test_json_importer_never_crashes_and_accepts_only_valid_rows(rows):
    report = parse_json(json.dumps(rows).encode())
    assert len(report.servers) + len(report.errors) == len(rows)
    for server in report.servers:
        assert '"' not in server.desc and server.uuid.replace("-", "").isalnum()
