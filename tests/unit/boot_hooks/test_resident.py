"""The resident loop (issue 12): retries over the whole time budget on a virtual clock.

A rotation attempt is modelled at the loop's seam (``attempt``), with the step deadlines
a real run has (``Deadlines()``); waits advance a virtual clock, so hours pass instantly.
"""

import json
import logging
import threading
import time

import pytest

from boot_hooks.config import Deadlines, HookConfig, ServiceSettings
from boot_hooks.direct_flow import Outcome
from boot_hooks.errors import ConfigError, ExitCode, NodeDown, NotConfirmed, StateUnavailable
from boot_hooks.logs import SecretFilter
from boot_hooks.resident import (
    FAST_MAX_S,
    IDLE_WAKE_S,
    NoReports,
    ResidentLoop,
    RotationEnd,
    StateKeeper,
    run_until_stopped,
)
from boot_hooks.sdk import SdkTimeout, SdkUnavailable
from tests.support.clock import Clock

START = 1000.0
OUTCOME = Outcome("direct", "ab" * 32, "0.4.1.7", "721345678", 1.5)


class MemoryState:
    """Stand-in for boot_hooks.state.HookState: only write_status, kept in a list."""

    def __init__(self, fail=False):
        self.statuses = []
        self.fail = fail

    def write_status(self, status):
        if self.fail:
            raise OSError("disk gone")
        self.statuses.append(dict(status))


class RecordingReports:
    def __init__(self):
        self.recorded = []
        self.flushes = []

    def record(self, error, attempt):
        self.recorded.append((type(error).__name__, attempt))

    def flush(self, timeout_s):
        self.flushes.append(timeout_s)
        return len(self.recorded)


class VirtualWait:
    """The loop's wait seam on the virtual clock: records each wait, stops when told."""

    def __init__(self, clock, stop, stop_after_idle=1):
        self.clock, self.stop = clock, stop
        self.waits = []
        self.idle_left = stop_after_idle

    def __call__(self, seconds):
        self.waits.append(seconds)
        self.clock.now += seconds
        if seconds == IDLE_WAKE_S:
            self.idle_left -= 1
            if self.idle_left <= 0:
                self.stop.set()
        return self.stop.is_set()


def make_loop(attempt, clock, settings=None, state=None, reports=None, stop=None):
    stop = stop or threading.Event()
    wait = VirtualWait(clock, stop)
    loop = ResidentLoop(attempt, reports=reports or RecordingReports(), state=state or MemoryState(),
                        settings=settings or ServiceSettings(), stop=stop, clock=clock, wait=wait)
    return loop, wait


class DeepLinkPipeAppearsLate:
    """One attempt as the flow makes it: wait up to deeplink_s for DeepLink's SDK pipe.

    The pipe appears ``appears_after`` seconds after START; until then an attempt spends
    its whole deeplink_s deadline retrying the open and fails with SdkUnavailable.
    """

    def __init__(self, clock, appears_after, deadlines=None):
        self.clock, self.deadlines = clock, deadlines or Deadlines()
        self.appears_at = START + appears_after
        self.starts = []

    def __call__(self):
        self.starts.append(self.clock.now - START)
        give_up = self.clock.now + self.deadlines.deeplink_s
        if self.appears_at <= give_up:
            # SDK opens, the node relays the new code, read-back confirms: a few seconds.
            self.clock.now = max(self.clock.now, self.appears_at) + 2.0
            return OUTCOME
        self.clock.now = give_up
        raise SdkUnavailable(r"cannot open DeepLink SDK pipe \\.\pipe\deeplink_sdk: not found")


def test_deeplink_pipe_appearing_3_minutes_after_start_is_waited_for():
    clock = Clock(START)
    attempt = DeepLinkPipeAppearsLate(clock, appears_after=180.0)
    state, reports = MemoryState(), RecordingReports()
    loop, wait = make_loop(attempt, clock, state=state, reports=reports)
    assert loop.rotate() is RotationEnd.ROTATED
    # Attempt 1 spends deeplink_s (120 s) and fails; one fast backoff (5 s with jitter:
    # 2.5..5 s); attempt 2 (deadline 120 s) sees the pipe at 180 s and publishes.
    assert loop.attempts == 2
    [backoff] = wait.waits
    assert 2.5 <= backoff <= 5.0
    assert attempt.starts == [0.0, pytest.approx(120.0 + backoff)]
    assert clock.now - START == pytest.approx(182.0)
    assert [s["result"] for s in state.statuses] == ["retrying", "ok"]
    assert state.statuses[0]["exit_code"] == ExitCode.DEEPLINK_UNREACHABLE
    assert state.statuses[0]["error"] == "deeplink_unreachable"
    assert reports.recorded == [("SdkUnavailable", 1)]
    assert len(reports.flushes) == 2  # after every attempt, the successful one too


def test_deeplink_after_logon_20_minutes_late_still_rotates_in_the_fast_phase():
    clock = Clock(START)
    attempt = DeepLinkPipeAppearsLate(clock, appears_after=1200.0)
    loop, wait = make_loop(attempt, clock)
    assert loop.rotate() is RotationEnd.ROTATED
    assert all(delay <= FAST_MAX_S for delay in wait.waits)
    assert loop.attempts == len(wait.waits) + 1
    # Each failed attempt costs deeplink_s + its backoff: the pipe is found within one
    # attempt's deadline of its appearance.
    assert clock.now - START <= 1200.0 + 2.0 + FAST_MAX_S


def test_backoff_doubles_from_5_s_to_60_s_then_slows_to_slow_retry_s_forever():
    clock = Clock(START)
    works_at = START + 6 * 3600.0  # the agent is down for six hours

    def attempt():
        if clock.now < works_at:
            raise NodeDown("agent http://10.0.0.2:8080 did not answer before [deadlines] node_s")
        return OUTCOME

    loop, wait = make_loop(attempt, clock)
    assert loop.rotate() is RotationEnd.ROTATED
    fast = [w for w in wait.waits if w != 300.0]
    ceilings = [5, 10, 20, 40, 60, 60]
    for delay, ceiling in zip(fast, ceilings, strict=False):
        assert ceiling / 2 <= delay <= ceiling
    assert all(d <= 60 for d in fast)
    assert sum(fast) < 1800.0 + 60  # the fast phase ends at [service] retry_s
    slow = wait.waits[len(fast):]
    assert slow and set(slow) == {300.0}
    assert clock.now >= works_at and clock.now - works_at <= 300.0


def test_service_settings_set_the_pace():
    clock = Clock(START)
    attempt_starts = []

    def attempt():
        attempt_starts.append(clock.now - START)
        raise NodeDown("node http://192.168.1.159:5002 did not answer")

    stop = threading.Event()
    loop, wait = make_loop(attempt, clock, settings=ServiceSettings(retry_s=30, slow_retry_s=7),
                           stop=stop)

    def stop_after_ten(seconds):
        wait.waits.append(seconds)
        clock.now += seconds
        if len(wait.waits) == 10:
            stop.set()
        return stop.is_set()

    loop._wait = stop_after_ten
    assert loop.rotate() is RotationEnd.STOPPED
    assert wait.waits[-1] == 7.0 and wait.waits.count(7.0) >= 5
    assert loop.attempts == 10


def test_publish_failing_then_succeeding():
    clock = Clock(START)
    results = iter([NotConfirmed("node never reported the new code back"),
                    NotConfirmed("node never reported the new code back"), OUTCOME])

    def attempt():
        clock.now += Deadlines().confirm_s
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return result

    state, reports = MemoryState(), RecordingReports()
    loop, wait = make_loop(attempt, clock, state=state, reports=reports)
    assert loop.rotate() is RotationEnd.ROTATED
    assert loop.attempts == 3
    assert 2.5 <= wait.waits[0] <= 5 and 5 <= wait.waits[1] <= 10
    assert [s["result"] for s in state.statuses] == ["retrying", "retrying", "ok"]
    assert [s["attempt"] for s in state.statuses] == [1, 2, 3]
    assert state.statuses[1]["error"] == "not_confirmed"
    assert reports.recorded == [("NotConfirmed", 1), ("NotConfirmed", 2)]


def test_config_error_ends_retrying_and_the_loop_stays_idle(caplog):
    clock = Clock(START)
    calls = []

    def attempt():
        calls.append(clock.now)
        raise ConfigError("cannot read [server] key_file /etc/bm-hook/server.key: No such file")

    state, reports = MemoryState(), RecordingReports()
    loop, wait = make_loop(attempt, clock, state=state, reports=reports)
    wait.idle_left = 3
    with caplog.at_level(logging.INFO, logger="boot_hooks"):
        assert loop.run() is RotationEnd.GAVE_UP
    assert len(calls) == 1
    assert wait.waits == [IDLE_WAKE_S] * 3  # idle, no retry
    [status] = state.statuses
    assert status["result"] == "failed" and status["exit_code"] == 2 and status["error"] == "config"
    assert "server.key" in status["message"]
    assert reports.recorded == [("ConfigError", 1)] and len(reports.flushes) == 1
    assert "attempt 1 failed (exit 2, config)" in caplog.text and "not retrying" in caplog.text
    assert "resident: idle until stopped" in caplog.text


def test_unexpected_exception_is_logged_with_traceback_and_retried(caplog):
    clock = Clock(START)
    outcomes = iter([ValueError("bad frame 0x00 from the SDK"), SdkTimeout("no answer"), OUTCOME])

    def attempt():
        result = next(outcomes)
        if isinstance(result, Exception):
            raise result
        return result

    state = MemoryState()
    loop, _wait = make_loop(attempt, clock, state=state)
    with caplog.at_level(logging.INFO, logger="boot_hooks"):
        assert loop.rotate() is RotationEnd.ROTATED
    assert loop.attempts == 3
    assert "attempt 1: internal error (a bug)" in caplog.text
    assert "Traceback" in caplog.text and "ValueError: bad frame" in caplog.text
    first = state.statuses[0]
    assert (first["result"], first["exit_code"], first["error"]) == ("retrying", 1, "internal")
    # The status holds the type only: an unexpected exception's text is not vetted.
    assert "ValueError" in first["message"] and "bad frame" not in first["message"]
    assert state.statuses[1]["error"] == "deeplink_unreachable"


def test_one_log_line_per_attempt(caplog):
    clock = Clock(START)
    attempt = DeepLinkPipeAppearsLate(clock, appears_after=180.0)
    loop, wait = make_loop(attempt, clock)
    with caplog.at_level(logging.INFO, logger="boot_hooks"):
        loop.rotate()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("attempt ")]
    assert len(lines) == 2
    assert lines[0].startswith("attempt 1 failed (exit 4, deeplink_unreachable): cannot open")
    assert lines[0].endswith(f"next try in {wait.waits[0]:.1f} s")
    assert lines[1].startswith("attempt 2 done: node " + "ab" * 32) and "...5678" in lines[1]


def test_status_has_the_planned_fields():
    clock = Clock(START)
    state = MemoryState()
    loop, _ = make_loop(lambda: OUTCOME, clock, state=state)
    loop.rotate()
    [status] = state.statuses
    assert set(status) == {"result", "exit_code", "error", "message", "attempt", "at"}
    assert status["result"] == "ok" and status["exit_code"] == 0 and status["error"] == "ok"
    assert status["at"].endswith("+00:00")


def test_sinks_that_raise_do_not_kill_the_loop(caplog):
    clock = Clock(START)
    outcomes = iter([NodeDown("down"), OUTCOME])

    def attempt():
        result = next(outcomes)
        if isinstance(result, Exception):
            raise result
        return result

    class BrokenReports:
        def record(self, error, attempt):
            raise RuntimeError("queue broken")

        def flush(self, timeout_s):
            raise RuntimeError("flush broken")

    loop, _ = make_loop(attempt, clock, state=MemoryState(fail=True), reports=BrokenReports())
    with caplog.at_level(logging.INFO, logger="boot_hooks"):
        assert loop.rotate() is RotationEnd.ROTATED
    assert "cannot write the status" in caplog.text and "cannot flush" in caplog.text


def test_no_reports_sends_nothing():
    sink = NoReports()
    sink.record(NodeDown("x"), 1)
    assert sink.flush(1.0) == 0


# --- real threads: stop is prompt -----------------------------------------------------

def test_stop_during_a_backoff_returns_promptly():
    stop = threading.Event()
    failed_once = threading.Event()

    def attempt():
        failed_once.set()
        raise NodeDown("down")

    loop = ResidentLoop(attempt, reports=NoReports(), state=MemoryState(),
                        settings=ServiceSettings(), stop=stop)
    result = {}
    runner = threading.Thread(target=lambda: result.update(code=run_until_stopped(loop, stop)))
    runner.start()
    assert failed_once.wait(5)
    time.sleep(0.2)  # inside the first backoff (2.5..5 s)
    asked = time.monotonic()
    stop.set()
    runner.join(5)
    assert not runner.is_alive() and result["code"] == 0
    assert time.monotonic() - asked < 1.0
    assert loop.attempts == 1


def test_stop_during_an_attempt_abandons_it_after_the_grace(caplog):
    stop, release, entered = threading.Event(), threading.Event(), threading.Event()

    def attempt():
        entered.set()
        release.wait(30)  # an attempt stuck in a step deadline
        return OUTCOME

    loop = ResidentLoop(attempt, reports=NoReports(), state=MemoryState(),
                        settings=ServiceSettings(), stop=stop)
    stop_soon = threading.Timer(0.3, stop.set)
    stop_soon.start()
    try:
        started = time.monotonic()
        with caplog.at_level(logging.INFO, logger="boot_hooks"):
            assert run_until_stopped(loop, stop, grace_s=0.2) == 0
        assert time.monotonic() - started < 2.0
        assert entered.is_set() and "stopping during attempt 1: abandoned" in caplog.text
    finally:
        release.set()
        stop_soon.cancel()


def test_a_signal_request_stops_the_idle_loop():
    stop = threading.Event()
    requested = []
    loop = ResidentLoop(lambda: OUTCOME, reports=NoReports(), state=MemoryState(),
                        settings=ServiceSettings(), stop=stop)
    threading.Timer(0.3, lambda: requested.append(15)).start()
    started = time.monotonic()
    assert run_until_stopped(loop, stop, signalled=lambda: bool(requested)) == 0
    assert time.monotonic() - started < 2.0 and loop.attempts == 1 and stop.is_set()


def test_a_loop_that_dies_gives_exit_1():
    class DyingLoop:
        attempts = 0

        def run(self):
            raise RuntimeError("bug in the loop itself")

    stop = threading.Event()
    assert run_until_stopped(DyingLoop(), stop) == ExitCode.INTERNAL
    assert stop.is_set()


def test_per_machine_disk_mounted_late_is_retried_not_given_up():
    # The seat key lives in [state] dir; the disk holding it is mounted 40 s after start.
    clock = Clock(START)

    def attempt():
        if clock.now < START + 40:
            clock.now += 1
            raise StateUnavailable(r"[state] dir E:\bm-hook is not usable (no such drive)")
        return OUTCOME

    state = MemoryState()
    loop, _wait = make_loop(attempt, clock, state=state)
    assert loop.run() is RotationEnd.ROTATED
    assert loop.attempts > 2
    assert [s["result"] for s in state.statuses][-1] == "ok"
    assert {s["error"] for s in state.statuses[:-1]} == {"config"}


def test_state_keeper_reopens_the_dir_once_it_becomes_usable(tmp_path):
    disk = tmp_path / "disk"  # the per-machine disk: absent at first
    config = HookConfig(node_url="http://127.0.0.1:9", key_file="/k", state_dir=str(disk / "bm-hook"))
    keeper = StateKeeper(config, SecretFilter())
    first = keeper.current()
    assert not first.persistent and first.unusable
    keeper.write_status({"result": "retrying"})
    assert not (disk / "bm-hook" / "status.json").exists()
    disk.mkdir()
    second = keeper.current()
    assert second.persistent and second is keeper.current()
    keeper.write_status({"result": "ok"})
    assert json.loads((disk / "bm-hook" / "status.json").read_text()) == {"result": "ok"}
    assert (disk / "bm-hook" / "bm-hook.log").exists()
