"""Inventory import: per-row validation, line numbers, hostile values, fuzzing."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.registry.inventory import parse_csv, parse_inventory, parse_json, parse_labels

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


# --- security issue 10: the café LAN review --------------------------------------------

INJECTED_HOSTS = ["fe80::1%;cd;touch x_$(id -u);", "::1%`id`|nc 127.0.0.1 9"]
BIDI = ["\u202e", "\u202a", "\u202b", "\u202c", "\u202d", "\u2066", "\u2067", "\u2068",
        "\u2069", "\u200e", "\u200f", "\u061c"]


def _one(**fields):
    row = {"uuid": "pc-1", "ip": "10.0.0.1", "ipmi_hostname": "10.1.0.1",
           "ipmi_username": "admin", "ipmi_password": "pw", **fields}
    return parse_json(json.dumps([row]).encode())


@pytest.mark.parametrize("host", INJECTED_HOSTS)
def test_scope_id_injection_in_ipmi_hostname_is_refused_csv_and_json(host):
    report = _one(ipmi_hostname=host)
    assert report.servers == ()
    assert (report.errors[0].field, report.errors[0].code) == ("ipmi_hostname",
                                                               "unsafe_characters")
    csv_host = '"' + host + '"' if "," in host else host
    report = parse_csv((HEADER + f"pc-1,10.0.0.1,,,{csv_host},admin,pw,,,\n").encode())
    assert report.servers == () and report.errors[0].code == "unsafe_characters"


@pytest.mark.parametrize("value", ["~root", "~", "a*", "a?", "[a]", "{a,b}", "#x", "!", "a^b",
                                   "=x", "a~b", "x\u202ey"])
@pytest.mark.parametrize("field", ["ipmi_hostname", "ipmi_username", "ipmi_password"])
def test_every_shell_line_field_refuses_what_sh_would_expand(field, value):
    report = _one(**{field: value})
    assert report.servers == ()
    assert report.errors[0].field == field
    assert report.errors[0].code in ("unsafe_characters", "bad_hostname")
    if field == "ipmi_password":
        assert value not in report.errors[0].message()


@pytest.mark.parametrize("host", ["10.1.0.1", "bmc-1.lan", "::1", "fe80::1", "fe80::1%eth0",
                                  "fe80::1%3", "2001:db8::7"])
def test_legitimate_ipmi_hosts_still_import(host):
    report = _one(ipmi_hostname=host)
    assert report.errors == () and report.servers[0].ipmi_hostname == host


@pytest.mark.parametrize("host", ["fe80::1%a%b", "fe80::1%" + "x" * 16, "fe80::1%a=b"])
def test_ipv6_scope_id_must_look_like_an_interface(host):
    assert _one(ipmi_hostname=host).errors[0].code in ("bad_hostname", "unsafe_characters")


def test_passwords_with_other_punctuation_still_import():
    for password in ("pw-123", "a=b", "x%y", "u@h", "p+q,r:s/t.u_v"):
        assert _one(ipmi_password=password).servers[0].ipmi_password == password


def test_csv_field_over_the_csv_limit_is_a_file_error_not_an_exception():
    body = HEADER + GOOD + "pc-2,10.0.0.2,," + "x" * (128 * 1024 + 1) + ",10.1.0.2,a,b,,,\n"
    report = parse_csv(body.encode())
    assert report.servers == ()
    (error,) = report.errors
    assert (error.field, error.code) == ("file", "bad_csv") and "field" in error.detail
    assert error.line >= 2


def test_deeply_nested_json_is_a_file_error_not_an_exception():
    for body in (b"[" * 100000, b"{\"servers\": " + b"[" * 100000, b"[{\"uuid\": " * 50000):
        (error,) = parse_inventory(body).errors
        assert (error.field, error.code) == ("file", "bad_json")


def test_port_with_thousands_of_digits_or_unicode_digits_is_a_row_error():
    assert _one(ipmi_port="9" * 5000).errors[0].code == "bad_port"
    assert _one(ipmi_port="\u00b2").errors[0].code == "bad_port"
    assert _one(ipmi_port="\u0663\u0662").errors[0].code == "bad_port"


@pytest.mark.parametrize("char", [*BIDI, "\x7f", "\x85", "\x9b", "\u2028", "\x01"])
@pytest.mark.parametrize("field", ["os", "desc"])
def test_bidi_and_control_characters_are_refused_in_free_text(field, char):
    report = _one(**{field: f"pc{char}12"})
    assert report.servers == ()
    error = report.errors[0]
    assert (error.field, error.code) == (field, "hidden_character")
    assert error.detail == f"U+{ord(char):04X}" and char not in error.message()


@pytest.mark.parametrize("char", BIDI)
def test_bidi_characters_are_refused_in_label_values_and_keys(char):
    for labels in (f"zone=vip{char}", f"zo{char}ne=vip", f"tag{char}"):
        error = _one(labels=labels).errors[0]
        assert (error.field, error.code) == ("labels", "hidden_character")
        assert char not in error.message()


def test_lone_surrogate_from_json_is_refused_not_a_store_crash():
    report = parse_json(b'[{"uuid": "pc-1", "ip": "10.0.0.1", "ipmi_hostname": "h", '
                        b'"ipmi_username": "u", "ipmi_password": "p", "desc": "a\\ud800b"}]')
    assert report.errors[0].code == "hidden_character"


def test_chinese_and_emoji_text_still_imports():
    report = _one(desc="三楼 A 区 \U0001f3ae", os="Windows 10 专业版", labels="zone=包间")
    assert report.errors == () and report.servers[0].labels == {"zone": "包间"}


def test_refused_uuid_and_unknown_header_are_echoed_without_hidden_characters():
    report = _one(uuid="pc\u202e1")
    assert "\u202e" not in report.errors[0].uuid and "<U+202E>" in report.errors[0].uuid
    report = parse_csv(b"uuid,ip,ipmi_hostname,ipmi_username,ipmi_password,x\xe2\x80\xae\n")
    assert "\u202e" not in report.errors[0].detail
