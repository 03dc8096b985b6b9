"""``bm-agent backup`` / ``restore`` / ``upgrade-check`` as real subprocesses on real files.

The service cases run a real ``bm-agent serve`` (``agent_proc``): the backup is taken while
its monitor writes, and ``restore`` must refuse while it has the store open. The key file
is always handled explicitly: copied with ``--with-key`` or named in a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.config import load_settings
from agent.errors import UnsealFailed
from agent.models import EventKind
from agent.secrets import Sealer, Secret, create_key_file
from agent.store import SCHEMA_VERSION, Store, check_store_file
from baremetal.signing import new_node_keypair
from tests.support.agentconfig import write_agent_config
from tests.support.ports import free_port
from tests.support.procs import REPO_ROOT

PASSWORDS = {f"pc-{i}": f"ipmi-pass-{i}" for i in range(1, 6)}


# --- helpers -----------------------------------------------------------------------


class AgentFiles:
    """An agent's config, key and store in one directory (what ``bm-agent init`` makes)."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        pair = new_node_keypair()
        (path / "node.dat").write_text(
            f"node_id={pair.node_id}\nnode_private_key={pair.private_key}\n")
        self.config = write_agent_config(path, {
            "node.url": f"http://127.0.0.1:{free_port()}", "node.node_dat": "node.dat",
            "store.path": "agent.db", "secrets.key_file": "secrets.key",
            "api.listen": f"127.0.0.1:{free_port()}"})
        settings = load_settings(self.config, environ={})
        self.dir, self.store_path, self.key = path, settings.store.path, settings.secrets.key_file
        create_key_file(self.key)

    def open(self) -> Store:
        return Store.open(self.store_path, sealer=Sealer.from_key_file(self.key))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(self.config, *args)


def run_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m agent --config CONFIG --lang en ARGS`` as a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BM_AGENT_")}
    env.update(PYTHONPATH=str(REPO_ROOT), LANG="C.UTF-8")
    return subprocess.run([sys.executable, "-m", "agent", "--config", str(config), "--lang",
                           "en", *args], capture_output=True, text=True, timeout=120, env=env,
                          cwd=config.parent, check=False)


def seed(store: Store, passwords: dict[str, str] = PASSWORDS) -> None:
    for index, (uuid, password) in enumerate(passwords.items(), start=1):
        store.servers.add(uuid=uuid, ip=f"10.0.0.{index}", ipmi_host=f"127.0.0.{index + 1}",
                          ipmi_user="admin", ipmi_password=Secret(password),
                          ipmi_port=free_port(), desc=f"seat {index}")


def passwords_in(path: Path, key: Path) -> dict[str, str]:
    with Store.open(path, sealer=Sealer.from_key_file(key)) as store:
        return {c.uuid: c.ipmi_password.reveal() for c in store.servers.all_credentials()}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def side_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if ".bak-" in p.name)


def bump_user_version(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA user_version = {int(version)}")
    finally:
        conn.close()


def audit_actions(store: Store) -> list[tuple[str, dict[str, Any]]]:
    page = store.events.page(limit=50, kinds=[EventKind.AUDIT])
    return [(e.action, dict(e.detail)) for e in page.items]


@pytest.fixture
def files(tmp_path: Path) -> AgentFiles:
    agent = AgentFiles(tmp_path / "agent")
    with agent.open() as store:
        seed(store)
    return agent


# --- backup ------------------------------------------------------------------------


def _seed_settings(settings: Any) -> None:
    with Store.open(settings.store.path,
                    sealer=Sealer.from_key_file(settings.secrets.key_file)) as store:
        seed(store)


def test_backup_while_the_service_writes_is_consistent_and_names_the_key(agent_proc, tmp_path):
    agent = agent_proc(before_start=_seed_settings)
    agent.wait_for(lambda: agent.get("/api/v1/servers").json()["items"][0]["verdict"]
                   not in (None, "unknown"), what="a first pass")
    dest = tmp_path / "online.db"
    done = run_cli(agent.config_path, "backup", str(dest))
    assert done.returncode == 0, done.stderr
    assert "does not contain the secrets key" in done.stderr
    assert str(agent.settings.secrets.key_file) in done.stderr
    assert not Path(f"{dest}.key").exists()
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert check_store_file(dest) == SCHEMA_VERSION
    assert passwords_in(dest, agent.settings.secrets.key_file) == PASSWORDS
    with Store.open(dest) as copy:
        assert copy.integrity_check() == [] and copy.checks.reading_count() > 0
    assert agent.proc.alive()
    events = agent.get("/api/v1/audit", params={"limit": 20}).json()["items"]
    assert any(e["action"] == "store.backup" for e in events)


def test_backup_with_key_copies_the_key_privately(files: AgentFiles, tmp_path: Path) -> None:
    dest = tmp_path / "with-key.db"
    done = files.cli("backup", "--with-key", str(dest))
    assert done.returncode == 0, done.stderr
    key_copy = Path(f"{dest}.key")
    assert key_copy.read_bytes() == files.key.read_bytes()
    assert stat.S_IMODE(key_copy.stat().st_mode) == 0o600
    assert "does not contain the secrets key" not in done.stderr
    assert passwords_in(dest, key_copy) == PASSWORDS


def test_backup_json_reports_that_the_key_is_not_included(files: AgentFiles, tmp_path: Path
                                                          ) -> None:
    done = files.cli("--json", "backup", str(tmp_path / "b.db"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["key_not_included"] is True and report["live_key_file"] == str(files.key)


def test_backup_refuses_to_overwrite_the_store_or_start_from_nothing(tmp_path: Path) -> None:
    agent = AgentFiles(tmp_path / "fresh")
    missing = agent.cli("backup", str(tmp_path / "x.db"))
    assert missing.returncode == 1 and "nothing to back up" in missing.stderr
    assert not agent.store_path.exists()  # no empty store created on the way
    agent.open().close()
    over = agent.cli("backup", str(agent.store_path))
    assert over.returncode == 2 and "over the store itself" in over.stderr


# --- restore -----------------------------------------------------------------------


def test_restore_refuses_while_the_service_has_the_store_open(agent_proc, tmp_path: Path) -> None:
    agent = agent_proc()
    backup = tmp_path / "b.db"
    assert run_cli(agent.config_path, "backup", str(backup)).returncode == 0
    done = run_cli(agent.config_path, "restore", str(backup))
    assert done.returncode == 4, done.stderr
    assert "open in another process" in done.stderr and "systemctl stop" in done.stderr
    assert side_files(agent.settings.store.path) == []
    assert agent.proc.alive() and agent.get("/healthz").status_code == 200
    agent.proc.stop()
    after_stop = run_cli(agent.config_path, "restore", str(backup))
    assert after_stop.returncode == 0, after_stop.stderr


def test_restore_brings_back_the_backup_and_keeps_the_old_store(files: AgentFiles,
                                                                tmp_path: Path) -> None:
    backup = tmp_path / "b.db"
    assert files.cli("backup", str(backup)).returncode == 0
    with files.open() as store:
        store.servers.remove(server_id=store.servers.get_by_uuid(uuid="pc-1").id)
        seed(store, {"pc-new": "new-pass"})
    done = files.cli("restore", str(backup))
    assert done.returncode == 0, done.stderr
    assert passwords_in(files.store_path, files.key) == PASSWORDS
    kept = [n for n in side_files(files.store_path) if not n.endswith(("-wal", "-shm"))]
    assert len(kept) == 1 and f"kept as {files.dir / kept[0]}" in done.stdout
    assert set(passwords_in(files.dir / kept[0], files.key)) == set(PASSWORDS) - {"pc-1"} | {
        "pc-new"}
    with files.open() as store:
        assert store.integrity_check() == []
        actions = audit_actions(store)
        assert actions[0][0] == "store.restore" and actions[0][1]["file"] == str(backup)
    assert stat.S_IMODE(files.store_path.stat().st_mode) == 0o600


def test_two_restores_in_one_second_keep_both_old_stores(files: AgentFiles, tmp_path: Path
                                                         ) -> None:
    backup = tmp_path / "b.db"
    assert files.cli("backup", str(backup)).returncode == 0
    assert files.cli("restore", str(backup)).returncode == 0
    assert files.cli("restore", str(backup)).returncode == 0
    kept = [n for n in side_files(files.store_path) if not n.endswith(("-wal", "-shm"))]
    assert len(kept) == 2


def test_restore_checks_the_key_before_changing_anything(files: AgentFiles, tmp_path: Path
                                                         ) -> None:
    backup = tmp_path / "from-a.db"
    assert files.cli("backup", "--with-key", str(backup)).returncode == 0
    other = AgentFiles(tmp_path / "other")  # another machine: its own key
    with other.open() as store:
        seed(store, {"pc-b": "b-pass"})
    before, key_before = digest(other.store_path), other.key.read_bytes()
    wrong = other.cli("restore", str(backup))
    assert wrong.returncode == 1, wrong.stderr
    assert "cannot open the secrets sealed in this backup" in wrong.stderr
    assert "Nothing was changed" in wrong.stderr
    assert digest(other.store_path) == before and other.key.read_bytes() == key_before
    assert side_files(other.store_path) == []
    done = other.cli("restore", "--with-key", str(backup))
    assert done.returncode == 0, done.stderr
    assert other.key.read_bytes() == files.key.read_bytes()
    old_keys = [p for p in other.dir.iterdir() if p.name.startswith("secrets.key.bak-")]
    assert len(old_keys) == 1 and old_keys[0].read_bytes() == key_before
    assert stat.S_IMODE(old_keys[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(other.key.stat().st_mode) == 0o600
    assert passwords_in(other.store_path, other.key) == PASSWORDS
    with pytest.raises(UnsealFailed):
        passwords_in(other.store_path, old_keys[0])


def test_restore_with_key_needs_the_key_file_beside_the_backup(files: AgentFiles,
                                                               tmp_path: Path) -> None:
    backup = tmp_path / "b.db"
    assert files.cli("backup", str(backup)).returncode == 0
    done = files.cli("restore", "--with-key", str(backup))
    assert done.returncode == 3 and f"{backup}.key" in done.stderr


def _garbage(path: Path, good: Path) -> None:
    path.write_bytes(os.urandom(8192))


def _truncated(path: Path, good: Path) -> None:
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])


def _newer(path: Path, good: Path) -> None:
    path.write_bytes(good.read_bytes())
    bump_user_version(path, SCHEMA_VERSION + 1)


def _foreign(path: Path, good: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(("make", "needle", "exit_code"), [
    (_garbage, "corrupt", 1), (_truncated, "corrupt", 1),
    (_newer, f"schema version {SCHEMA_VERSION + 1} is newer", 2),
    (_foreign, "not a bm-agent store", 1),
])
def test_restore_refuses_bad_backups_and_changes_nothing(files: AgentFiles, tmp_path: Path,
                                                         make, needle: str,
                                                         exit_code: int) -> None:
    good = tmp_path / "good.db"
    assert files.cli("backup", str(good)).returncode == 0
    bad = tmp_path / "bad.db"
    make(bad, good)
    before = digest(files.store_path)
    done = files.cli("restore", str(bad))
    assert done.returncode == exit_code, done.stderr
    assert needle in done.stderr
    assert digest(files.store_path) == before and side_files(files.store_path) == []
    assert not any(p.name.startswith(".agent.db.restore") for p in files.dir.iterdir())


# --- upgrade -----------------------------------------------------------------------


def test_upgrade_check_on_a_current_store(files: AgentFiles) -> None:
    done = files.cli("--json", "upgrade-check")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["schema_version"] == SCHEMA_VERSION and report["will_migrate"] is False


def test_a_store_newer_than_the_code_is_refused_untouched(files: AgentFiles) -> None:
    bump_user_version(files.store_path, SCHEMA_VERSION + 5)
    before = digest(files.store_path)
    check = files.cli("upgrade-check")
    assert check.returncode == 2
    assert f"schema version {SCHEMA_VERSION + 5} is newer than this program" in check.stderr
    # The service itself refuses to start, with exit 2: final for systemd
    # (RestartPreventExitStatus=2), since restarting cannot make the store older.
    serve = files.cli("serve")
    assert serve.returncode == 2, serve.stderr
    assert "StoreTooNew" in serve.stderr
    listing = files.cli("servers", "list")
    assert listing.returncode == 2 and "StoreTooNew" in listing.stderr
    assert digest(files.store_path) == before
    conn = sqlite3.connect(f"{files.store_path.as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 5
    finally:
        conn.close()


@pytest.mark.parametrize("start", range(1, SCHEMA_VERSION))
def test_an_older_store_is_migrated_at_start_and_keeps_its_data(tmp_path: Path,
                                                                 start: int) -> None:
    from tests.support.old_store import add_v1_server, make_old_store

    agent = AgentFiles(tmp_path / "old")
    sealer = Sealer.from_key_file(agent.key)
    make_old_store(agent.store_path, start, sealer)
    for index, (uuid, password) in enumerate(PASSWORDS.items(), start=1):
        add_v1_server(agent.store_path, sealer, uuid=uuid, ip=f"10.0.0.{index}",
                      ipmi_host=f"127.0.0.{index + 1}", ipmi_user="admin", password=password,
                      ipmi_port=free_port(), desc=f"seat {index}")
    check = agent.cli("--json", "upgrade-check")
    assert check.returncode == 0 and '"will_migrate": true' in check.stdout
    assert passwords_in(agent.store_path, agent.key) == PASSWORDS
    assert agent.cli("upgrade-check").returncode == 0
