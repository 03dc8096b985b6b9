"""``bm-agent hook-token new``: a pair the hook and the agent both read, never overwritten."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import nacl.signing
import pytest

from agent.cli.context import ExitCode
from agent.cli.entry import run
from agent.hook.signing import load_public_key
from boot_hooks.keys import read_seed_file


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BM_AGENT_") or name in ("LC_ALL", "LC_MESSAGES", "LANG"):
            monkeypatch.delenv(name)


def _new(tmp_path: Path, *extra: str) -> int:
    return run(["--config", str(tmp_path / "agent.toml"), "--lang", "en", "hook-token", "new",
                *extra])


def test_new_writes_a_private_key_the_hook_reads_and_a_public_key_the_agent_reads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    folder = tmp_path / "tokens"
    assert _new(tmp_path, "--dir", str(folder)) == ExitCode.OK
    private, public = folder / "hook-token.key", folder / "hook-token.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    # bm-hook reads the private file (it refuses loose permissions, so 0600 matters too).
    seed = read_seed_file(str(private), "[agent] token_key_file", "hook_token")
    derived = bytes(nacl.signing.SigningKey(bytes.fromhex(seed.hex)).verify_key)
    assert load_public_key(public) == derived
    # Exactly one key line each, named as install.ps1's Copy-Key tells them apart.
    assert [ln for ln in private.read_text().splitlines() if "=" in ln and not ln.startswith("#")] \
        == [f"hook_token={seed.hex}"]
    assert f"hook_token_public={derived.hex()}" in public.read_text().splitlines()
    out = capsys.readouterr().out
    fingerprint = hashlib.sha256(derived).hexdigest()[:16]
    assert fingerprint in out
    assert f'token_public_key = "{public}"' in out
    assert seed.hex not in out  # the secret is never printed


def test_new_refuses_to_overwrite_an_existing_token(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]):
    assert _new(tmp_path) == ExitCode.OK  # default: beside the config file
    private = tmp_path / "hook-token.key"
    before = private.read_text(), (tmp_path / "hook-token.pub").read_text()
    capsys.readouterr()
    assert _new(tmp_path) == ExitCode.CONFLICT
    assert (private.read_text(), (tmp_path / "hook-token.pub").read_text()) == before
    err = capsys.readouterr().err
    assert "hook-token.key exists: not overwritten" in err and "Traceback" not in err


def test_new_refuses_a_planted_symlink_and_writes_nothing(tmp_path: Path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (tmp_path / "hook-token.pub").symlink_to(victim)
    assert _new(tmp_path) == ExitCode.CONFLICT
    assert victim.read_text() == "keep me\n"
    assert not (tmp_path / "hook-token.key").exists()


def test_new_into_an_unwritable_place_is_one_line_exit_1(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]):
    (tmp_path / "file").write_text("")
    assert _new(tmp_path, "--dir", str(tmp_path / "file" / "sub")) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err


def test_new_json_and_chinese(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert run(["--config", str(tmp_path / "agent.toml"), "--json", "hook-token", "new",
                "--dir", str(tmp_path / "a")]) == ExitCode.OK
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True
    assert load_public_key(Path(document["public_key_file"])).hex() == document["public_key"]
    seed = read_seed_file(document["token_key_file"], "[agent] token_key_file", "hook_token")
    assert seed.hex not in json.dumps(document)  # the secret is never printed
    assert run(["--config", str(tmp_path / "agent.toml"), "--lang", "zh_CN", "hook-token",
                "new", "--dir", str(tmp_path / "b")]) == ExitCode.OK
    assert "指纹" in capsys.readouterr().out
