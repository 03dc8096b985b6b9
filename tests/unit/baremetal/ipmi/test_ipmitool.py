"""The node's ipmitool command line and output parsing (docs/protocol.md §6.2, §10 item 12)."""

from __future__ import annotations

import sys

import pytest

from baremetal.errors import IpmiTimeout, IpmiUnreachable
from baremetal.ipmi.ipmitool import (
    DbcIpmitoolResult,
    dbc_argv,
    dbc_command_line,
    parse_dbc_output,
    redacted_command_line,
    run_dbc_ipmitool,
)


def test_command_line_has_no_interface_and_port_only_when_stored():
    assert dbc_command_line("10.0.0.5", "", "admin", "pw", "power", "status") == (
        "ipmitool -H 10.0.0.5 -U admin -P pw chassis power status")
    assert dbc_command_line("10.0.0.5", None, "admin", "pw", "bootdev", "pxe") == (
        "ipmitool -H 10.0.0.5 -U admin -P pw chassis bootdev pxe")
    assert dbc_command_line("h", 6230, "u", "p", "power", "on") == (
        "ipmitool -H h -p 6230 -U u -P p chassis power on")
    assert " -I " not in dbc_command_line("h", "623", "u", "p", "power", "off")


def test_values_are_not_quoted_so_blanks_split_words():
    line = dbc_command_line("h", "", "u", "two words", "power", "status")
    assert line.endswith("-P two words chassis power status")
    assert dbc_argv("h", "", "u", "two words", "power", "status") == [
        "ipmitool", "-H", "h", "-U", "u", "-P", "two", "words", "chassis", "power", "status"]


def test_argv_passes_metacharacters_literally():
    argv = dbc_argv("h;touch /tmp/x", "", "u", "$(id)", "power", "status")
    assert "h;touch" in argv and "$(id)" in argv


def test_unknown_verb_is_refused():
    with pytest.raises(ValueError):
        dbc_command_line("h", "", "u", "p", "sol", "activate")


def test_redacted_line_hides_password():
    line = redacted_command_line("h", "623", "admin", "power", "status")
    assert "-P ******" in line


@pytest.mark.parametrize(
    ("raw", "ok", "message"),
    [
        ("Chassis Power is on\n", True, "Chassis Power is on"),
        ("Set Boot Device to pxe\n\n", True, "Set Boot Device to pxe"),
        ("Error: Unable to establish LAN session\nUnable to get Chassis Power Status\n", False,
         "Error: Unable to establish LAN session <line> Unable to get Chassis Power Status"),
        ("Set Chassis Power Control to Up/On failed: Command not supported\n", True,
         "Set Chassis Power Control to Up/On failed: Command not supported"),
        ("ipmi_lan_send_cmd error: bad\n", False, "ipmi_lan_send_cmd error: bad"),
        ("", True, ""),
    ],
)
def test_parse_output_like_the_node(raw, ok, message):
    assert parse_dbc_output(raw) == DbcIpmitoolResult(ok=ok, message=message)


def test_run_merges_stderr_and_parses(tmp_path):
    fake = tmp_path / "fake-ipmitool"
    fake.write_text(f"#!{sys.executable}\nimport sys\nprint('line1')\n"
                    "print('Error: nope', file=sys.stderr)\n")
    fake.chmod(0o755)
    result = run_dbc_ipmitool("h", "", "u", "p", "power", "status", timeout_s=10,
                              executable=str(fake))
    assert result == DbcIpmitoolResult(False, "line1 <line> Error: nope")


def test_run_timeout_and_missing_binary(tmp_path):
    slow = tmp_path / "slow-ipmitool"
    slow.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(5)\n")
    slow.chmod(0o755)
    with pytest.raises(IpmiTimeout):
        run_dbc_ipmitool("h", "", "u", "p", "power", "status", timeout_s=0.3,
                         executable=str(slow))
    with pytest.raises(IpmiUnreachable):
        run_dbc_ipmitool("h", "", "u", "p", "power", "status", timeout_s=1,
                         executable=str(tmp_path / "absent"))
