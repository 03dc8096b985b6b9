"""Issue 13 items 2 (CLI) and 6: ``bm-agent power`` asks before off/soft/reset and before any
multi-seat action, naming rented seats; ``--yes`` for scripts; without a terminal it refuses
(exit 8). And the same event shows the same wall time and zone in the CLI and the dashboard.

One demo café (the real ``bm-agent serve``, emulator, fake BMCs, the rentals file: pc-a01,
pc-b01 and pc-b02 rented) in the café's zone Asia/Shanghai while this host runs in UTC; the
CLI is a real subprocess, driven through a pseudo-terminal (stdlib ``pty``) for the prompt.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.stack import USERS, Cafe, start_cafe
from tests.support.procs import REPO_ROOT

OPERATOR = USERS["operator"][0]
ZONE = "Asia/Shanghai"


@pytest.fixture(scope="module")
def cafe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cafe]:
    """The demo café with the agent (and every CLI run) in the café's zone."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = ZONE  # [ui] timezone is empty: the system's zone
    try:
        started = start_cafe(tmp_path_factory.mktemp("cafe"))
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
    try:
        started.import_inventory()
        yield started
    finally:
        started.stop()


def _argv(cafe: Cafe, *args: str) -> list[str]:
    return [sys.executable, "-m", "agent", "--config", str(cafe.store_path.parent / "agent.toml"),
            "--user", OPERATOR, *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BM_AGENT_")}
    return {**env, "PYTHONPATH": str(REPO_ROOT), "LANG": "C.UTF-8", "TZ": ZONE,
            "BM_AGENT_ACTIONS_VERIFY_DEADLINE_S": "5"}


def _cli(cafe: Cafe, *args: str, lang: str = "zh_CN") -> subprocess.CompletedProcess[str]:
    """Run without a terminal (stdin is not a tty)."""
    return subprocess.run(_argv(cafe, "--lang", lang, *args), capture_output=True, text=True,
                          timeout=120, env=_env(), stdin=subprocess.DEVNULL, check=False)


class Terminal:
    """``bm-agent`` on a pseudo-terminal: read what it shows, type answers."""

    def __init__(self, argv: list[str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                     env=_env(), close_fds=True)
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} never showed; the terminal shows:\n{self.seen}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                assert chunk, f"{text!r} never showed before exit:\n{self.seen}"
                self.seen += chunk.decode("utf-8", "replace")
        return self.seen

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def finish(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096).decode("utf-8", "replace")
                except OSError:
                    break
        code = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        os.close(self.master)
        return code


def _power(cafe: Cafe, uuid: str) -> str:
    return str(cafe.bmcs[uuid].state()["power"])


def test_terminal_prompt_lists_every_target_and_marks_rented_seats(cafe: Cafe) -> None:
    """As found: ``power off --label zone=…`` forced off 4 PCs, 3 rented, with no prompt."""
    before = {uuid: _power(cafe, uuid) for uuid in ("pc-a01", "pc-a02", "pc-a03")}
    term = Terminal(_argv(cafe, "--lang", "zh_CN", "power", "off", "--label", "zone=vip"))
    shown = term.expect("[y/N]")
    for uuid in ("pc-a01", "pc-a02", "pc-a03"):
        assert uuid in shown
    assert "⚠ 出租中" in shown and "空闲" in shown and "1 台正在出租中" in shown
    term.type("n")
    assert term.finish() == 8
    assert "未确认" in term.seen
    assert {uuid: _power(cafe, uuid) for uuid in before} == before  # nothing was done

    term = Terminal(_argv(cafe, "--lang", "en", "power", "soft", "pc-a03"))  # one idle seat
    assert "idle" in term.expect("[y/N]")
    term.type("y")
    assert term.finish() == 0, term.seen


def test_without_a_terminal_several_or_rented_seats_are_refused(cafe: Cafe) -> None:
    before = {uuid: _power(cafe, uuid) for uuid in ("pc-a01", "pc-b01", "pc-b03")}
    several = _cli(cafe, "power", "reset", "pc-b01", "pc-b03")
    assert several.returncode == 8, several.stderr
    assert "--yes" in several.stderr and "2 台" in several.stderr
    assert "Traceback" not in several.stderr
    rented = _cli(cafe, "power", "off", "pc-a01", lang="en")
    assert rented.returncode == 8 and "1 of them rented" in rented.stderr
    assert {uuid: _power(cafe, uuid) for uuid in before} == before
    by_label = _cli(cafe, "bootdev", "pxe", "--label", "row=B")
    assert by_label.returncode == 8, by_label.stderr


def test_yes_goes_ahead_without_a_terminal(cafe: Cafe) -> None:
    done = _cli(cafe, "--json", "power", "on", "--label", "row=B", "--yes")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert {r["uuid"] for r in results} == {"pc-b01", "pc-b02", "pc-b03"}
    assert all(_power(cafe, uuid) == "on" for uuid in ("pc-b01", "pc-b02", "pc-b03"))
    single = _cli(cafe, "--json", "power", "on", "pc-a02")  # one idle seat, not disruptive
    assert single.returncode == 0, single.stderr


def test_the_same_event_shows_the_same_time_and_zone_in_cli_and_web(
        cafe: Cafe, new_page: Any) -> None:
    """As found: the browser showed 23:23:22, the CLI 15:23:22 for the same event."""
    listed = _cli(cafe, "--json", "events", "--action", "power", "--limit", "1")
    assert listed.returncode == 0, listed.stderr
    [event] = json.loads(listed.stdout)["events"]
    assert event["actor"] == OPERATOR  # --user, not cli:<login>
    table = _cli(cafe, "events", "--action", "power", "--limit", "1").stdout
    page = new_page("viewer")
    assert page.evaluate("document.body.dataset.tz") == ZONE
    web = page.evaluate("ts => BM.stamp(ts)", event["ts"])
    assert web.endswith(" UTC+8"), web
    assert web in table, (web, table)
    assert page.evaluate("new Date().getTimezoneOffset()") == 0  # the browser is in UTC
    assert not page.errors
