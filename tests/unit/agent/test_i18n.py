"""Catalogues: same keys and placeholders in zh_CN and en, every error code and domain word
covered; translate() language resolution and fallbacks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import agent.i18n as i18n
from agent.errors import AgentError, RateLimited, ServerNotFound, all_error_classes
from agent.i18n import catalogue, placeholders, resolve_lang, translate, translate_error
from agent.models import EventKind, OutboxState, RegistrationState, Role, Verdict
from agent.monitor import crosscheck
from agent.registry import inventory

LOCALES = Path(i18n.__file__).parent / "locales"


def test_catalogues_have_the_same_keys_and_placeholders() -> None:
    zh, en = catalogue("zh_CN"), catalogue("en")
    assert set(zh) == set(en)
    for key in en:
        assert placeholders(zh[key]) == placeholders(en[key]), key
        assert zh[key].strip() and en[key].strip(), key


def test_catalogue_files_are_valid_utf8_json_objects_of_strings() -> None:
    for lang in i18n.LANGS:
        data = json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in data.items())


def test_every_error_code_is_translated_with_its_own_placeholders() -> None:
    codes = [cls.code for cls in all_error_classes()]
    assert len(codes) == len(set(codes)), "error codes must be unique"
    for cls in all_error_classes():
        en = catalogue("en")[cls.code]
        assert en == cls.template, cls.__name__
        assert placeholders(cls.template) <= set(cls.fields), cls.__name__
        assert re.fullmatch(r"[a-z][a-z0-9_]*", cls.code)


@pytest.mark.parametrize(("prefix", "values"), [
    ("verdict", [v.value for v in Verdict]),
    ("verdict_help", [v.value for v in Verdict]),
    ("role", [r.value for r in Role]),
    ("registration", [s.value for s in RegistrationState]),
    ("event_kind", [k.value for k in EventKind]),
    ("outbox", [s.value for s in OutboxState]),
    ("power", ["on", "off"]),
    ("action", ["power_on", "power_off", "power_soft", "power_reset", "bootdev"]),
    ("bootdev", ["none", "pxe", "cdrom", "disk", "bios"]),
    ("result", ["verified", "unverified"]),
])
def test_domain_words_are_covered(prefix: str, values: list[str]) -> None:
    for value in values:
        assert f"{prefix}.{value}" in catalogue("en"), f"{prefix}.{value}"


def test_crosscheck_reasons_are_covered() -> None:
    source = Path(crosscheck.__file__).read_text(encoding="utf-8")
    literals = set(re.findall(r'"([a-z_]+)"', source.split("def judge", 1)[1]))
    reasons = {r for r in literals if f"reason.{r}" in catalogue("en")}
    expected = {"action_in_progress", "power_differs_from_request", "power_differs_from_dbc",
                "boot_device_differs", "unconfirmed", "dbc_ipmitool_failed", "idle_power_off"}
    assert expected <= reasons
    for error_class in crosscheck._ERROR_VERDICTS:
        assert f"reason.ipmi_{error_class}" in catalogue("en")


def test_inventory_row_codes_are_covered() -> None:
    source = Path(inventory.__file__).read_text(encoding="utf-8")
    codes = set(re.findall(r'_RowInvalid\("?[a-z_"\w]*"?,\s*"([a-z_]+)"', source))
    codes |= set(re.findall(r'RowError\([^)]*?"(?:header|file|uuid)",\s*"([a-z_]+)"', source))
    assert {"bad_uuid", "required", "unsafe_characters", "duplicate_uuid"} <= codes
    for code in codes:
        assert f"import.{code}" in catalogue("en"), code


@pytest.mark.parametrize(("explicit", "env", "expected"), [
    ("en", {"LANG": "zh_CN.UTF-8"}, "en"),
    ("zh", {}, "zh_CN"),
    ("zh-CN", {}, "zh_CN"),
    ("EN_us", {}, "en"),
    (None, {"LANG": "en_US.UTF-8"}, "en"),
    (None, {"LANG": "zh_TW.UTF-8"}, "zh_CN"),
    (None, {"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh_CN"),
    (None, {"LC_ALL": "", "LC_MESSAGES": "en_GB", "LANG": "zh_CN"}, "en"),
    (None, {"LANG": "C.UTF-8"}, "zh_CN"),
    (None, {}, "zh_CN"),
    ("fr", {"LANG": "en_US"}, "en"),
])
def test_resolve_lang(explicit: str | None, env: dict[str, str], expected: str) -> None:
    assert resolve_lang(explicit, environ=env) == expected


def test_resolve_lang_default_is_configurable() -> None:
    assert resolve_lang(None, environ={"LANG": "C"}, default="en") == "en"


def test_translate_fills_placeholders_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    assert translate("server_not_found", "en", ident="gpu-7") == "server gpu-7 not found"
    assert translate("server_not_found", "zh_CN", ident="gpu-7") == "未找到服务器 gpu-7"
    assert translate("verdict.mismatch", "zh_CN") == "不一致"
    assert translate("no.such.key", "en") == "no.such.key"
    assert translate("rate_limited", "en") == "too many failed attempts; retry in {retry_after_s} s"
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    assert translate("verdict.ok") == "ok"
    fake = {"zh_CN": {"only.zh": "中"}, "en": {"only.en": "english"}}
    monkeypatch.setattr(i18n, "catalogue", lambda lang: fake[lang])
    assert translate("only.en", "zh_CN") == "english"
    assert translate("only.zh", "zh_CN") == "中"


def test_translate_error_uses_code_and_params() -> None:
    assert translate_error(RateLimited(retry_after_s=42), "en").endswith("retry in 42 s")
    assert "42" in translate_error(RateLimited(retry_after_s=42), "zh_CN")
    error: AgentError = ServerNotFound("gpu-9")
    assert translate_error(error, "zh_CN") == "未找到服务器 gpu-9"

