"""Issue 13 items 6, 7 and 9 in the CLI, each example as found: times with the café's zone,
the actor of a CLI action, ``--action power``, and no English words in 中文 output."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent.cli.context import ExitCode
from agent.cli.entry import run
from agent.cli.output import Output
from agent.config import load_settings
from agent.errors import ConfigError
from agent.models import EventKind
from agent.secrets import Sealer
from agent.store import Store
from agent.timefmt import format_ts, load_zone, utc_offset_label

PASSWORD = "correct-horse-1"
EVENT_TS = 1764775402.0  # 2025-12-03 15:23:22 UTC = 23:23:22 in Asia/Shanghai


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BM_AGENT_") or name in ("LC_ALL", "LC_MESSAGES", "LANG"):
            monkeypatch.delenv(name)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    assert _cli(tmp_path, "init", "--admin", "boss", "--password-file", str(tmp_path / "pw"),
                "--node-url", "http://127.0.0.1:5002") == ExitCode.OK
    return tmp_path


def _cli(home: Path, *args: str) -> int:
    return run(["--config", str(home / "agent.toml"), *args])


def _store(home: Path) -> Store:
    return Store.open(home / "agent.db", sealer=Sealer.from_key_file(home / "secrets.key"))


# --- item 6: one zone, shown -----------------------------------------------------------


def test_the_same_instant_is_shown_with_its_zone() -> None:
    assert format_ts(EVENT_TS, load_zone("Asia/Shanghai")) == "2025-12-03 23:23:22 UTC+8"
    assert format_ts(EVENT_TS, load_zone("UTC")) == "2025-12-03 15:23:22 UTC"
    assert format_ts(EVENT_TS, load_zone("Asia/Kolkata")).endswith("20:53:22 UTC+5:30")
    assert utc_offset_label(timedelta(hours=-3)) == "UTC-3"
    assert format_ts(None, load_zone("UTC")) == "-"


@pytest.mark.parametrize("bad", ["Mars/Olympus", "../../etc/passwd", "/etc/localtime", "UTC+8"])
def test_a_bad_timezone_is_a_config_error_at_start(home: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(home / "agent.toml", environ={"BM_AGENT_UI_TIMEZONE": bad})
    assert caught.value.params["key"] == "ui.timezone"
    assert _cli(home, "--lang", "zh_CN", "users", "list") == ExitCode.OK
    os.environ["BM_AGENT_UI_TIMEZONE"] = bad
    assert _cli(home, "--lang", "zh_CN", "users", "list") == ExitCode.USAGE


def test_an_empty_timezone_is_the_systems(home: Path) -> None:
    from agent.timefmt import system_zone_name

    settings = load_settings(home / "agent.toml", environ={"BM_AGENT_UI_TIMEZONE": ""})
    assert settings.ui.timezone == system_zone_name()


def test_cli_events_show_the_cafe_zone(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with _store(home) as store:
        store.events.append(actor="boss", kind=EventKind.AUDIT, action="power_off",
                            server_uuid="PC-B04", result="verified", detail={"target": "off"})
        event = store.events.page(limit=1).items[0]
    capsys.readouterr()
    os.environ["BM_AGENT_UI_TIMEZONE"] = "Asia/Shanghai"
    assert _cli(home, "--lang", "zh_CN", "events", "--limit", "1") == ExitCode.OK
    expected = format_ts(event.ts, load_zone("Asia/Shanghai"))
    assert expected.endswith("UTC+8") and expected in capsys.readouterr().out


# --- item 7: the actor, --action families -------------------------------------------------


def test_cli_actor_is_the_staff_account_not_the_os_login(home: Path) -> None:
    settings = load_settings(home / "agent.toml", environ={})
    login = dict(settings.auth.os_users)
    assert list(login.values()) == ["boss"]  # init mapped whoever ran it to its admin
    (home / "pw2").write_text("another-pass-2\n")
    assert _cli(home, "users", "add", "alice", "--password-file", str(home / "pw2")) == 0
    with _store(home) as store:
        [event] = [e for e in store.events.page(limit=10).items if e.action == "user_add"
                   and e.detail.get("user") == "alice"]
    assert event.actor == "boss" and not event.actor.startswith("cli:")


def test_an_unmapped_os_login_is_refused(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.environ["BM_AGENT_AUTH_OS_USERS"] = "somebody-else=boss"
    capsys.readouterr()
    code = _cli(home, "--lang", "zh_CN", "users", "add", "eve", "--password-file",
                str(home / "pw"))
    assert code == ExitCode.DENIED
    err = capsys.readouterr().err
    assert "--user" in err and "os_users" in err
    assert _cli(home, "--user", "boss", "users", "add", "eve", "--password-file",
                str(home / "pw")) == ExitCode.OK


def test_events_action_power_matches_the_family(home: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with _store(home) as store:
        for action in ("power_on", "power_off", "bootdev"):
            store.events.append(actor="boss", kind=EventKind.AUDIT, action=action,
                                server_uuid="PC-B04", result="verified")
    capsys.readouterr()
    assert _cli(home, "--json", "events", "--action", "power") == ExitCode.OK
    import json

    found = {e["action"] for e in json.loads(capsys.readouterr().out)["events"]}
    assert found == {"power_on", "power_off"}
    assert _cli(home, "--json", "events", "--action", "强制关机") == ExitCode.OK
    assert {e["action"] for e in json.loads(capsys.readouterr().out)["events"]} == {"power_off"}
    assert _cli(home, "--lang", "zh_CN", "events", "--action", "powr") == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "powr" in err and "power_on" in err


# --- item 9: no English words in 中文 ------------------------------------------------------


def _zh() -> Output:
    return Output(lang="zh_CN", json_mode=False)


def test_codes_and_yes_no_are_named() -> None:
    out = _zh()
    assert out.code("default", "bootdev") == "默认"
    assert out.code("ipmi_unreachable", "result", "reason") == "BMC 无应答"
    assert out.cells([True, False, 3]) == ["是", "否", 3]


def test_reading_is_in_words() -> None:
    from agent.cli.actions import _reading_text

    ctx = SimpleNamespace(out=_zh())
    reading = SimpleNamespace(error=None, power="off", boot_valid=True, boot_persistent=True,
                              boot_uefi=False, boot_selector=None, boot_device="default")
    text = _reading_text(ctx, reading)  # type: ignore[arg-type]
    assert text == "电源 关机 · 启动设备 默认 (持久)"
    assert "power=" not in str(text)
    failed = SimpleNamespace(error="unreachable")
    assert _reading_text(ctx, failed) == "错误 BMC 无应答"  # type: ignore[arg-type]


def test_event_details_are_in_words() -> None:
    from agent.cli.events import detail_text

    text = detail_text(SimpleNamespace(out=_zh()),  # type: ignore[arg-type]
                       {"command": "off", "target": "off", "persistent": True})
    assert text == "命令=关机 目标=关机 持久=是"


def test_rejected_header_is_in_chinese() -> None:
    from agent.cli.servers import row_error_text
    from agent.registry.inventory import parse_inventory

    csv = ("uuid,ip地址,os,desc,ipmi_hostname,ipmi_username,ipmi_password\n"
           "PC-1,10.0.0.1,win,x,127.0.0.1,admin,pw\n").encode()
    [error] = parse_inventory(csv, "bad.csv").errors
    text = row_error_text(SimpleNamespace(out=_zh()), error)  # type: ignore[arg-type]
    assert text == "第 1 行：表头错误：未知的列 ip地址，缺少列 ip"


def test_already_exists_has_no_english_type(home: Path, capsys: pytest.CaptureFixture[str]):
    capsys.readouterr()
    assert _cli(home, "--lang", "zh_CN", "users", "add", "boss", "--password-file",
                str(home / "pw")) == ExitCode.CONFLICT
    err = capsys.readouterr().err.strip()
    assert err.startswith("错误：") and "AlreadyExists" not in err and "boss" in err


def test_argparse_speaks_chinese(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        run(["--lang", "zh_CN", "power"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "用法：" in err and "缺少必需的参数" in err
    assert "usage" not in err and "the following arguments are required" not in err
    with pytest.raises(SystemExit):
        run(["--lang", "zh_CN", "events", "--help"])
    assert "选项" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        run(["--lang", "en", "power"])
    assert "the following arguments are required" in capsys.readouterr().err


def test_verdict_accepts_the_chinese_name_printed_in_the_table(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert _cli(home, "--lang", "zh_CN", "servers", "list", "--verdict", "DBC 通路故障") == 0
    assert _cli(home, "servers", "list", "--verdict", "dbc_path_broken") == 0
    assert _cli(home, "events", "--kind", "审计") == 0
    with pytest.raises(SystemExit) as done:
        _cli(home, "--lang", "zh_CN", "servers", "list", "--verdict", "坏了")
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "坏了 不是可选值之一" in err and "DBC 通路故障" in err


def test_action_results_table_has_no_english_in_chinese(capsys: pytest.CaptureFixture[str]):
    """As found: ``power=off``, ``ipmi_unreachable`` and English messages in a 中文 table."""
    import re

    from agent.actions.service import ActionReading, ActionResult
    from agent.cli.actions import _print_results

    settings = SimpleNamespace(actions=SimpleNamespace(verify_deadline_s=5.0))
    ctx = SimpleNamespace(out=_zh(), settings=lambda: settings)
    results = [
        ActionResult("PC-1", "power_off", True, True, "verified",
                     "the BMC reports the requested state", ActionReading(power="off")),
        ActionResult("PC-2", "power_off", False, False, "ipmi_unreachable", "timed out",
                     ActionReading(error="unreachable")),
        ActionResult("PC-3", "power_off", True, False, "unverified", "the BMC took it",
                     ActionReading(power="on", boot_valid=True, boot_device="default")),
        ActionResult("PC-4", "power_off", False, False, "bmc_settings_invalid", "too long"),
    ]
    assert _print_results(ctx, results) == ExitCode.PARTIAL  # type: ignore[arg-type]
    out = capsys.readouterr().out
    words = set(re.findall(r"[A-Za-z_]{2,}", out)) - {"PC", "UUID", "BMC", "IPMI", "UEFI",
                                                      "BIOS", "PXE"}
    assert not words, (words, out)
    assert "电源 关机" in out and "BMC 无应答" in out and "5 秒内" in out


def test_every_help_text_has_a_chinese_one() -> None:
    import argparse

    from agent.cli.entry import build_parser
    from agent.cli.help_zh import ZH_HELP

    missing: set[str] = set()

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing.update(a.help for a in action._choices_actions
                               if a.help and a.help not in ZH_HELP)
                for sub in set(action.choices.values()):
                    walk(sub)
            elif action.help and action.help != argparse.SUPPRESS:
                missing.add(action.help) if action.help not in ZH_HELP else None

    walk(build_parser())
    assert missing <= {"show this help message and exit"}, missing  # argparse's own: gettext


def test_rental_of_reads_either_source() -> None:
    from agent.cli.confirm import Rental, rental_of

    class FileSource:
        def rented(self, node_id: str | None) -> bool | None:
            return {"a": True, "b": False}.get(node_id or "")

    class ChainSource(FileSource):
        def rental(self, node_id: str | None) -> object | None:
            return SimpleNamespace(rented=True, rent_end_at=EVENT_TS) if node_id == "c" else None

    old = SimpleNamespace(monitor=SimpleNamespace(_rentals=FileSource()))
    assert rental_of(old, "a") == Rental("rented") and rental_of(old, "b") == Rental("idle")
    assert rental_of(old, "z") == Rental("unknown") and rental_of(old, None) == Rental("unknown")
    new = SimpleNamespace(monitor=SimpleNamespace(rentals=ChainSource()))
    assert rental_of(new, "c") == Rental("rented", EVENT_TS)
    assert rental_of(new, "b") == Rental("idle")  # no chain answer: the file
    assert rental_of(SimpleNamespace(monitor=SimpleNamespace()), "a") == Rental("unknown")


def test_rented_until_is_shown_in_the_cafe_zone() -> None:
    from agent.cli.confirm import Rental, rental_text

    out = _zh()
    out.zone = load_zone("Asia/Shanghai")
    ctx = SimpleNamespace(out=out)
    assert rental_text(ctx, Rental("rented", EVENT_TS)) == \
        "出租中，至 2025-12-03 23:23:22 UTC+8"  # type: ignore[arg-type]
    assert rental_text(ctx, Rental("idle")) == "空闲"  # type: ignore[arg-type]
    assert rental_text(ctx, Rental("unknown")) == "未知"  # type: ignore[arg-type]
