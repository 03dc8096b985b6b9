"""Fuzzing the inventory importer: any file gives an ImportReport, never an exception.

What an accepted row may hold is checked too: every field the DBC node puts on its
``sh -c`` line is one plain shell word, and no free text hides a control or bidi
character. Inputs are built around the review's findings: scope-id hosts, huge CSV
fields (past the csv module's 128 KiB limit), deeply nested JSON, long digit strings.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.display_text import hidden_character
from agent.registry.inventory import CSV_FIELDS, OPTIONAL_FIELDS, ImportReport, parse_inventory
from baremetal.ipmi.shell_word import is_shell_word

pytestmark = pytest.mark.slow  # thousands of examples: `make test` runs them, `make check` not

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER = ",".join(CSV_FIELDS + OPTIONAL_FIELDS)
_NASTY = "\u202e\u2066\u200f\u061c\x00\x1b\x7f\x85\u2028;$`|&<>()~*?[]{}#!^= \t\n\"'\\%:,"
_text = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(_NASTY)), max_size=40)
_host = st.one_of(_text, st.builds(lambda a, b: f"fe80::{a}%{b}", st.integers(1, 9999), _text))
_cell = st.one_of(_text, _host, st.just("9" * 5000), st.just("x" * (128 * 1024 + 5)),
                  st.integers(-10, 70000).map(str))


def _check(report: ImportReport) -> None:
    assert isinstance(report, ImportReport)
    for server in report.servers:
        for value in (server.ipmi_hostname, server.ipmi_username, server.ipmi_password):
            assert is_shell_word(value), server.uuid
        assert server.ipmi_port is None or 1 <= server.ipmi_port <= 65535
        for text in (server.os, server.desc, *server.labels, *server.labels.values()):
            assert hidden_character(text) is None
            assert '"' not in text and "\\" not in text
    for error in report.errors:
        assert error.code and error.field
        assert hidden_character(error.uuid) is None


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_give_a_report(data: bytes) -> None:
    _check(parse_inventory(data))


@FUZZ
@given(st.lists(st.lists(_cell, min_size=1, max_size=10), max_size=4))
def test_any_csv_cells_give_a_report(rows: list[list[str]]) -> None:
    body = HEADER + "\n" + "".join(
        ",".join('"' + c.replace('"', '""') + '"' for c in row) + "\n" for row in rows)
    _check(parse_inventory(body.encode("utf-8", errors="surrogatepass")))


@FUZZ
@given(st.lists(st.fixed_dictionaries({}, optional={
    name: st.one_of(_cell, st.integers(), st.none(), st.booleans(), st.floats(),
                    st.lists(st.integers(), max_size=2))
    for name in CSV_FIELDS + OPTIONAL_FIELDS}), max_size=4))
def test_any_json_rows_give_a_report(rows: list[dict[str, object]]) -> None:
    body = json.dumps(rows).encode("utf-8", errors="surrogatepass")
    _check(parse_inventory(body, "x.json"))


@settings(max_examples=40, deadline=None)
@given(depth=st.integers(min_value=1, max_value=200_000),
       opener=st.sampled_from(["[", '{"servers": ', '[{"uuid": ', '{"a": [']),
       closed=st.booleans())
def test_any_nesting_depth_gives_a_report(depth: int, opener: str, closed: bool) -> None:
    body = opener * depth
    if closed:
        body += "".join("]" if "[" in opener else "}" for _ in range(depth))
    _check(parse_inventory(body.encode()))
