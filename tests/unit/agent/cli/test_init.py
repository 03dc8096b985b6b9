"""``bm-agent init`` and ``users``: files and modes, a commented config that parses, idempotence,
users add/passwd/rm with audit actors, exit codes and both languages (real store on disk)."""

from __future__ import annotations

import getpass
import io
import json
import os
import stat
from pathlib import Path

import pytest

from agent.accounts.auth import Authenticator
from agent.cli.context import ExitCode
from agent.cli.entry import run
from agent.config import load_settings
from agent.errors import AuthFailed
from agent.models import EventKind, Role
from agent.secrets import Sealer, Secret
from agent.store import Store

PASSWORD = "correct-horse-1"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BM_AGENT_") or name in ("LC_ALL", "LC_MESSAGES", "LANG"):
            monkeypatch.delenv(name)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    (tmp_path / "pw2").write_text("another-pass-2\n")
    return tmp_path


def _init(home: Path, *extra: str) -> int:
    return run(["--config", str(home / "agent.toml"), "init", "--admin", "boss",
                "--password-file", str(home / "pw"), "--node-url", "http://127.0.0.1:5002",
                *extra])


def _cli(home: Path, *args: str) -> int:
    return run(["--config", str(home / "agent.toml"), *args])


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _store(home: Path) -> Store:
    return Store.open(home / "agent.db", sealer=Sealer.from_key_file(home / "secrets.key"))


def test_init_writes_a_commented_config_key_store_and_admin(home: Path,
                                                            capsys: pytest.CaptureFixture[str]):
    assert _init(home, "--lang", "en") == ExitCode.OK
    out = capsys.readouterr().out
    assert "Configuration written to" in out and "Admin user boss created." in out
    config = home / "agent.toml"
    assert _mode(home / "secrets.key") == 0o600
    assert _mode(home / "agent.db") == 0o600
    assert _mode(config) == 0o640
    text = config.read_text()
    assert sum(line.startswith("#") for line in text.splitlines()) > 40
    assert "[check]" in text and "dbc_path_probe" in text
    settings = load_settings(config, environ={})
    assert settings.node.url == "http://127.0.0.1:5002"
    assert settings.store.path == home / "agent.db"
    with _store(home) as store:
        users = store.users.all()
        assert [(u.name, u.role) for u in users] == [("boss", Role.ADMIN)]
        event = store.events.page(kinds=[EventKind.AUDIT]).items[0]
        assert event.action == "user_add" and event.actor == f"cli:{getpass.getuser()}"
        assert PASSWORD not in json.dumps(dict(event.detail))
    Authenticator(store=_store(home)).login(name="boss", password=Secret(PASSWORD),
                                            source_ip="127.0.0.1")


def test_init_twice_keeps_everything(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _init(home) == ExitCode.OK
    key = (home / "secrets.key").read_text()
    config = (home / "agent.toml").read_text()
    capsys.readouterr()
    assert _init(home, "--lang", "zh_CN") == ExitCode.OK
    out = capsys.readouterr().out
    assert "已存在，保持不变" in out and "用户 boss 已存在" in out
    assert (home / "secrets.key").read_text() == key
    assert (home / "agent.toml").read_text() == config


def test_init_json_reports_what_was_created(home: Path, capsys: pytest.CaptureFixture[str]):
    assert _init(home, "--json") == ExitCode.OK
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["ok"] and doc["admin"] == "boss" and doc["admin_created"]
    assert doc["key_created"] and doc["store_created"] and doc["config_created"]
    assert "boss" in captured.err  # messages for people go to stderr under --json


def test_init_without_admin_and_no_terminal_is_a_usage_error(
        home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert _cli(home, "--lang", "en", "init") == ExitCode.USAGE
    assert "--admin USER --password-file FILE" in capsys.readouterr().err


def test_password_from_stdin(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin-pass\n"))
    assert _cli(home, "init", "--admin", "root2", "--password-file", "-") == ExitCode.OK
    with _store(home) as store:
        Authenticator(store=store).login(name="root2", password=Secret("from-stdin-pass"),
                                         source_ip="127.0.0.1")


def test_users_add_passwd_rm_with_actors_and_exit_codes(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _init(home) == ExitCode.OK
    pw, pw2 = str(home / "pw"), str(home / "pw2")
    assert _cli(home, "users", "add", "alice", "--role", "operator", "--password-file", pw,
                "--user", "boss") == ExitCode.OK
    assert _cli(home, "users", "add", "alice", "--password-file", pw) == ExitCode.CONFLICT
    assert _cli(home, "users", "add", "vera", "--password-file", pw) == ExitCode.OK
    assert _cli(home, "users", "add", "eve", "--password-file", pw,
                "--user", "vera") == ExitCode.DENIED  # a viewer cannot manage users
    assert _cli(home, "users", "add", "eve", "--password-file", pw,
                "--user", "ghost") == ExitCode.NOT_FOUND
    (home / "short").write_text("short\n")
    assert _cli(home, "users", "add", "eve", "--password-file",
                str(home / "short")) == ExitCode.USAGE
    assert _cli(home, "users", "passwd", "alice", "--password-file", pw2) == ExitCode.OK
    assert _cli(home, "users", "passwd", "nobody", "--password-file", pw2) == ExitCode.NOT_FOUND
    capsys.readouterr()
    assert _cli(home, "--lang", "zh_CN", "users", "rm", "nobody") == ExitCode.NOT_FOUND
    assert capsys.readouterr().err.strip() == "错误：未找到用户 nobody"  # issue 13 item 9
    assert _cli(home, "--lang", "en", "users", "rm", "nobody") == ExitCode.NOT_FOUND
    assert capsys.readouterr().err.strip() == "UserNotFound: user nobody not found"
    assert _cli(home, "users", "rm", "boss") == ExitCode.USAGE  # the last admin stays
    assert _cli(home, "users", "rm", "vera") == ExitCode.OK
    with _store(home) as store:
        auth = Authenticator(store=store)
        auth.login(name="alice", password=Secret("another-pass-2"), source_ip="127.0.0.1")
        with pytest.raises(AuthFailed):
            auth.login(name="alice", password=Secret(PASSWORD), source_ip="127.0.0.2")
        assert sorted(u.name for u in store.users.all()) == ["alice", "boss"]
        audit = {(e.action, e.detail.get("user")): e.actor
                 for e in store.events.page(kinds=[EventKind.AUDIT], limit=50).items}
    assert audit[("user_add", "alice")] == "boss"
    # init mapped this OS login to the admin it created ([auth] os_users): issue 13 item 7
    assert audit[("user_passwd", "alice")] == "boss"
    assert audit[("user_rm", "vera")] == "boss"


def test_users_list_json_and_table(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _init(home) == ExitCode.OK
    capsys.readouterr()
    assert _cli(home, "--json", "users", "list") == ExitCode.OK
    assert json.loads(capsys.readouterr().out)[0]["role"] == "admin"
    assert _cli(home, "--lang", "zh_CN", "users", "list") == ExitCode.OK
    table = capsys.readouterr().out
    assert "用户名" in table and "管理员" in table


def test_a_missing_config_is_a_usage_error_naming_init(home: Path,
                                                       capsys: pytest.CaptureFixture[str]):
    assert _cli(home, "--lang", "en", "users", "list") == ExitCode.USAGE
    assert "bm-agent init" in capsys.readouterr().err


def test_json_error_document_on_stdout(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _init(home) == ExitCode.OK
    capsys.readouterr()
    assert _cli(home, "--json", "users", "rm", "nobody") == ExitCode.NOT_FOUND
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"ok": False, "exit_code": 3, "error": "UserNotFound",
                   "code": "user_not_found", "message": doc["message"]}


def test_init_tls_makes_a_private_self_signed_pair_and_prints_its_fingerprint(
        home: Path, capsys: pytest.CaptureFixture[str]):
    from agent.tls import fingerprint

    code = _init(home, "--lang", "en", "--tls", "--listen", "0.0.0.0:8700",
                 "--tls-host", "192.168.1.10")
    out = capsys.readouterr().out
    assert code == ExitCode.OK, out
    settings = load_settings(home / "agent.toml", environ={})
    assert settings.api.tls_cert == home / "agent-tls.crt"
    assert settings.api.tls_key == home / "agent-tls.key"
    assert _mode(home / "agent-tls.key") == 0o600
    digest = fingerprint(home / "agent-tls.crt")
    assert digest.colons in out and f'cert_sha256 = "{digest.plain}"' in out
    assert "0.0.0.0" not in out.split("made for", 1)[1].split("(", 1)[0]
    # Again (kept), and through `tls fingerprint`: the same certificate and digest.
    assert _init(home, "--lang", "en", "--tls", "--json") == ExitCode.OK
    report = json.loads(capsys.readouterr().out)
    assert report["tls_created"] is False and report["sha256_hex"] == digest.plain
    assert _cli(home, "--json", "tls", "fingerprint") == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["sha256"] == digest.colons


def test_init_tls_puts_the_pair_beside_the_secrets_key(home: Path):
    assert _init(home, "--tls", "--key-file", str(home / "private" / "secrets.key")) == 0
    assert (home / "private" / "agent-tls.key").exists()
    assert load_settings(home / "agent.toml", environ={}).api.tls


def test_init_tls_on_a_kept_config_without_tls_keys_says_how(
        home: Path, capsys: pytest.CaptureFixture[str]):
    assert _init(home) == ExitCode.OK
    capsys.readouterr()
    assert _init(home, "--lang", "en", "--tls") == ExitCode.USAGE
    assert "--tls --force" in capsys.readouterr().err
    assert not (home / "agent-tls.crt").exists()
    assert _init(home, "--tls", "--force") == ExitCode.OK
    assert load_settings(home / "agent.toml", environ={}).api.tls


def test_tls_fingerprint_without_tls_is_a_usage_error(home: Path,
                                                      capsys: pytest.CaptureFixture[str]):
    assert _init(home) == ExitCode.OK
    capsys.readouterr()
    assert _cli(home, "--lang", "en", "tls", "fingerprint") == ExitCode.USAGE
    assert "TLS is off" in capsys.readouterr().err


def test_tls_make_cert_for_an_installed_agent_whose_config_names_the_pair(
        home: Path, capsys: pytest.CaptureFixture[str]):
    assert _init(home, "--listen", "0.0.0.0:8700") == ExitCode.OK
    config = home / "agent.toml"
    config.write_text(config.read_text().replace(
        '# tls_cert = "agent-tls.crt"', 'tls_cert = "tls/agent.crt"').replace(
        '# tls_key = "agent-tls.key"', 'tls_key = "tls/agent.key"'))
    capsys.readouterr()
    assert _cli(home, "--json", "tls", "make-cert", "--tls-host", "10.0.0.9") == ExitCode.OK
    report = json.loads(capsys.readouterr().out)
    assert report["tls_created"] is True and report["tls_cert"] == str(home / "tls/agent.crt")
    assert _mode(home / "tls" / "agent.key") == 0o600
    assert load_settings(config, environ={}).api.tls
    # A second run keeps the pair and prints the same fingerprint.
    assert _cli(home, "--json", "tls", "make-cert") == ExitCode.OK
    again = json.loads(capsys.readouterr().out)
    assert again["tls_created"] is False and again["sha256"] == report["sha256"]
