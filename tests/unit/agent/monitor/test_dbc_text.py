"""The DBC-path probe's text as the dashboard shows it (issue 13 item 4).

The exact text staff saw: ipmitool's two lines joined with the node's `` <line> `` marker,
shown raw (the marker visible) and broken mid-word by the page ("e stablish").
"""

from __future__ import annotations

import pytest

from agent.api.schemas import DbcPathOut, ReadingOut
from agent.monitor.dbc_text import DBC_SUMMARIES, dbc_failure_summary, ipmitool_lines
from baremetal.ipmi.ipmitool import parse_dbc_output

# What the monitor stores for a BMC without IPMI 1.5 "lan" (the node's own format).
STORED = "Error: Unable to establish LAN session <line> Unable to get Chassis Power Status"


def test_the_line_marker_is_gone_and_words_stay_whole() -> None:
    lines = ipmitool_lines(STORED)
    assert lines == ["Error: Unable to establish LAN session",
                     "Unable to get Chassis Power Status"]
    joined = " ".join(lines)
    assert "<line>" not in joined
    assert "e stablish" not in joined
    assert "establish" in joined


def test_real_ipmitool_output_round_trips_through_the_node_format() -> None:
    raw = "Error: Unable to establish LAN session\r\nUnable to get Chassis Power Status\n"
    assert ipmitool_lines(parse_dbc_output(raw).message) == ipmitool_lines(STORED)


def test_tabs_blanks_empty_and_repeated_lines_are_tidied() -> None:
    text = "Activate Session error:\tInvalid user name <line>  <line> <line>Error:  Unable" \
           " to establish LAN session <line> Error:  Unable to establish LAN session"
    assert ipmitool_lines(text) == ["Activate Session error: Invalid user name",
                                    "Error: Unable to establish LAN session"]


def test_a_text_cut_at_the_store_limit_ends_on_a_whole_word() -> None:
    text = ("Error: Unable to establish LAN session <line> " * 20)[:500]
    last = ipmitool_lines(text)[-1]
    assert last.endswith(" …")
    assert all(word in ["Error:", "Unable", "to", "establish", "LAN", "session", "…"]
               for word in last.split())


@pytest.mark.parametrize(("message", "summary"), [
    (STORED, "no_lan_session"),
    ("Activate Session error:\tInvalid user name <line> Error: Unable to establish LAN session",
     "auth"),
    ("ipmitool gave no answer within 3 s", "timeout"),
    ("not run: the stored password is not safe on the DBC node's shell command line (blank)",
     "unsafe_value"),
    ("Error: something new", "other"),
])
def test_the_cause_is_one_code(message: str, summary: str) -> None:
    assert dbc_failure_summary(message) == summary
    assert summary in DBC_SUMMARIES


def _reading(ok: bool | None, message: str) -> ReadingOut:
    return ReadingOut(ts=1.0, power="on", boot_device=None, boot_valid=None,
                      boot_persistent=None, boot_uefi=None, dbc_path_ok=ok,
                      dbc_path_message=message, dbc_power_status=None, error_class=None,
                      error_detail="", latency_ms=None)


def test_the_detail_answer_carries_summary_and_clean_lines() -> None:
    out = DbcPathOut.from_reading(_reading(False, STORED))
    assert out is not None
    assert out.summary == "no_lan_session"
    assert "<line>" not in " ".join(out.lines)
    good = DbcPathOut.from_reading(_reading(True, "Chassis Power is on"))
    assert good is not None and good.summary is None and good.lines == ["Chassis Power is on"]
    assert DbcPathOut.from_reading(_reading(None, "")) is None
    assert DbcPathOut.from_reading(None) is None
