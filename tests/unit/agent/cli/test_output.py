"""CLI presentation: CJK-aware tables, exit-code mapping, translated error lines, parser shape."""

from __future__ import annotations

import pytest

from agent import errors as ae
from agent.cli.actions import exit_for_results
from agent.cli.context import CliError, ExitCode, error_text, exit_code_for
from agent.cli.entry import build_parser
from agent.cli.output import display_width, format_table, truncate
from baremetal import errors as be


def test_display_width_counts_wide_characters_twice() -> None:
    assert display_width("abc") == 3
    assert display_width("大厅") == 4
    assert display_width("A排1号") == 6
    assert display_width("ＡＢ") == 4  # full-width Latin
    assert display_width("e\u0301") == 1  # combining accent takes no column


def test_table_columns_line_up_with_chinese_text() -> None:
    text = format_table(["UUID", "描述"], [["PC-1", "A排1号 电竞主机"], ["PC-22", "ok"]])
    header, rule, first, second = text.splitlines()
    # The second column starts at the same display column on every line.
    starts = {display_width(line[:line.index(cell)])
              for line, cell in ((header, "描述"), (first, "A排1号"), (second, "ok"))}
    assert starts == {len("PC-22") + 2}
    assert display_width(rule) == display_width(first)


def test_truncate_respects_double_width_and_marks_the_cut() -> None:
    cut = truncate("一二三四五六", 7)
    assert cut.endswith("…")
    assert display_width(cut) <= 7
    assert truncate("short", 10) == "short"


def test_cells_never_break_a_line() -> None:
    text = format_table(["a"], [["two\nlines"], [None], [True]])
    assert text.splitlines()[2:] == ["two lines", "-", "yes"]


@pytest.mark.parametrize(("exc", "code"), [
    (ae.ServerNotFound("x"), ExitCode.NOT_FOUND),
    (ae.UserNotFound("x"), ExitCode.NOT_FOUND),
    (ae.AlreadyExists("x", kind="user"), ExitCode.CONFLICT),
    (ae.ActionInProgress(server="x", action="power_on"), ExitCode.CONFLICT),
    (ae.ValidationError(field="f", reason="r"), ExitCode.USAGE),
    (ae.ConfigError(key="k", file="f", expected="e"), ExitCode.USAGE),
    (ae.AuthFailed("bad"), ExitCode.DENIED),
    (ae.PermissionDenied(needed="admin"), ExitCode.DENIED),
    (ae.StoreBusy("locked", path="/x"), ExitCode.ERROR),
    (be.NodeUnreachable("bare_metal/add", "refused"), ExitCode.UNREACHABLE),
    (be.NodeTimeout("bare_metal/add", "slow"), ExitCode.UNREACHABLE),
    (be.IpmiTimeout("127.0.0.1:623", "slow"), ExitCode.UNREACHABLE),
    (be.IpmiAuthError("127.0.0.1:623", "no"), ExitCode.ERROR),
    (be.OperationFailed("bare_metal/add", 200, 1, "db"), ExitCode.ERROR),
    (CliError("cli.nothing_selected"), ExitCode.USAGE),
    (KeyboardInterrupt(), ExitCode.INTERRUPTED),
    (RuntimeError("bug"), ExitCode.ERROR),
])
def test_exit_codes(exc: BaseException, code: ExitCode) -> None:
    assert exit_code_for(exc) == code


def test_registry_error_caused_by_an_unreachable_node_is_exit_6() -> None:
    try:
        try:
            raise be.NodeUnreachable("bare_metal/add", "connection refused")
        except be.NodeUnreachable as inner:
            raise ae.RegistryError("node down") from inner
    except ae.RegistryError as exc:
        assert exit_code_for(exc) == ExitCode.UNREACHABLE


def test_error_lines_are_translated_with_the_type_name() -> None:
    exc = ae.ServerNotFound("gpu-7")
    assert error_text(exc, "en") == "ServerNotFound: server gpu-7 not found"
    # Issue 13 item 9: no English type name in Chinese output (--json keeps the type).
    assert error_text(exc, "zh_CN") == "错误：未找到服务器 gpu-7"
    node = error_text(be.NodeUnreachable("bare_metal/add", "refused"), "zh_CN")
    assert node.startswith("错误：") and "refused" in node
    assert error_text(CliError("cli.nothing_selected"), "en").startswith("error: no server")


def test_every_documented_exit_code_is_in_the_help() -> None:
    text = build_parser().format_help()
    for code in ExitCode:
        assert f"  {int(code):<3}  " in text


@pytest.mark.parametrize("argv", [
    ["--json", "--config", "/x.toml", "check", "--once"],
    ["check", "--once", "--json", "--config", "/x.toml"],
])
def test_common_options_work_before_and_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.json is True and args.config == "/x.toml" and args.once is True


def test_global_value_is_not_reset_by_the_subcommand_default() -> None:
    args = build_parser().parse_args(["--lang", "en", "--user", "bob", "events"])
    assert args.lang == "en" and args.user == "bob"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["power", "explode", "x"])
    assert info.value.code == ExitCode.USAGE


class _R:
    def __init__(self, ok: bool, code: str) -> None:
        self.ok, self.code = ok, code


@pytest.mark.parametrize(("results", "expected"), [
    ([_R(True, "verified"), _R(True, "unverified")], ExitCode.OK),
    ([_R(True, "verified"), _R(False, "ipmi_unreachable")], ExitCode.PARTIAL),
    ([_R(False, "ipmi_unreachable"), _R(False, "ipmi_timeout")], ExitCode.UNREACHABLE),
    ([_R(False, "conflict")], ExitCode.CONFLICT),
    ([_R(False, "ipmi_auth")], ExitCode.ERROR),
])
def test_batch_exit_codes(results: list[_R], expected: ExitCode) -> None:
    assert exit_for_results(results) == expected
