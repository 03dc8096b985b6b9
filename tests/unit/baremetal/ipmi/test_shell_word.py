"""The node's shell-line rule (baremetal.ipmi.shell_word) against the real ``sh -c``.

Reference: docs/protocol.md §6.2.

Property: any value the rule accepts, put on the node's exact command line
(``dbc_command_line``) and run by ``sh -c`` (and by bash, whose expansions go further),
reaches ipmitool as exactly the intended argv. A stub ``ipmitool`` first on PATH writes
its argv NUL-separated to a file. The working directory holds files a glob would match
and HOME points elsewhere, so a glob or tilde that slipped through would show.
Hand-picked hostile values (the ones the café LAN review found among them) are refused.
"""

from __future__ import annotations

import os
import shutil
import string
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from baremetal.dbc.models import NewServer, ServerChanges
from baremetal.errors import InvalidInput, UnsafeShellWord
from baremetal.ipmi.ipmitool import dbc_argv, dbc_command_line
from baremetal.ipmi.shell_word import (
    check_node_shell_fields,
    check_shell_port,
    check_shell_word,
    is_shell_word,
    unsafe_node_shell_field,
)

SHELLS = [path for path in (shutil.which("sh"), shutil.which("bash")) if path]
_SAFE_CHARS = string.ascii_letters + string.digits + "._@%+=:,/-"
# Everything printable plus blanks and a few non-ASCII and bidi characters: the generator
# mixes them in, and only what the rule accepts is run.
_ALL_CHARS = string.printable + "\u00e9\u4e2d\u202e\u00a0"

INJECTIONS = [
    "fe80::1%;cd;touch x_$(id -u);",  # as found: a scope id ipaddress accepts
    "::1%`id`|nc 127.0.0.1 9",
]
HOSTILE = [
    *INJECTIONS,
    "fe80::1%;id", "fe80::1%$(id)", "fe80::1%`id`", "fe80::1%a|b", "fe80::1%a&b",
    "fe80::1%a>b", "fe80::1%a<b", "fe80::1%a\nb", "fe80::1%a\tb", "fe80::1%a b",
    "fe80::1%'a'", 'fe80::1%"a"', "~root", "~", "a~b", "*", "a?", "[a]", "{a,b}", "#x",
    "!", "a!b", "a^b", "=cmd", "", " ", "a\\b", "a$b", "a;b", "(a)", "a\u202eb", "\u00e9",
    "a\x00b", "a\x7fb",
]


@pytest.fixture(scope="module")
def shell_rig(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("sh-rig")
    bin_dir, cwd, home = base / "bin", base / "cwd", base / "home"
    for folder in (bin_dir, cwd, home):
        folder.mkdir()
    for name in ("a", "b", "ab", "x_0", "cmd"):  # what a glob or brace expansion would find
        (cwd / name).write_text("")
    stub = bin_dir / "ipmitool"
    stub.write_text('#!/bin/sh\nprintf \'%s\\0\' "$@" > "$ARGV_OUT"\n')
    stub.chmod(0o755)
    return {"bin": bin_dir, "cwd": cwd, "home": home, "out": base / "argv"}


def _run_node_line(shell: str, rig: dict[str, Path], line: str) -> list[str]:
    """Run ``line`` as the node does (``sh -c '<line> 2>&1'``); return the argv ipmitool got."""
    rig["out"].unlink(missing_ok=True)
    env = {"PATH": f"{rig['bin']}{os.pathsep}/usr/bin:/bin", "HOME": str(rig["home"]),
           "ARGV_OUT": str(rig["out"]), "LANG": "C.UTF-8"}
    subprocess.run([shell, "-c", line + " 2>&1"], cwd=rig["cwd"], env=env, timeout=10,
                   check=False, capture_output=True)
    return rig["out"].read_bytes().decode().split("\0")[:-1]


_words = st.text(alphabet=_ALL_CHARS, min_size=0, max_size=24).filter(is_shell_word)
_safe_words = st.text(alphabet=_SAFE_CHARS, min_size=1, max_size=24).filter(is_shell_word)
_ports = st.one_of(st.none(), st.integers(min_value=1, max_value=65535))


@pytest.mark.skipif(not SHELLS, reason="no sh on this machine")
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
@given(host=st.one_of(_words, _safe_words), port=_ports,
       user=st.one_of(_words, _safe_words), password=st.one_of(_words, _safe_words),
       verb_arg=st.sampled_from([("power", "status"), ("power", "on"), ("bootdev", "pxe")]))
@example(host="fe80::1%eth0", port=623, user="admin", password="a=b:c,d+e@f%g/h",
         verb_arg=("power", "off"))
@example(host="-H", port=None, user="%1", password="x=~", verb_arg=("power", "status"))
def test_accepted_values_reach_ipmitool_exactly_through_real_sh(
        shell_rig: dict[str, Path], host: str, port: int | None, user: str, password: str,
        verb_arg: tuple[str, str]) -> None:
    if not all(is_shell_word(v) for v in (host, user, password)):
        return  # only what the rule accepts is run (hostile values: see below)
    check_node_shell_fields(hostname=host, port=port, username=user, password=password)
    verb, arg = verb_arg
    intended = ["-H", host, *(["-p", str(port)] if port is not None else []), "-U", user,
                "-P", password, "chassis", verb, arg]
    line = dbc_command_line(host, port, user, password, verb, arg)
    assert dbc_argv(host, port, user, password, verb, arg)[1:] == intended
    for shell in SHELLS:
        assert _run_node_line(shell, shell_rig, line) == intended, (shell, line)


def test_the_rig_would_show_an_expansion(shell_rig: dict[str, Path]) -> None:
    """Sanity: the same run with a glob, a brace, a tilde or $() changes the argv."""
    for shell in SHELLS:
        assert _run_node_line(shell, shell_rig, "ipmitool -P a*") == ["-P", "a", "ab"]
        assert _run_node_line(shell, shell_rig, "ipmitool -P ~")[1] == str(shell_rig["home"])
        assert _run_node_line(shell, shell_rig, "ipmitool -P $(echo x y)") == ["-P", "x", "y"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_refused_for_every_field(value: str) -> None:
    assert not is_shell_word(value)
    for field in ("ipmi_hostname", "ipmi_username", "ipmi_password"):
        with pytest.raises(UnsafeShellWord) as info:
            check_shell_word(field, value)
        assert info.value.field == field
        if len(value) > 2:
            assert value not in str(info.value)  # the value is never echoed


@pytest.mark.parametrize("value", ["10.0.0.5", "bmc-1.lan", "fe80::1%eth0", "::1", "admin",
                                   "ADMIN", "pw-123", "s3cret", "a=b", "x%y", "user@host",
                                   "p+q,r:s/t", "-x", "_"])
def test_legitimate_values_pass(value: str) -> None:
    assert check_shell_word("ipmi_password", value) == value


@pytest.mark.parametrize(("port", "ok"), [(None, True), ("", True), (623, True), ("6230", True),
                                          (65535, True), (0, False), (65536, False),
                                          ("0623", False), (" 623", False), (True, False),
                                          ("623;id", False), (6.5, False)])
def test_port_is_absent_or_a_decimal_1_to_65535(port: object, ok: bool) -> None:
    if ok:
        check_shell_port("ipmi_port", port)
    else:
        with pytest.raises(UnsafeShellWord):
            check_shell_port("ipmi_port", port)


def test_first_unsafe_field_is_named_in_command_line_order() -> None:
    assert unsafe_node_shell_field(hostname="h", port=None, username="u", password="p") is None
    assert unsafe_node_shell_field(hostname=INJECTIONS[0], port=None, username="u",
                                   password="$(x)") == "ipmi_hostname"
    assert unsafe_node_shell_field(hostname="h", port=623, username="u",
                                   password="~root") == "ipmi_password"


@pytest.mark.parametrize("value", [*INJECTIONS, "~root", "a*", "{a,b}"])
def test_the_client_never_sends_an_unsafe_ipmi_field(value: str) -> None:
    base = {"uuid": "pc-1", "ip": "10.0.0.1", "ipmi_hostname": "h", "ipmi_username": "u",
            "ipmi_password": "p"}
    for name in ("ipmi_hostname", "ipmi_username", "ipmi_password"):
        with pytest.raises(InvalidInput) as info:
            NewServer(**{**base, name: value})  # type: ignore[arg-type]
        assert isinstance(info.value, UnsafeShellWord) and info.value.field == name
        with pytest.raises(UnsafeShellWord):
            ServerChanges(**{name: value})
