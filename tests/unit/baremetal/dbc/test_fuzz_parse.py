"""Fuzzing the DBC response parser: any body and status give a Reply or a BaremetalError leaf.

Volume runs here on the pure functions (``decode_envelope``, every ``parse_*``,
``api_error_from_reply``); a sample of the same inputs goes through a real loopback HTTP
peer in tests/integration/test_hostile_answers.py. The real node writes strings without
escaping them (docs/protocol.md §2.5), so bodies are also built the node's way: a stored text
pasted raw between quotes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baremetal.dbc import parse as cp
from baremetal.dbc.http import Reply, decode_envelope
from baremetal.errors import ApiError, BaremetalError, DecodeError, api_error_from_reply

pytestmark = pytest.mark.slow  # thousands of examples: `make test` runs them, `make check` not

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ENDPOINT = "fuzz"

_statuses = st.integers(min_value=100, max_value=599)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                     st.floats(allow_nan=False, allow_infinity=False))
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=10)
_node_id = st.one_of(st.just("ab" * 32), st.text(alphabet="0123456789abcdefABCDEF", max_size=66))


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right type, sometimes anything (near-valid answers find the edge cases)."""
    return st.one_of(value, value, value, _json)


_server = st.fixed_dictionaries(
    {"node_id": _maybe(_node_id), **{k: _maybe(st.text(max_size=12)) for k in (
        "uuid", "ip", "os", "description", "ipmi_hostname", "ipmi_username", "ipmi_password",
        "node_private_key")}},
    optional={"ipmi_port": _maybe(st.integers(min_value=-5, max_value=70000)),
              "deeplink_device_id": _maybe(st.text(max_size=10)),
              "deeplink_device_password": _maybe(st.text(max_size=10)),
              "power_status": _maybe(st.text(max_size=20)), "name": _json})
_messages = st.one_of(
    _json,
    st.fixed_dictionaries({"bare_metal_nodes": _maybe(st.lists(_server, max_size=3))}),
    st.fixed_dictionaries({"bare_metal_nodes": st.lists(st.fixed_dictionaries(
        {"node_id": _maybe(_node_id), "uuid": _maybe(st.text(max_size=8))}), max_size=3)}),
    st.fixed_dictionaries({k: _maybe(st.text(max_size=12)) for k in (
        "version", "node_type", "ip", "os", "description", "client_version", "session_id",
        "device_id", "device_password")},
        optional={"deeplink": _json, "power_status": _json}),
    st.from_regex(r"\d{1,3} were successfully deleted, \d{1,3} failed", fullmatch=True),
)

PARSERS: list[Callable[[str, Any], Any]] = [
    cp.parse_version, cp.parse_text, cp.parse_server_list, cp.parse_renter_view,
    cp.parse_added_servers, cp.parse_delete_result, cp.parse_deeplink, cp.parse_node_info,
    cp.parse_session_id,
    lambda e, m: cp.parse_summaries(e, m, "mining_nodes"),
]


def _expected_envelope(status: int, doc: Any) -> bool:
    """Whether decode_envelope must accept ``doc`` (its documented rules)."""
    if not isinstance(doc, dict) or "message" not in doc:
        return False
    errcode = doc.get("errcode")
    if isinstance(errcode, bool) or not isinstance(errcode, int):
        return False
    if errcode != 0:
        return isinstance(doc["message"], str)
    return status == 200


@FUZZ
@given(_statuses, st.binary(max_size=300), st.sampled_from(["", "application/json",
                                                            "text/html"]))
def test_any_bytes_are_a_reply_or_a_decode_error(status: int, body: bytes, ctype: str) -> None:
    try:
        reply = decode_envelope(ENDPOINT, status, body, ctype)
    except DecodeError as exc:
        assert exc.http_status == status
        return
    assert isinstance(reply, Reply)


@FUZZ
@given(_statuses, st.one_of(_json, st.fixed_dictionaries(
    {"errcode": st.one_of(st.integers(min_value=-40000, max_value=5), st.booleans(), _json),
     "message": _messages})))
def test_json_documents_are_accepted_exactly_by_the_envelope_rules(status: int, doc: Any
                                                                    ) -> None:
    body = json.dumps(doc, ensure_ascii=False).encode()
    try:
        reply = decode_envelope(ENDPOINT, status, body)
    except DecodeError:
        assert not _expected_envelope(status, doc)
        return
    assert _expected_envelope(status, doc)
    assert (reply.http_status, reply.errcode, reply.message) == (status, doc["errcode"],
                                                                  doc["message"])


@FUZZ
@given(st.text(max_size=60), st.sampled_from(["message", "description"]))
def test_node_style_unescaped_text_never_crashes_and_is_never_quoted(text: str, where: str
                                                                      ) -> None:
    # The node pastes stored text between quotes as is (rest_api_service.cpp, §2.5).
    text = "Zq7" + text  # a marker: the text can never be part of the parser's own words
    if where == "message":
        raw = '{"errcode":0, "message":"' + text + '"}\r\n'
    else:
        raw = ('{"errcode":0, "message":{"bare_metal_nodes":[{"node_id":"' + "ab" * 32
               + '","uuid":"u1","description":"' + text + '"}]}}\r\n')
    try:
        reply = decode_envelope(ENDPOINT, 200, raw.encode("utf-8", "surrogatepass"))
    except DecodeError as exc:
        assert "Zq7" not in str(exc)
        return
    assert reply.errcode == 0


@FUZZ
@given(st.sampled_from(PARSERS), _messages)
def test_every_parser_gives_a_model_or_a_decode_error(parser: Callable[[str, Any], Any],
                                                      message: Any) -> None:
    try:
        parser(ENDPOINT, message)
    except DecodeError as exc:
        assert exc.endpoint == ENDPOINT
        assert isinstance(exc, BaremetalError)


_secret = st.text(max_size=12).map(lambda t: "Zq7" + t)  # marked: never the parser's words
_server_with_secrets = st.builds(
    lambda item, password, key: {**item, "ipmi_password": password, "node_private_key": key},
    _server, _maybe(_secret), _maybe(_secret))


@settings(FUZZ, max_examples=150)
@given(st.lists(_server_with_secrets, min_size=1, max_size=3))
def test_server_list_failures_name_the_field_never_the_value(items: list[dict[str, Any]]
                                                             ) -> None:
    try:
        servers = cp.parse_server_list(ENDPOINT, {"bare_metal_nodes": items})
    except DecodeError as exc:
        assert "Zq7" not in str(exc)
        return
    assert [s.uuid for s in servers] == [i["uuid"] for i in items]


@FUZZ
@given(_statuses, st.integers(min_value=-(2**31), max_value=2**31), st.text(max_size=80))
def test_error_replies_always_classify_into_an_api_error(status: int, errcode: int,
                                                         message: str) -> None:
    error = api_error_from_reply(ENDPOINT, status, errcode, message)
    assert isinstance(error, ApiError) and isinstance(error, BaremetalError)
    assert (error.http_status, error.errcode) == (status, errcode)
