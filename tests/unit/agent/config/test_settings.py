"""Settings from TOML + BM_AGENT_* environment, relative paths, errors, default config, node.dat."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from agent.config import (
    DEFAULT_CONFIG_PATH,
    KEYS,
    Settings,
    env_name,
    load_settings,
    read_node_dat,
    render_default_config,
    resolve_config_path,
)
from agent.errors import ConfigError, NodeDatError
from baremetal.signing import new_node_keypair

MINIMAL = '[node]\nnode_dat = "dat/node.dat"\n'


def write(tmp_path: Path, text: str, name: str = "agent.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_file_gets_documented_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL), environ={})
    assert settings.node.url == "http://127.0.0.1:5002"
    assert settings.node.client_url is None
    assert settings.check.interval_s == 60.0
    assert settings.check.pool_size == 32
    assert settings.check.deadline_s == 3.0
    assert settings.check.mismatch_confirmations == 2
    assert settings.check.dbc_path_probe is False
    assert settings.ui.default_lang == "zh_CN"
    assert settings.api.host == "127.0.0.1" and settings.api.port == 8700
    assert settings.hook.token_public_key is None


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    path = write(conf_dir, MINIMAL + '[store]\npath = "state/a.db"\n[secrets]\n'
                           'key_file = "/abs/key"\n[hook]\ntoken_public_key = "hook.pub"\n')
    settings = load_settings(path, environ={})
    assert settings.node.node_dat == conf_dir / "dat" / "node.dat"
    assert settings.store.path == conf_dir / "state" / "a.db"
    assert settings.secrets.key_file == Path("/abs/key")
    assert settings.hook.token_public_key == conf_dir / "hook.pub"
    assert settings.config_file == path


def test_default_paths_also_follow_the_config_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL), environ={})
    assert settings.store.path == tmp_path / "agent.db"
    assert settings.secrets.key_file == tmp_path / "secrets.key"


def test_environment_overrides_file_with_typed_values(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[check]\ninterval_s = 60\n")
    env = {"BM_AGENT_NODE_URL": "http://127.0.0.1:6002/", "BM_AGENT_CHECK_INTERVAL_S": "15",
           "BM_AGENT_CHECK_DBC_PATH_PROBE": "yes", "BM_AGENT_NODE_CLIENT_URL": "",
           "BM_AGENT_STORE_PATH": "other.db", "BM_AGENT_UI_DEFAULT_LANG": "EN",
           "BM_AGENT_CONFIG": "/ignored.toml", "BM_AGENT_UNRELATED": "x", "PATH": "/bin"}
    settings = load_settings(path, environ=env)
    assert settings.node.url == "http://127.0.0.1:6002"
    assert settings.check.interval_s == 15.0
    assert settings.check.dbc_path_probe is True
    assert settings.node.client_url is None
    assert settings.store.path == tmp_path / "other.db"
    assert settings.ui.default_lang == "en"


def test_env_naming_rule_is_section_key_upper_cased() -> None:
    assert env_name("check", "interval_s") == "BM_AGENT_CHECK_INTERVAL_S"
    assert env_name("node", "url") == "BM_AGENT_NODE_URL"
    assert len({env_name(k.section, k.name) for k in KEYS}) == len(KEYS)


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL), environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.check.interval_s = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.node = settings.node  # type: ignore[misc]


def test_every_key_has_a_settings_field() -> None:
    sections = {f.name: f.type for f in dataclasses.fields(Settings)}
    for key in KEYS:
        assert key.section in sections
    names = {(k.section, k.name) for k in KEYS}
    assert ("node", "url") in names and ("hook", "token_public_key") in names


@pytest.mark.parametrize(("text", "env", "key", "where"), [
    ("[check]\ninterval_s = \"fast\"\n", {}, "check.interval_s", "agent.toml"),
    ("[check]\ninterval_s = 0\n", {}, "check.interval_s", "agent.toml"),
    ("[check]\npool_size = 1.5\n", {}, "check.pool_size", "agent.toml"),
    ("[check]\ndbc_path_probe = \"true\"\n", {}, "check.dbc_path_probe", "agent.toml"),
    ("[check]\nintervall_s = 5\n", {}, "check.intervall_s", "agent.toml"),
    ("[chek]\ninterval_s = 5\n", {}, "chek", "agent.toml"),
    ("url = \"ftp://x\"\n", {}, "node.url", "agent.toml"),  # still in [node]
    ("[api]\nlisten = \"127.0.0.1\"\n", {}, "api.listen", "agent.toml"),
    ("[api]\nlisten = \"127.0.0.1:70000\"\n", {}, "api.listen", "agent.toml"),
    ("[log]\nlevel = \"LOUD\"\n", {}, "log.level", "agent.toml"),
    ("[check]\njitter_s = 90\n", {}, "check.jitter_s", "agent.toml"),
    ("[check]\ndeadline_s = 60\n", {}, "check.deadline_s", "agent.toml"),
    ("", {"BM_AGENT_CHECK_POOL_SIZE": "many"}, "check.pool_size", "BM_AGENT_CHECK_POOL_SIZE"),
    ("", {"BM_AGENT_CHECK_DBC_PATH_PROBE": "maybe"}, "check.dbc_path_probe",
     "BM_AGENT_CHECK_DBC_PATH_PROBE"),
    ("", {"BM_AGENT_CHECK_INTERVALL_S": "5"}, "BM_AGENT_CHECK_INTERVALL_S", "environment"),
])
def test_errors_name_key_file_and_expectation(tmp_path: Path, text: str, env: dict[str, str],
                                              key: str, where: str) -> None:
    path = write(tmp_path, MINIMAL + text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=env)
    error = info.value
    assert error.key == key
    assert where in error.file
    assert error.expected
    assert key in str(error) and "expected" in str(error)


def test_missing_required_key_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "[check]\ninterval_s = 30\n"), environ={})
    assert info.value.key == "node.node_dat" and info.value.problem == "missing"
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.toml", environ={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[node\n"), environ={})


def test_no_file_means_defaults_plus_environment(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, environ={"BM_AGENT_NODE_NODE_DAT": "n.dat"})
    assert settings.node.node_dat == tmp_path / "n.dat"
    assert settings.config_file is None


def test_resolve_config_path_precedence() -> None:
    assert resolve_config_path("a.toml", {"BM_AGENT_CONFIG": "b.toml"}) == Path("a.toml")
    assert resolve_config_path(None, {"BM_AGENT_CONFIG": "b.toml"}) == Path("b.toml")
    assert resolve_config_path(None, {}) == DEFAULT_CONFIG_PATH


def test_ipv6_listen(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL + '[api]\nlisten = "[::1]:9000"\n'),
                             environ={})
    assert (settings.api.host, settings.api.port) == ("::1", 9000)


def test_rendered_default_config_documents_every_key_and_loads(tmp_path: Path) -> None:
    text = render_default_config({"node.node_dat": "/opt/dbc/dat/node.dat",
                                  "store.path": "/var/lib/bm-agent/agent.db"})
    parsed = tomllib.loads(text)
    for key in KEYS:
        assert env_name(key.section, key.name) in text
        assert f"[{key.section}]" in text
    assert parsed["node"]["node_dat"] == "/opt/dbc/dat/node.dat"
    assert "client_url" not in parsed["node"]  # optional and unset: shown commented out
    assert "# client_url = " in text
    settings = load_settings(write(tmp_path, text), environ={})
    assert settings.store.path == Path("/var/lib/bm-agent/agent.db")
    assert settings.check.interval_s == 60.0


def test_rendered_config_without_required_values_says_so(tmp_path: Path) -> None:
    text = render_default_config()
    assert "# node_dat = " in text and "required" in text
    with pytest.raises(ConfigError, match="node_dat"):
        load_settings(write(tmp_path, text), environ={})
    with pytest.raises(ValueError, match="unknown"):
        render_default_config({"check.nope": 1})


def test_rendered_strings_are_escaped(tmp_path: Path) -> None:
    odd = 'C:\\dbc\\"node".dat'
    text = render_default_config({"node.node_dat": odd})
    assert tomllib.loads(text)["node"]["node_dat"] == odd


def write_dat(tmp_path: Path, node_id: str, key: str, extra: str = "") -> Path:
    path = tmp_path / "node.dat"
    path.write_text(f"{extra}node_id={node_id}\nnode_private_key={key}\n", encoding="utf-8")
    return path


def test_read_node_dat_checks_derivation_and_hides_key(tmp_path: Path) -> None:
    pair = new_node_keypair()
    manager = read_node_dat(write_dat(tmp_path, pair.node_id, pair.private_key,
                                      extra="# written by the node\n"))
    node_id, private_key = manager
    assert node_id == pair.node_id
    assert private_key.reveal() == pair.private_key
    assert pair.private_key not in repr(manager) and pair.private_key not in str(manager)


def test_read_node_dat_published_vector(tmp_path: Path) -> None:
    # Substrate dev key //Bob (docs/protocol.md §4.1, §4.3): seed 398f0c28… -> 8eaf0415…
    seed = "398f0c28f98885e046333d4a41c19cee4c37368a9832c6502f6cfd182e2aef89"
    node_id = "8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48"
    assert read_node_dat(write_dat(tmp_path, node_id, seed)).node_id == node_id


def test_read_node_dat_refuses_mismatch_without_leaking(tmp_path: Path) -> None:
    one, other = new_node_keypair(), new_node_keypair()
    with pytest.raises(NodeDatError) as info:
        read_node_dat(write_dat(tmp_path, one.node_id, other.private_key))
    assert other.private_key not in str(info.value)
    assert "derive" in str(info.value)
    with pytest.raises(NodeDatError, match="incomplete"):
        read_node_dat(write_dat(tmp_path, one.node_id, ""))
    with pytest.raises(NodeDatError, match="unreadable"):
        read_node_dat(tmp_path / "missing.dat")
    with pytest.raises(NodeDatError, match="derive"):
        read_node_dat(write_dat(tmp_path, one.node_id, "zz"))
