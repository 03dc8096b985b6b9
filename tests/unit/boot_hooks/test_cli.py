"""The command line: --help documents every exit code; config errors exit 2."""

import pytest

from boot_hooks.__main__ import build_parser, main
from boot_hooks.errors import ExitCode


def test_help_lists_every_exit_code():
    text = build_parser().format_help()
    for code in ExitCode:
        assert f"  {int(code)}  " in text


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "exit codes" in capsys.readouterr().out


def test_bad_config_exits_with_the_config_code(tmp_path, monkeypatch):
    path = tmp_path / "hook.toml"
    path.write_text("[node]\nurl = 'http://127.0.0.1:1'\n")
    for name in list(__import__("os").environ):
        if name.startswith("BM_HOOK_"):
            monkeypatch.delenv(name)
    assert main(["--config", str(path)]) == ExitCode.CONFIG


def test_missing_key_file_exits_with_the_config_code(tmp_path):
    path = tmp_path / "hook.toml"
    path.write_text(f"[node]\nurl = 'http://127.0.0.1:1'\n[server]\nkey_file = '{tmp_path}/none'\n")
    assert main(["--config", str(path)]) == ExitCode.CONFIG
