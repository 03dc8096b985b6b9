"""bm-hook configuration: the resident mode's [service] section (issue 12)."""

import pytest

from boot_hooks.config import ServiceSettings, load_config
from boot_hooks.errors import ConfigError

DIRECT = '[node]\nurl = "http://192.168.1.159:5002"\n[server]\nkey_file = "/k"\n'


def write(tmp_path, text):
    path = tmp_path / "hook.toml"
    path.write_text(DIRECT + text)
    return str(path)


def test_defaults_are_half_an_hour_fast_then_every_five_minutes(tmp_path):
    config = load_config(write(tmp_path, ""), {})
    assert config.service == ServiceSettings(retry_s=1800.0, slow_retry_s=300.0)


def test_file_and_environment(tmp_path):
    path = write(tmp_path, "[service]\nretry_s = 600\nslow_retry_s = 120.5\n")
    assert load_config(path, {}).service == ServiceSettings(retry_s=600, slow_retry_s=120.5)
    config = load_config(path, {"BM_HOOK_SERVICE_RETRY_S": "60",
                                "BM_HOOK_SERVICE_SLOW_RETRY_S": "30"})
    assert config.service == ServiceSettings(retry_s=60, slow_retry_s=30)


@pytest.mark.parametrize(("text", "message"), [
    ("[service]\nretry_s = 0\n", "[service] retry_s must be positive"),
    ("[service]\nslow_retry_s = -5\n", "[service] slow_retry_s must be positive"),
    ('[service]\nretry_s = "soon"\n', "[service] retry_s must be a number of seconds"),
    ("[service]\nslow_retry_s = nan\n", "[service] slow_retry_s must be positive"),
    # inf would overflow threading.Event.wait in the loop: bounded instead.
    ("[service]\nslow_retry_s = inf\n", "[service] slow_retry_s must be at most 86400"),
    ("[service]\nretry_s = 1e12\n", "[service] retry_s must be at most 604800"),
    ("[service]\nretry = 5\n", "unknown key [service] retry"),
])
def test_bad_values_are_config_errors(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), {})
    assert message in str(info.value)


def test_bad_environment_value_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="slow_retry_s must be at most"):
        load_config(write(tmp_path, ""), {"BM_HOOK_SERVICE_SLOW_RETRY_S": "inf"})
    with pytest.raises(ConfigError, match="unknown key \\[service\\] pace"):
        load_config(write(tmp_path, ""), {"BM_HOOK_SERVICE_PACE": "1"})
