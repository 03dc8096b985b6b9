"""``bm-agent seats list|approve|reject|approve-device`` on a real store (no sockets)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent.cli.context import ExitCode
from agent.cli.entry import run
from agent.models import EventKind, SeatState
from agent.secrets import Sealer, Secret
from agent.store import Store
from boot_hooks.relay import SeatSigner

PASSWORD = "correct-horse-1"
SEAT = "5e" * 32


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BM_AGENT_") or name in ("LC_ALL", "LC_MESSAGES", "LANG"):
            monkeypatch.delenv(name)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    assert run(["--config", str(tmp_path / "agent.toml"), "init", "--admin", "boss",
                "--password-file", str(tmp_path / "pw"),
                "--node-url", "http://127.0.0.1:5002"]) == 0
    with _store(tmp_path) as store:
        server = store.servers.add(uuid="pc-7", ip="10.0.0.7", ipmi_host="127.0.0.1",
                                   ipmi_user="admin", ipmi_password=Secret("pw123456"),
                                   labels={"row": "A"})
        store.seats.enroll(server_id=server.id, public_key=SeatSigner(SEAT).public_key_hex,
                           source_ip="10.0.0.7")
    return tmp_path


def _store(home: Path) -> Store:
    return Store.open(home / "agent.db", sealer=Sealer.from_key_file(home / "secrets.key"))


def _cli(home: Path, *args: str) -> int:
    return run(["--config", str(home / "agent.toml"), "--lang", "en", *args])


def test_list_approve_and_nothing_left(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(home, "--json", "seats", "list", "--state", "pending") == ExitCode.OK
    [item] = json.loads(capsys.readouterr().out)["items"]
    assert (item["uuid"], item["fingerprint"]) == ("pc-7", SeatSigner(SEAT).fingerprint)
    assert _cli(home, "--user", "boss", "seats", "approve", "--label", "row=A") == ExitCode.OK
    assert "1 of 1 done" in capsys.readouterr().out
    assert _cli(home, "seats", "approve", "pc-7") == ExitCode.CONFLICT
    assert "no pending seat key" in capsys.readouterr().out
    with _store(home) as store:
        [seat] = store.seats.find()
        assert (seat.state, seat.decided_by) == (SeatState.APPROVED, "boss")
        audit = [e for e in store.events.page(limit=10).items if e.kind == EventKind.AUDIT]
        assert audit[0].action == "seat_approve"


def test_a_selection_is_required_and_unknown_servers_are_not_found(home: Path) -> None:
    assert _cli(home, "seats", "approve") == ExitCode.USAGE
    assert _cli(home, "seats", "reject", "no-such-pc") == ExitCode.NOT_FOUND


def test_wrong_fingerprint_decides_nothing(home: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(home, "--json", "seats", "reject", "pc-7", "--fingerprint",
                "0000000000000000") == ExitCode.CONFLICT
    [result] = json.loads(capsys.readouterr().out)["results"]
    assert (result["ok"], result["code"]) == (False, "seat_not_pending")
