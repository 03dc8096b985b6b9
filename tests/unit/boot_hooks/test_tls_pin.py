"""bm-hook's certificate pin: config rules and pin formats (the handshake: integration)."""

from __future__ import annotations

import http.client

import pytest

from boot_hooks.config import load_config
from boot_hooks.errors import ConfigError, ExitCode, PinMismatch
from boot_hooks.tls_pin import PinnedHTTPSConnection, connection_factory, normalize_pin

PLAIN = "bc60c7c34b2dc66661e511f470dbf6dc6eb99ff48bb4b2d838847047754b5feb"
COLONS = ":".join(PLAIN[i:i + 2] for i in range(0, 64, 2)).upper()


def write(tmp_path, agent: str) -> str:
    path = tmp_path / "hook.toml"
    path.write_text(f'[agent]\ntoken_key_file = "/k"\n{agent}')
    return str(path)


def test_both_fingerprint_forms_are_accepted():
    assert normalize_pin(COLONS) == PLAIN
    assert normalize_pin(f"  {PLAIN.upper()} ") == PLAIN


@pytest.mark.parametrize("bad", [PLAIN[:-2], PLAIN + "00", "zz" * 32, "sha256:" + PLAIN])
def test_a_malformed_pin_is_a_config_error(tmp_path, bad):
    url = 'url = "https://192.168.1.159:8700"\n'
    with pytest.raises(ConfigError, match="cert_sha256"):
        load_config(write(tmp_path, url + f'cert_sha256 = "{bad}"\n'), {})


def test_https_without_a_pin_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="needs \\[agent\\] cert_sha256"):
        load_config(write(tmp_path, 'url = "https://192.168.1.159:8700"\n'), {})


def test_a_pin_with_an_http_url_is_refused(tmp_path):
    path = write(tmp_path, f'url = "http://192.168.1.159:8700"\ncert_sha256 = "{PLAIN}"\n')
    with pytest.raises(ConfigError, match="not https://"):
        load_config(path, {})


def test_the_pin_comes_from_the_environment_too(tmp_path):
    path = write(tmp_path, 'url = "https://192.168.1.159:8700"\n')
    config = load_config(path, {"BM_HOOK_AGENT_CERT_SHA256": COLONS})
    assert config.agent_cert_sha256 == COLONS


def test_http_still_works_with_a_warning(caplog):
    with caplog.at_level("WARNING", logger="boot_hooks.tls_pin"):
        assert connection_factory(False, "") is http.client.HTTPConnection
    assert "clear text" in caplog.text


def test_https_connections_are_pinned():
    factory = connection_factory(True, COLONS)
    conn = factory("192.168.1.159", 8700, timeout=1.0)
    assert isinstance(conn, PinnedHTTPSConnection)


def test_the_mismatch_has_its_own_exit_code():
    assert PinMismatch.exit_code == ExitCode.TLS_PIN_MISMATCH == 8
    assert len({int(code) for code in ExitCode}) == len(ExitCode)
