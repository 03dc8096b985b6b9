"""Envelope decoding, answer parsing and error classification of the DBC client (pure)."""

from __future__ import annotations

import json

import pytest

from baremetal import errors
from baremetal.dbc.http import decode_envelope
from baremetal.dbc.parse import (
    parse_added_servers,
    parse_deeplink,
    parse_delete_result,
    parse_node_info,
    parse_renter_view,
    parse_server_list,
    parse_session_id,
    parse_summaries,
    parse_version,
)
from baremetal.errors import DecodeError, api_error_from_reply

NODE_A = "a" * 64
NODE_B = "b" * 64
SECRET_KEY = "4c2e7133834d6d7dd35088beda5556215f6f5b15d2cd3c3153f117aaeec2c28b"


def server_item(**overrides: object) -> dict[str, object]:
    item: dict[str, object] = {
        "node_id": NODE_A, "node_private_key": "*" * 64, "uuid": "u-1", "ip": "127.0.0.5",
        "os": "Win10", "description": "seat 1", "ipmi_hostname": "127.0.0.1",
        "ipmi_username": "*****", "ipmi_password": "********",
    }
    item.update(overrides)
    return item


# -- the envelope ---------------------------------------------------------------------

def test_envelope_reads_all_three_spellings_of_the_node():
    pretty = b'{\n    "errcode": -25,\n    "message": "invalid wallet sign"\n}\r\n'
    assert decode_envelope("ep", 400, pretty).errcode == -25
    compact = b'{"errcode":0, "message":{"bare_metal_nodes":[]}}\r\n'
    assert decode_envelope("ep", 200, compact).message == {"bare_metal_nodes": []}
    local = b'{"errcode": -1,"message": "bare metal node id x not existed"}\r\n'
    assert decode_envelope("ep", 200, local).message == "bare metal node id x not existed"


def test_envelope_tolerates_raw_control_characters_inside_strings():
    body = b'{"errcode":0, "message":"Chassis\tPower is on"}\r\n'
    assert decode_envelope("ep", 200, body).message == "Chassis\tPower is on"


@pytest.mark.parametrize(("status", "body", "needle"), [
    (200, b"", "empty body"),
    (200, b"   \r\n", "empty body"),
    (200, b'{"errcode":0, "message":{"bare_metal_nodes":[{"node_id":"', "invalid JSON"),
    (502, b"<html><body>Bad Gateway</body></html>", "invalid JSON"),
    (200, b"[1, 2]", "JSON list, not an object"),
    (200, b'{"message": "x"}', "no integer errcode"),
    (200, b'{"errcode": "0", "message": "x"}', "no integer errcode"),
    (200, b'{"errcode": true, "message": "x"}', "no integer errcode"),
    (200, b'{"errcode": 0.0, "message": "x"}', "no integer errcode"),
    (200, b'{"errcode": 0}', "no message"),
    (200, b'{"errcode": -3, "message": {"a": 1}}', "non-string message"),
    (400, b'{"errcode": 0, "message": "ok"}', "HTTP 400 with errcode 0"),
    (200, b'{"errcode": 0, "message": NaN}', "unusable JSON"),
    (200, b'{"errcode": 0, "message": "\xff\xfe"}', "not UTF-8"),
    (200, b"[" * 100000 + b"]" * 100000, "unusable JSON"),
])
def test_envelope_problems_are_decode_errors(status, body, needle):
    with pytest.raises(DecodeError, match=needle) as info:
        decode_envelope("list_bare_metal", status, body)
    assert info.value.http_status == status
    assert info.value.endpoint == "list_bare_metal"


def test_unescaped_quote_is_explained_without_quoting_the_body():
    # A verified list whose description holds '"' (docs/protocol.md §2.5): the secrets in the
    # body must not leak into the error.
    item = f'{{"node_id":"{NODE_A}","node_private_key":"{SECRET_KEY}","description":"the "best" seat"}}'
    body = ('{"errcode":0, "message":{"bare_metal_nodes":[' + item + ']}}\r\n').encode()
    with pytest.raises(DecodeError) as info:
        decode_envelope("list_bare_metal", 200, body, "application/json")
    text = str(info.value)
    assert "§2.5" in text and "line 1 column" in text
    assert SECRET_KEY not in text and "best" not in text


# -- message parsers --------------------------------------------------------------------

def test_server_list_parses_masked_and_optional_fields():
    message = {"bare_metal_nodes": [
        server_item(),
        server_item(node_id=NODE_B, uuid="u-2", ipmi_port=6230, deeplink_device_id="123",
                    deeplink_device_password="******", power_status="Chassis Power is on",
                    future_field={"ignored": True}),
    ]}
    first, second = parse_server_list("ep", message)
    assert first.ipmi_port is None and first.deeplink_device_id is None
    assert first.secrets_masked and first.ipmi_password == "********"
    assert second.ipmi_port == 6230 and second.deeplink_device_id == "123"
    assert second.power_status == "Chassis Power is on"


@pytest.mark.parametrize(("item", "needle"), [
    (server_item(ipmi_port="6230"), "ipmi_port is not an integer"),
    (server_item(ipmi_port=0), "ipmi_port is not an integer"),
    (server_item(ipmi_port=True), "ipmi_port is not an integer"),
    (server_item(node_id="A" * 64), "node_id is not 64 lowercase hex"),
    (server_item(node_id=7), "node_id is not a string"),
    (server_item(description=None), "description is not a string"),
    ({k: v for k, v in server_item().items() if k != "uuid"}, "missing uuid"),
    (server_item(deeplink_device_id="1"), "must come together"),
    (server_item(power_status=1), "power_status is not a string"),
    ("not an object", "is not a JSON object"),
])
def test_server_list_item_problems(item, needle):
    with pytest.raises(DecodeError, match=needle) as info:
        parse_server_list("list_bare_metal", {"bare_metal_nodes": [server_item(), item]})
    assert "bare_metal_nodes[1]" in str(info.value)


def test_server_list_shape_problems():
    with pytest.raises(DecodeError, match="missing or not an array"):
        parse_server_list("ep", {"bare_metal_nodes": {}})
    with pytest.raises(DecodeError, match="message is not a JSON object"):
        parse_server_list("ep", "ok")


def test_client_node_summary_in_a_server_list_points_at_manager_id():
    message = {"bare_metal_nodes": [{"node_id": NODE_A, "name": "cafe", "version": "0.4.1.8"}]}
    with pytest.raises(DecodeError, match="pass manager_id"):
        parse_server_list("list_bare_metal", message)
    assert parse_summaries("ep", message, "bare_metal_nodes")[0].name == "cafe"


def test_renter_view_and_deeplink():
    view = parse_renter_view("ep", {
        "version": "0.4.1.8", "ip": "127.0.0.5", "os": "", "description": "d",
        "power_status": "Chassis Power is off",
        "deeplink_device_id": "9", "deeplink_device_password": "clear"})
    assert view.power_status == "Chassis Power is off" and view.deeplink_device_password == "clear"
    assert parse_deeplink("ep", {"device_id": "", "device_password": ""}).device_id == ""
    with pytest.raises(DecodeError, match="missing device_password"):
        parse_deeplink("ep", {"device_id": "1"})


def test_added_servers_and_delete_result():
    added = parse_added_servers("ep", {"bare_metal_nodes": [{"node_id": NODE_A, "uuid": "u-1"}]})
    assert added[0].node_id == NODE_A
    result = parse_delete_result("ep", "2 were successfully deleted, 1 failed")
    assert (result.succeeded, result.failed) == (2, 1)
    with pytest.raises(DecodeError, match="were successfully deleted"):
        parse_delete_result("ep", "deleted")
    with pytest.raises(DecodeError, match="message is not a string"):
        parse_delete_result("ep", {"n": 1})


def test_node_info_keeps_compute_extras_and_masked_deeplink():
    info = parse_node_info("ep", {
        "version": "0.4.1.8", "node_type": "2", "ip": "127.0.0.5", "os": "Win10",
        "deeplink": {"device_id": "77", "device_password": "****"}})
    assert info.deeplink is not None and info.deeplink.password_masked and info.extra == {}
    compute = parse_node_info("ep", {"version": "0.4.1.8", "node_type": "0", "ip": "1.2.*.*",
                                     "os": "Ubuntu", "cpu": {"cores": "8"}})
    assert compute.deeplink is None and compute.extra == {"cpu": {"cores": "8"}}
    with pytest.raises(DecodeError, match=r"message.deeplink is not a JSON object"):
        parse_node_info("ep", {"version": "v", "node_type": "2", "ip": "i", "os": "o",
                               "deeplink": "x"})


def test_version_and_session_id():
    assert parse_version("ep", {"client_version": "0.4.1.8"}).client_version == "0.4.1.8"
    assert parse_session_id("ep", {"session_id": "3QRj"}) == "3QRj"
    with pytest.raises(DecodeError, match="session_id is empty"):
        parse_session_id("ep", {"session_id": ""})
    with pytest.raises(DecodeError, match="missing client_version"):
        parse_version("ep", {})


# -- the error tree (docs/protocol.md §2.5) ---------------------------------------------------

@pytest.mark.parametrize(("status", "errcode", "message", "cls"), [
    (400, -25, "invalid wallet sign", errors.SignatureRejected),
    (400, -25, "verify sign failed", errors.SignatureRejected),
    (200, -3, "verify sign failed", errors.SignatureRejected),
    (400, -32600, "only client node support", errors.WrongNodeRole),
    (400, -32600, "only bare metal node support", errors.WrongNodeRole),
    (400, -25, "parse req params failed: has no additional", errors.InvalidRequest),
    (400, -32701, "create node request failed", errors.InvalidRequest),
    (404, -32601, "not support uri:/api/v1/nope", errors.UnknownEndpoint),
    (500, -1, "bare metal power timeout", errors.RelayTimeout),
    (500, -1, "list bare metal timeout", errors.RelayTimeout),
    (500, -1, "response parse error", errors.RelayFailure),
    (200, -3, "check authority failed: machine is not be rented", errors.AuthorityRefused),
    (200, -3, "Not supported", errors.NodeRejected),
    (200, -3, "Error: Unable to establish LAN session <line> x", errors.NodeRejected),
    (200, 1, "write bare metal db error", errors.OperationFailed),
    (200, -1, "bare metal node id x not existed", errors.OperationFailed),
    # Every spelling of "not connected" (local query, local set, P2P query, P2P set).
    (400, -32600, "deeplink service not connected", errors.DeepLinkNotConnected),
    (200, -1, "deeplink service not connected", errors.DeepLinkNotConnected),
    (200, 1, "deeplink service not connected", errors.DeepLinkNotConnected),
    (200, -3, "deeplink service not connected", errors.DeepLinkNotConnected),
])
def test_error_classification(status, errcode, message, cls):
    error = api_error_from_reply("ep", status, errcode, message)
    assert type(error) is cls
    assert (error.http_status, error.errcode, error.message) == (status, errcode, message)
    assert isinstance(error, errors.ApiError) and isinstance(error, errors.BaremetalError)


def test_every_error_name_is_exported():
    for name in errors.__all__:
        assert hasattr(errors, name)
    assert json.dumps(sorted(errors.__all__)) == json.dumps(errors.__all__)
