"""Key files: 64-hex seeds, node.dat-style lines, refused when others can read them."""

import os
import stat

import pytest

from boot_hooks.errors import ConfigError
from boot_hooks.keys import load_or_create_seat_key, read_seed_file, restrict_windows_acl

SEED = "4c2e7133834d6d7dd35088beda5556215f6f5b15d2cd3c3153f117aaeec2c28b"


def key_file(tmp_path, text, mode=0o600):
    path = tmp_path / "k"
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


@pytest.mark.parametrize("text", [
    SEED, SEED + "\n", "  " + SEED.upper() + "  \n", "0x" + SEED,
    f"node_id=abc\nnode_private_key={SEED}\n",
])
def test_accepted_forms(tmp_path, text):
    assert read_seed_file(key_file(tmp_path, text), "[server] key_file").hex == SEED


def test_named_field_for_tokens(tmp_path):
    path = key_file(tmp_path, f"hook_token={SEED}\n")
    assert read_seed_file(path, "[agent] token_key_file", "hook_token").hex == SEED


def test_repr_hides_the_seed(tmp_path):
    seed = read_seed_file(key_file(tmp_path, SEED), "k")
    assert SEED not in repr(seed)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_loose_permissions_are_refused(tmp_path, mode):
    with pytest.raises(ConfigError, match="readable by others"):
        read_seed_file(key_file(tmp_path, SEED, mode), "[server] key_file")


@pytest.mark.parametrize("text", ["", "abc", SEED[:-1], "node_id=" + SEED, SEED + "ff"])
def test_no_key_is_a_config_error_without_echoing_the_file(tmp_path, text):
    with pytest.raises(ConfigError) as info:
        read_seed_file(key_file(tmp_path, text), "[server] key_file")
    assert "holds no 64-hex" in str(info.value)
    if text:
        assert text not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_seed_file(str(tmp_path / "absent"), "[server] key_file")


def test_seat_key_is_made_once_owner_only_and_reused(tmp_path):
    path = tmp_path / "per-machine" / "bm-hook" / "seat.key"
    seed, created = load_or_create_seat_key(str(path))
    assert created and len(seed.hex) == 64
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    again, created_again = load_or_create_seat_key(str(path))
    assert (again.hex, created_again) == (seed.hex, False)
    assert seed.hex not in repr(seed)


def test_seat_key_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "seat.key"
    load_or_create_seat_key(str(path))
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_seat_key(str(path))


def test_seat_key_in_an_unwritable_place_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="seat_key_file"):
        load_or_create_seat_key(str(blocker / "seat.key"))


def test_windows_acl_goes_to_system_and_administrators_by_sid(tmp_path):
    path = tmp_path / "seat.key"
    path.write_text("x")
    calls = []
    restrict_windows_acl(str(path), run=lambda command: calls.append(command) or 0)
    assert calls == [["icacls", str(path), "/inheritance:r", "/grant:r", "*S-1-5-18:F",
                      "/grant:r", "*S-1-5-32-544:F"]]
    assert path.exists()


def test_windows_acl_failure_removes_the_key(tmp_path):
    path = tmp_path / "seat.key"
    path.write_text("x")
    with pytest.raises(ConfigError, match="icacls exit 5"):
        restrict_windows_acl(str(path), run=lambda command: 5)
    assert not path.exists()
