"""bm-hook configuration: TOML + BM_HOOK_* overrides, validation, mode."""

from pathlib import Path

import pytest

from boot_hooks.config import DEFAULT_PIPE, Deadlines, load_config
from boot_hooks.errors import ConfigError, ExitCode

NODE_ID = "fcf2cd8b99958606d260ca00c5ac00c88c242bcf8eb38e7cc3f29e9719a73f39"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "hook.toml"
    path.write_text(text)
    return str(path)


def test_full_direct_file(tmp_path):
    path = write(tmp_path, f"""
[node]
url = "http://192.168.1.159:5002"
[server]
node_id = "{NODE_ID}"
key_file = "/etc/bm-hook/server.key"
[deeplink]
sdk = "pipe"
channel_id = "SiChuanWangYu001"
code_length = 8
[deadlines]
node_s = 10
deeplink_s = 20.5
confirm_s = 3
call_s = 1
[state]
file = "/tmp/x"
""")
    config = load_config(path, {})
    assert config.mode == "direct"
    assert config.node_url == "http://192.168.1.159:5002"
    assert config.node_id == NODE_ID
    assert config.sdk_kind == "pipe" and config.sdk_path == DEFAULT_PIPE
    assert config.code_length == 8
    assert config.deadlines == Deadlines(node_s=10, deeplink_s=20.5, confirm_s=3, call_s=1)
    assert config.state_file == "/tmp/x"


def test_env_overrides_file(tmp_path):
    path = write(tmp_path, '[node]\nurl = "http://a:1"\n[server]\nkey_file = "/k"\n')
    config = load_config(path, {
        "BM_HOOK_NODE_URL": "http://b:2",
        "BM_HOOK_DEEPLINK_SDK": "unix:/run/dl.sock",
        "BM_HOOK_DEADLINES_NODE_S": "2.5",
        "BM_HOOK_DEEPLINK_CODE_LENGTH": "16",
        "UNRELATED": "x",
    })
    assert config.node_url == "http://b:2"
    assert config.sdk_kind == "unix" and config.sdk_path == "/run/dl.sock"
    assert config.deadlines.node_s == 2.5
    assert config.code_length == 16


def test_environment_alone_is_enough():
    config = load_config(None, {"BM_HOOK_AGENT_URL": "http://agent:8080",
                                "BM_HOOK_AGENT_TOKEN_KEY_FILE": "/t"})
    assert config.mode == "agent"
    assert config.sdk == "none"


@pytest.mark.parametrize(("text", "env", "needle"), [
    ("[nope]\nx = 1\n", {}, "unknown config section"),
    ('[node]\nport = 1\n', {}, "unknown key [node] port"),
    ('[node]\nurl = 5\n', {}, "must be a string"),
    ('[node]\nurl = "ftp://x"\n[server]\nkey_file="/k"\n', {}, "http:// or https://"),
    ('[server]\nkey_file="/k"\n', {}, "needs [node] url"),
    ('[node]\nurl = "http://x"\n', {}, "needs [server] key_file"),
    ('[agent]\nurl = "http://x"\n', {}, "needs [agent] token_key_file"),
    ('[node]\nurl="http://x"\n[server]\nkey_file="/k"\n[deeplink]\nsdk="tcp:1"\n', {}, "sdk must be"),
    ('[node]\nurl="http://x"\n[server]\nkey_file="/k"\n[deeplink]\nsdk="unix:"\n', {}, "sdk must be"),
    ('[node]\nurl="http://x"\n[server]\nkey_file="/k"\n[deeplink]\ncode_length=5\n', {}, "between 6 and 16"),
    ('[node]\nurl="http://x"\n[server]\nkey_file="/k"\n[deeplink]\ncode_length=17\n', {}, "between 6 and 16"),
    ('[node]\nurl="http://x"\n[server]\nkey_file="/k"\nnode_id="ABC"\n', {}, "node_id must be"),
    ('[node]\nurl="http://x"\n[server]\nkey_file="/k"\n[deadlines]\nnode_s=0\n', {}, "positive"),
    ('[node]\nurl="http://x"\n[server]\nkey_file="/k"\n[deadlines]\nnap_s=1\n', {}, "unknown key"),
    ('[node]\nurl="http://x"\n[server]\nkey_file="/k"\n', {"BM_HOOK_FOO": "1"}, "unknown environment"),
    ('[node]\nurl="http://x"\n[server]\nkey_file="/k"\n', {"BM_HOOK_DEADLINES_CALL_S": "soon"}, "number"),
    ("not = [toml", {}, "not valid UTF-8 TOML"),
])
def test_bad_config_is_a_config_error(tmp_path, text, env, needle):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env)
    assert needle in str(info.value)
    assert info.value.exit_code == ExitCode.CONFIG


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(str(tmp_path / "absent.toml"), {})


def test_utf8_bom_and_windows_paths_are_accepted(tmp_path):
    path = tmp_path / "hook.toml"
    text = ("[agent]\nurl = 'http://192.168.1.159:8090'\n"
            "token_key_file = 'C:\\ProgramData\\bm-hook\\hook-token.key'\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    config = load_config(str(path), {})
    assert config.token_key_file == r"C:\ProgramData\bm-hook\hook-token.key"


def test_seat_key_defaults_beside_the_state_file_and_can_be_set():
    env = {"BM_HOOK_AGENT_URL": "http://agent:8080", "BM_HOOK_AGENT_TOKEN_KEY_FILE": "/t",
           "BM_HOOK_STATE_FILE": "/persist/bm-hook/last-code"}
    assert load_config(None, env).seat_key_path == str(Path("/persist/bm-hook/seat.key"))
    env["BM_HOOK_AGENT_SEAT_KEY_FILE"] = "/other/seat.key"
    assert load_config(None, env).seat_key_path == "/other/seat.key"
