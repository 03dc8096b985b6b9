"""[state] dir: persistent per-machine state, or memory only (diskless PCs), never fatal."""

import json
import logging
import os
import stat

import pytest

from boot_hooks.codes import LastCodeStore, MemoryCodeStore, make_code
from boot_hooks.config import load_config
from boot_hooks.errors import ConfigError
from boot_hooks.state import MEMORY_ONLY, open_state

DIRECT = {"BM_HOOK_NODE_URL": "http://127.0.0.1:1", "BM_HOOK_SERVER_KEY_FILE": "/k"}
AGENT = {"BM_HOOK_AGENT_URL": "http://127.0.0.1:1", "BM_HOOK_AGENT_TOKEN_KEY_FILE": "/t"}
STATUS = {"result": "failed", "exit_code": 3, "error": "node_unreachable",
          "message": "node down", "attempt": 2, "at": "2026-12-03T18:00:00Z"}


def config(env, **extra):
    return load_config(None, {**env, **extra})


def forced_proposals(monkeypatch, *codes):
    proposals = iter("".join(codes))
    monkeypatch.setattr("boot_hooks.codes.secrets.choice", lambda _alphabet: next(proposals))


def test_no_state_dir_is_memory_only_with_one_clear_line(caplog):
    with caplog.at_level(logging.INFO, logger="boot_hooks.state"):
        state = open_state(config(DIRECT))
    assert (state.persistent, state.where, state.log_path) == (False, "memory", None)
    assert [r.getMessage() for r in caplog.records] == [MEMORY_ONLY]
    assert caplog.records[0].levelno == logging.INFO
    assert isinstance(state.codes, MemoryCodeStore)


def test_memory_state_still_avoids_the_last_code_within_the_process(monkeypatch):
    state = open_state(config(DIRECT))
    assert not state.last_code_matches("aaaa11")
    state.remember_code("aaaa11")
    assert state.last_code_matches("aaaa11") and not state.last_code_matches("aaaa12")
    forced_proposals(monkeypatch, "aaaa11", "cccc33")
    assert make_code(6, store=state.codes) == "cccc33"
    assert "aaaa11" not in repr(vars(state.codes))


def test_memory_state_keeps_the_status():
    state = open_state(config(DIRECT))
    assert state.read_status() is None
    state.write_status(STATUS)
    assert state.read_status() == STATUS


def test_agent_mode_without_a_place_for_the_seat_key_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        open_state(config(AGENT))
    message = str(info.value)
    assert "set [state] dir" in message and "BM_HOOK_STATE_DIR" in message
    assert "[agent] seat_key_file" in message


def test_agent_mode_with_its_own_seat_key_file_may_be_memory_only(tmp_path):
    state = open_state(config(AGENT, BM_HOOK_AGENT_SEAT_KEY_FILE=str(tmp_path / "s.key")))
    assert not state.persistent
    assert state.seat_key_path(config(AGENT, BM_HOOK_AGENT_SEAT_KEY_FILE="/x")) == "/x"


def test_a_configured_dir_is_made_owner_only_and_used(tmp_path, caplog):
    directory = tmp_path / "bm-hook"
    with caplog.at_level(logging.INFO, logger="boot_hooks.state"):
        state = open_state(config(DIRECT, BM_HOOK_STATE_DIR=str(directory)))
    assert state.persistent and state.where == str(directory)
    assert state.log_path == str(directory / "bm-hook.log")
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert isinstance(state.codes, LastCodeStore)
    assert state.codes.path == directory / "last-code"
    assert MEMORY_ONLY not in caplog.text
    assert [p.name for p in directory.iterdir()] == []  # the write probe is gone


def test_the_last_code_persists_across_two_runs(tmp_path, monkeypatch):
    env = config(DIRECT, BM_HOOK_STATE_DIR=str(tmp_path / "bm-hook"))
    open_state(env).remember_code("aaaa11")
    second_run = open_state(env)
    assert second_run.last_code_matches("aaaa11")
    forced_proposals(monkeypatch, "aaaa11", "cccc33")
    assert make_code(6, store=second_run.codes) == "cccc33"
    assert "aaaa11" not in (tmp_path / "bm-hook" / "last-code").read_text()


def test_status_json_is_written_atomically_owner_only(tmp_path):
    state = open_state(config(DIRECT, BM_HOOK_STATE_DIR=str(tmp_path)))
    state.write_status(STATUS)
    path = tmp_path / "status.json"
    assert json.loads(path.read_text()) == STATUS
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert open_state(config(DIRECT, BM_HOOK_STATE_DIR=str(tmp_path))).read_status() == STATUS
    assert not (tmp_path / "status.json.tmp").exists()


def test_a_status_that_cannot_be_written_is_not_fatal(tmp_path, caplog):
    state = open_state(config(DIRECT, BM_HOOK_STATE_DIR=str(tmp_path)))
    (tmp_path / "status.json").mkdir()  # os.replace onto a directory fails
    state.write_status(STATUS)
    assert "could not write" in caplog.text
    assert state.read_status() == STATUS


def test_a_dir_under_a_file_warns_and_falls_back_to_memory(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    directory = blocker / "bm-hook"
    with caplog.at_level(logging.INFO, logger="boot_hooks.state"):
        state = open_state(config(DIRECT, BM_HOOK_STATE_DIR=str(directory)))
    assert not state.persistent and state.log_path is None
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert f"[state] dir {directory} is not usable (cannot create it" in record.getMessage()
    assert "kept in memory for this boot only" in record.getMessage()
    state.remember_code("aaaa11")
    assert state.last_code_matches("aaaa11")


def test_an_unmounted_disk_is_not_made_up_by_creating_parents(tmp_path):
    directory = tmp_path / "E-drive" / "bm-hook"  # E-drive: the per-machine disk, absent
    state = open_state(config(DIRECT, BM_HOOK_STATE_DIR=str(directory)))
    assert not state.persistent
    assert not (tmp_path / "E-drive").exists()


def test_a_dir_that_is_a_file_is_not_usable(tmp_path, caplog):
    (tmp_path / "bm-hook").write_text("x")
    state = open_state(config(DIRECT, BM_HOOK_STATE_DIR=str(tmp_path / "bm-hook")))
    assert not state.persistent
    assert "it is not a directory" in caplog.text


def test_the_seat_key_defaults_inside_the_dir(tmp_path):
    settings = config(AGENT, BM_HOOK_STATE_DIR=str(tmp_path / "bm-hook"))
    assert settings.seat_key_path == str(tmp_path / "bm-hook" / "seat.key")
    assert open_state(settings).seat_key_path(settings) == str(tmp_path / "bm-hook" / "seat.key")


def test_the_seat_key_in_an_unusable_dir_is_a_config_error_naming_it(tmp_path):
    directory = tmp_path / "absent-disk" / "bm-hook"
    settings = config(AGENT, BM_HOOK_STATE_DIR=str(directory))
    state = open_state(settings)
    with pytest.raises(ConfigError) as info:
        state.seat_key_path(settings)
    assert f"[state] dir {directory} is not usable (cannot create it" in str(info.value)
    assert "mount the per-machine disk" in str(info.value)


def test_the_legacy_state_file_still_works_its_parent_acting_as_the_dir(tmp_path):
    settings = config(AGENT, BM_HOOK_STATE_FILE=str(tmp_path / "persist" / "last.hash"))
    assert settings.state_dir_path == str(tmp_path / "persist")
    assert settings.seat_key_path == str(tmp_path / "persist" / "seat.key")
    state = open_state(settings)
    assert state.persistent and state.codes.path == tmp_path / "persist" / "last.hash"
    assert state.log_path == str(tmp_path / "persist" / "bm-hook.log")


def test_a_new_dir_is_given_to_system_and_administrators_an_existing_one_is_left(tmp_path):
    calls = []
    settings = config(DIRECT, BM_HOOK_STATE_DIR=str(tmp_path / "bm-hook"))
    open_state(settings, restrict_dir=lambda path: calls.append(path) or "")
    open_state(settings, restrict_dir=lambda path: calls.append(path) or "")
    assert calls == [str(tmp_path / "bm-hook")]


def test_a_failed_windows_restriction_is_a_warning(tmp_path, caplog):
    settings = config(DIRECT, BM_HOOK_STATE_DIR=str(tmp_path / "bm-hook"))
    state = open_state(settings, restrict_dir=lambda path: "exit 5")
    assert state.persistent
    assert "could not restrict [state] dir" in caplog.text and "icacls exit 5" in caplog.text


def test_the_windows_dir_acl_is_inheritable_and_by_sid(tmp_path):
    from boot_hooks.keys import restrict_windows_dir_acl

    calls = []
    assert restrict_windows_dir_acl("D", run=lambda command: calls.append(command) or 0) == ""
    assert calls == [["icacls", "D", "/inheritance:r", "/grant:r", "*S-1-5-18:(OI)(CI)F",
                      "/grant:r", "*S-1-5-32-544:(OI)(CI)F"]]
    assert restrict_windows_dir_acl("D", run=lambda command: 5) == "exit 5"


@pytest.mark.parametrize("directory", ["state", "bm-hook/state", r"bm-hook\state", "E:bm-hook"])
def test_a_relative_state_dir_is_refused(directory):
    with pytest.raises(ConfigError, match=r"\[state\] dir must be an absolute path"):
        config(DIRECT, BM_HOOK_STATE_DIR=directory)


@pytest.mark.parametrize("directory", ["/var/lib/bm-hook", r"E:\bm-hook", "E:/bm-hook"])
def test_absolute_state_dirs_are_accepted(directory):
    assert config(DIRECT, BM_HOOK_STATE_DIR=directory).state_dir_path == directory


def test_the_state_dir_comes_from_the_toml_file(tmp_path):
    path = tmp_path / "hook.toml"
    path.write_text("[agent]\nurl = 'http://a:1'\ntoken_key_file = '/t'\n"
                    "[state]\ndir = 'E:\\bm-hook'\n")
    settings = load_config(str(path), {})
    assert settings.state_dir_path == r"E:\bm-hook"
    assert settings.last_code_path.endswith("last-code")


def test_a_run_in_agent_mode_without_a_seat_key_place_exits_with_the_config_code(tmp_path,
                                                                                monkeypatch):
    from boot_hooks.__main__ import main
    from boot_hooks.errors import ExitCode

    for name in list(os.environ):
        if name.startswith("BM_HOOK_"):
            monkeypatch.delenv(name)
    path = tmp_path / "hook.toml"
    path.write_text("[agent]\nurl = 'http://127.0.0.1:9'\ntoken_key_file = '/t'\n")
    assert main(["--config", str(path)]) == ExitCode.CONFIG
