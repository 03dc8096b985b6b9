"""Fresh verification codes: DeepLink's rule, randomness, never the last one."""

import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boot_hooks.codes import LastCodeStore, is_valid_code, make_code


@settings(max_examples=200)
@given(st.integers(min_value=6, max_value=16))
def test_codes_follow_deeplinks_rule(length):
    code = make_code(length)
    assert len(code) == length
    assert is_valid_code(code)
    assert any(c.isdigit() for c in code) and any(c.isalpha() for c in code)


def test_codes_are_not_repeated():
    codes = {make_code(12) for _ in range(2000)}
    assert len(codes) == 2000


@pytest.mark.parametrize("length", [5, 17, 0])
def test_length_outside_the_rule_is_refused(length):
    with pytest.raises(ValueError):
        make_code(length)


@pytest.mark.parametrize(("code", "ok"), [
    ("abc123", True), ("A1b2C3d4E5f6G7h8", True), ("abc12", False),
    ("A1b2C3d4E5f6G7h8i", False), ("abc 123", False), ("abc-123", False), ("密码密码密码", False),
])
def test_validity_rule(code, ok):
    assert is_valid_code(code) is ok


def test_avoided_codes_are_never_made(monkeypatch):
    # Force the generator to propose the avoided code first, then another.
    proposals = iter("aaaa11" + "bbbb22")
    monkeypatch.setattr("boot_hooks.codes.secrets.choice", lambda _alphabet: next(proposals))
    assert make_code(6, avoid=["aaaa11"]) == "bbbb22"


def test_last_code_store_round_trip(tmp_path):
    store = LastCodeStore(str(tmp_path / "state" / "last-code"))
    assert not store.matches("abc123")
    store.remember("abc123")
    assert store.matches("abc123")
    assert not store.matches("abc124")
    text = (tmp_path / "state" / "last-code").read_text()
    assert "abc123" not in text
    assert stat.S_IMODE(os.stat(tmp_path / "state" / "last-code").st_mode) == 0o600


def test_last_code_is_never_made_again(monkeypatch, tmp_path):
    store = LastCodeStore(str(tmp_path / "last"))
    store.remember("aaaa11")
    proposals = iter("aaaa11" + "cccc33")
    monkeypatch.setattr("boot_hooks.codes.secrets.choice", lambda _alphabet: next(proposals))
    assert make_code(6, store=store) == "cccc33"


def test_unwritable_store_is_not_fatal(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = LastCodeStore(str(blocker / "sub" / "last"))
    store.remember("abc123")
    assert "could not record" in caplog.text
    assert "abc123" not in caplog.text
    assert not store.matches("abc123")


def test_corrupt_store_matches_nothing(tmp_path):
    path = tmp_path / "last"
    path.write_text("garbage")
    assert not LastCodeStore(str(path)).matches("abc123")
