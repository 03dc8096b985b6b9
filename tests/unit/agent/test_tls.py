"""[api] tls_cert / tls_key / trusted_proxies: validated at load, with a clear TlsConfigError."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.api.proxies import parse_networks
from agent.config import load_settings, render_default_config
from agent.errors import ConfigError, TlsConfigError
from agent.tls import check_pair, fingerprint, make_self_signed

MINIMAL = '[node]\nnode_dat = "node.dat"\n'


def config(tmp_path: Path, api: str = "") -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(MINIMAL + "[api]\n" + api, encoding="utf-8")
    return path


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "agent-tls.crt", tmp_path / "agent-tls.key"
    make_self_signed(cert, key, ["192.168.1.10", "agent.lan"])
    return cert, key


TLS_KEYS = 'tls_cert = "agent-tls.crt"\ntls_key = "agent-tls.key"\n'


def test_a_matching_pair_turns_tls_on_and_implies_secure_cookies(tmp_path, pair):
    settings = load_settings(config(tmp_path, TLS_KEYS), environ={})
    assert settings.api.tls and settings.api.tls_cert == pair[0]
    assert settings.api.secure_cookies is False and settings.api.always_secure_cookies


def test_without_tls_cookies_are_not_always_secure(tmp_path):
    settings = load_settings(config(tmp_path), environ={})
    assert not settings.api.tls and not settings.api.always_secure_cookies
    assert settings.api.trusted_proxies == ()


def test_the_new_key_file_is_private_and_the_fingerprint_is_the_ders_sha256(pair):
    cert, key = pair
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    der = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(
        serialization.Encoding.DER)
    digest = fingerprint(cert)
    assert digest.plain == hashlib.sha256(der).hexdigest()
    assert digest.colons.replace(":", "").lower() == digest.plain
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["192.168.1.10"]
    assert sans.get_values_for_type(x509.DNSName) == ["agent.lan"]
    days = (parsed.not_valid_after_utc - parsed.not_valid_before_utc).days
    assert days >= 3649
    assert isinstance(parsed.public_key(), ec.EllipticCurvePublicKey)


def test_a_missing_certificate_file_is_refused(tmp_path, pair):
    pair[0].unlink()
    with pytest.raises(TlsConfigError) as info:
        load_settings(config(tmp_path, TLS_KEYS), environ={})
    assert info.value.key == "api.tls_cert" and "unreadable" in info.value.problem
    assert "agent-tls.crt" in str(info.value)


def test_an_unreadable_key_file_is_refused(tmp_path, pair):
    if os.geteuid() == 0:
        pair[1].unlink()  # root reads any file: a missing one stands in
    else:
        pair[1].chmod(0)
    with pytest.raises(TlsConfigError) as info:
        load_settings(config(tmp_path, TLS_KEYS), environ={})
    assert info.value.key == "api.tls_key" and "unreadable" in info.value.problem


def test_a_key_of_another_certificate_is_refused(tmp_path, pair):
    other = tmp_path / "other"
    make_self_signed(other / "c.crt", other / "c.key", ["127.0.0.1"])
    pair[1].write_bytes((other / "c.key").read_bytes())
    with pytest.raises(TlsConfigError) as info:
        load_settings(config(tmp_path, TLS_KEYS), environ={})
    assert info.value.key == "api.tls_key"
    assert "does not match the certificate" in info.value.problem
    assert "BEGIN" not in str(info.value)  # the key's text never appears


@pytest.mark.parametrize(("which", "garbage", "problem"), [
    (0, b"not a certificate", "not a PEM certificate"),
    (1, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
     "not a PEM private key"),
])
def test_files_that_are_not_pem_are_refused(tmp_path, pair, which, garbage, problem):
    pair[which].write_bytes(garbage)
    with pytest.raises(TlsConfigError) as info:
        load_settings(config(tmp_path, TLS_KEYS), environ={})
    assert problem in info.value.problem


def test_an_encrypted_key_is_refused_with_the_reason(tmp_path, pair):
    key = serialization.load_pem_private_key(pair[1].read_bytes(), password=None)
    pair[1].write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    assert check_pair(*pair) == ("tls_key", "the private key is encrypted (uvicorn cannot "
                                            "ask for a passphrase)")


def test_half_a_pair_is_refused(tmp_path, pair):
    with pytest.raises(TlsConfigError) as info:
        load_settings(config(tmp_path, 'tls_cert = "agent-tls.crt"\n'), environ={})
    assert info.value.key == "api.tls_key" and info.value.problem == "missing"


def test_tls_keys_come_from_the_environment_too(tmp_path, pair):
    env = {"BM_AGENT_API_TLS_CERT": str(pair[0]), "BM_AGENT_API_TLS_KEY": str(pair[1])}
    assert load_settings(config(tmp_path), environ=env).api.tls


def test_trusted_proxies_from_file_and_environment(tmp_path):
    settings = load_settings(config(tmp_path, 'trusted_proxies = ["10.0.0.2", "fd00::/8"]\n'),
                             environ={})
    assert settings.api.trusted_proxies == parse_networks(["10.0.0.2", "fd00::/8"])
    env = {"BM_AGENT_API_TRUSTED_PROXIES": "127.0.0.5, 192.168.7.0/24"}
    settings = load_settings(config(tmp_path), environ=env)
    assert [str(n) for n in settings.api.trusted_proxies] == ["127.0.0.5/32", "192.168.7.0/24"]


@pytest.mark.parametrize("bad", ['["10.0.0.0/33"]', '["10.0.0.1/24"]', '["proxy.lan"]',
                                 '[1]', '42'])
def test_a_bad_cidr_is_refused(tmp_path, bad):
    with pytest.raises(ConfigError) as info:
        load_settings(config(tmp_path, f"trusted_proxies = {bad}\n"), environ={})
    assert info.value.key == "api.trusted_proxies"
    assert "IP" in info.value.expected


def test_the_default_config_lists_the_new_keys_and_parses(tmp_path):
    text = render_default_config({"api.trusted_proxies": ["10.0.0.2"]})
    assert 'trusted_proxies = ["10.0.0.2"]' in text
    assert "# tls_cert = " in text and "# tls_key = " in text
    path = tmp_path / "agent.toml"
    path.write_text(text.replace("# node_dat = ", "node_dat = "))
    assert [str(n) for n in load_settings(path, environ={}).api.trusted_proxies] == \
        ["10.0.0.2/32"]


@pytest.mark.parametrize(("listen", "warned"), [
    ("0.0.0.0:8700", True), ("192.168.1.10:8700", True), ("agent.lan:8700", True),
    ("[::]:8700", True), ("127.0.0.1:8700", False), ("[::1]:8700", False),
    ("localhost:8700", False), ("[::ffff:127.0.0.1]:8700", False),
])
def test_serve_warns_before_listening_beyond_loopback_without_tls(tmp_path, listen, warned):
    from agent.cli.tls import cleartext_warning

    settings = load_settings(config(tmp_path, f'listen = "{listen}"\n'), environ={})
    warning = cleartext_warning(settings)
    assert (warning is not None) is warned
    if warning:
        assert "WITHOUT TLS" in warning and listen in warning


def test_no_cleartext_warning_with_tls(tmp_path, pair):
    from agent.cli.tls import cleartext_warning

    path = config(tmp_path, 'listen = "0.0.0.0:8700"\n' + TLS_KEYS)
    assert cleartext_warning(load_settings(path, environ={})) is None


@pytest.mark.parametrize("tls", [False, True])
def test_serve_passes_the_pair_to_uvicorn_and_warns_without_tls(tmp_path, pair, monkeypatch,
                                                                caplog, tls):
    """``bm-agent serve`` up to uvicorn's run (replaced: no socket is opened)."""
    import uvicorn

    from agent.cli.entry import run
    from agent.secrets import create_key_file
    from baremetal.signing import new_node_keypair

    keys = new_node_keypair()
    (tmp_path / "node.dat").write_text(f"node_id={keys.node_id}\n"
                                       f"node_private_key={keys.private_key}\n")
    create_key_file(tmp_path / "secrets.key")
    path = config(tmp_path, 'listen = "0.0.0.0:8700"\n' + (TLS_KEYS if tls else ""))
    seen = {}

    def fake_run(server, sockets=None):
        seen["cert"], seen["key"] = server.config.ssl_certfile, server.config.ssl_keyfile
        seen["proxy_headers"] = server.config.proxy_headers

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    for name in [n for n in os.environ if n.startswith("BM_AGENT_")]:
        monkeypatch.delenv(name)
    with caplog.at_level("WARNING"):
        run(["--config", str(path), "serve"])
    assert seen["proxy_headers"] is False
    if tls:
        assert (seen["cert"], seen["key"]) == (str(pair[0]), str(pair[1]))
        assert "WITHOUT TLS" not in caplog.text
    else:
        assert seen["cert"] is None and seen["key"] is None
        assert "0.0.0.0:8700 WITHOUT TLS" in caplog.text
