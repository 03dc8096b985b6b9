"""Secret wrapper, SecretBox sealing with key ids, key file creation and permission checks."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path

import pytest

from agent.errors import KeyFileInsecure, KeyFileMissing, SecretsError, UnsealFailed
from agent.secrets import MASK, Sealer, Secret, create_key_file, generate_key, key_id_of, load_keys


def test_secret_never_shows_itself() -> None:
    secret = Secret("hunter2")
    assert repr(secret) == MASK and str(secret) == MASK
    assert f"{secret}" == MASK and f"{secret!r}" == MASK and f"{secret:>20}" == MASK
    assert "hunter2" not in repr([secret, {"k": secret}])
    assert secret.reveal() == "hunter2"
    with pytest.raises(TypeError):
        json.dumps({"password": secret})
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        hash(secret)


def test_secret_equality_and_truth() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert not Secret("") and Secret("x")


def test_seal_round_trip_and_format() -> None:
    sealer = Sealer(generate_key())
    sealed = sealer.seal(Secret("pässword 密码"))
    assert sealed.startswith(f"s1:{sealer.key_id}:")
    assert "pässword" not in sealed
    assert sealer.unseal(sealed).reveal() == "pässword 密码"
    assert sealer.seal("x") != sealer.seal("x")  # fresh nonce every time
    assert sealer.key_id not in repr(Secret("x")) and "key" not in MASK


def test_unseal_refuses_tampering_unknown_keys_and_garbage() -> None:
    sealer = Sealer(generate_key())
    sealed = sealer.seal("secret")
    head, body = sealed.rsplit(":", 1)
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    with pytest.raises(UnsealFailed, match="authentication"):
        sealer.unseal(f"{head}:{flipped}")
    with pytest.raises(UnsealFailed, match="unknown key id"):
        Sealer(generate_key()).unseal(sealed)
    for garbage in ("", "plain text", "s2:abcd:xx", "s1:abcd:***"):
        with pytest.raises(UnsealFailed):
            sealer.unseal(garbage)


def test_key_rotation_keeps_old_values_readable() -> None:
    old, new = generate_key(), generate_key()
    sealed_old = Sealer(old).seal("v")
    rotated = Sealer(new, old)
    assert rotated.key_id == key_id_of(new)
    assert rotated.unseal(sealed_old).reveal() == "v"
    assert rotated.needs_reseal(sealed_old)
    assert not rotated.needs_reseal(rotated.seal("v"))


def test_create_key_file_is_0600_and_loads(tmp_path: Path) -> None:
    path = create_key_file(tmp_path / "sub" / "secrets.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    keys = load_keys(path)
    assert len(keys) == 1 and len(keys[0]) == 32
    sealer = Sealer.from_key_file(path)
    assert sealer.unseal(sealer.seal("x")).reveal() == "x"
    assert keys[0].hex() not in repr(sealer)


def test_create_key_file_never_overwrites(tmp_path: Path) -> None:
    path = create_key_file(tmp_path / "secrets.key")
    before = path.read_text()
    with pytest.raises(SecretsError, match="refusing to overwrite"):
        create_key_file(path)
    assert create_key_file(path, exist_ok=True) == path
    assert path.read_text() == before


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o602])
def test_group_or_world_accessible_key_file_is_refused(tmp_path: Path, mode: int) -> None:
    path = create_key_file(tmp_path / "secrets.key")
    os.chmod(path, mode)
    with pytest.raises(KeyFileInsecure) as info:
        load_keys(path)
    assert f"{mode:04o}" in str(info.value) and "chmod 600" in str(info.value)
    assert str(path) in str(info.value)


def test_missing_and_malformed_key_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileMissing, match="bm-agent init"):
        load_keys(tmp_path / "absent.key")
    bad = tmp_path / "bad.key"
    fd = os.open(bad, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"# comment only\n")
    os.close(fd)
    with pytest.raises(SecretsError, match="no key"):
        load_keys(bad)
    bad.write_text("abcd\n")
    with pytest.raises(SecretsError, match="line 1"):
        load_keys(bad)
    with pytest.raises(SecretsError, match="regular file"):
        load_keys(tmp_path)


def test_extra_key_lines_are_older_keys(tmp_path: Path) -> None:
    old = generate_key()
    path = create_key_file(tmp_path / "secrets.key")
    with path.open("a") as handle:
        handle.write(old.hex() + "\n")
    sealer = Sealer.from_key_file(path)
    assert sealer.unseal(Sealer(old).seal("legacy")).reveal() == "legacy"
    assert sealer.key_id == key_id_of(load_keys(path)[0])
