"""The Windows service path with pywin32 absent (issue 12): the import guard, and the
run / stop / failure path through a labelled stand-in of pywin32's service framework
(tests/support/pywin32_standin.py) injected into sys.modules by these tests only."""

import logging
import os
import sys
import threading

import pytest

from boot_hooks.__main__ import main
from boot_hooks.config import ServiceSettings
from boot_hooks.direct_flow import Outcome
from boot_hooks.errors import ExitCode, NodeDown
from boot_hooks.logs import SecretFilter
from boot_hooks.resident import NoReports, ResidentLoop
from boot_hooks.winservice import (
    DISPLAY_NAME,
    SERVICE_NAME,
    ResidentService,
    pywin32_available,
    run_service,
)
from tests.support.pywin32_standin import Pywin32Standin

OUTCOME = Outcome("direct", "cd" * 32, "0.4.1.7", "721345678", 0.5)


@pytest.fixture(autouse=True)
def _no_env_overrides(monkeypatch):
    for name in list(os.environ):
        if name.startswith("BM_HOOK_"):
            monkeypatch.delenv(name)


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "hook.toml"
    path.write_text('[node]\nurl = "http://127.0.0.1:1"\n[server]\nkey_file = "/none"\n')
    return str(path)


class Attempts:
    """A fake rotation: the listed results in turn (exceptions raised), then success."""

    def __init__(self, *results):
        self.results = list(results)
        self.calls = 0
        self.succeeded = threading.Event()
        self.called = threading.Event()

    def __call__(self):
        self.calls += 1
        self.called.set()
        if self.results:
            result = self.results.pop(0)
            raise result
        self.succeeded.set()
        return OUTCOME


def fake_build(attempts):
    def build(config, remember_secret, stop):
        # Waits are real but short: the settings make every retry wait 0.05 s.
        return ResidentLoop(attempts, reports=NoReports(), state=_Status(),
                            settings=ServiceSettings(retry_s=1e-9, slow_retry_s=0.05), stop=stop)
    return build


class _Status:
    def write_status(self, status):
        pass


def start_service(standin, config_file, build):
    result = {}

    def dispatch():
        result["code"] = run_service(config_file, SecretFilter(), platform="win32", build=build)

    thread = threading.Thread(target=dispatch, daemon=True)
    thread.start()
    return thread, result


# --- the guard: pywin32 absent, not Windows ---------------------------------------------

LINUX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="pywin32 may be present")


@LINUX_ONLY
def test_pywin32_is_absent_here_and_the_module_imports():
    assert not pywin32_available()
    assert SERVICE_NAME == "bm-hook" and DISPLAY_NAME == "bm-hook (DeepLink code rotation)"


def test_service_flag_on_linux_exits_2_with_a_clear_message(config_file, capsys):
    assert main(["--service", "--config", config_file]) == ExitCode.CONFIG
    err = capsys.readouterr().err  # main() logs to stderr
    assert "--service needs Windows with pywin32 (this is linux)" in err
    assert "run `bm-hook --resident` instead" in err


def test_service_on_windows_without_pywin32_exits_2(config_file, caplog):
    with caplog.at_level(logging.ERROR):
        assert run_service(config_file, SecretFilter(), platform="win32") == ExitCode.CONFIG
    assert "without pywin32" in caplog.text


def test_resident_flag_with_a_bad_config_exits_2(tmp_path):
    path = tmp_path / "hook.toml"
    path.write_text("[service]\nretry_s = -1\n")
    assert main(["--resident", "--config", str(path)]) == ExitCode.CONFIG


# --- the service through the pywin32 stand-in -------------------------------------------

def test_service_runs_the_loop_and_stops_cleanly(monkeypatch, config_file):
    standin = Pywin32Standin()
    standin.install(monkeypatch)
    attempts = Attempts(NodeDown("node down"), NodeDown("node down"))
    thread, result = start_service(standin, config_file, fake_build(attempts))
    assert attempts.succeeded.wait(5), "the service never rotated"
    assert standin.running.is_set()
    assert standin.hosted._svc_name_ == "bm-hook"
    assert standin.hosted._svc_display_name_ == "bm-hook (DeepLink code rotation)"
    assert attempts.calls == 3
    assert thread.is_alive() and not standin.stopped.is_set()  # resident after the rotation
    standin.control(1)  # SERVICE_CONTROL_STOP
    thread.join(5)
    assert not thread.is_alive() and result["code"] == 0
    assert standin.states()[0] == "RUNNING"
    assert "STOP_PENDING" in standin.states()
    assert standin.statuses[-1] == ("STOPPED", 0, 0)
    assert standin.event_log == []


def test_shutdown_stops_it_too(monkeypatch, config_file):
    standin = Pywin32Standin()
    standin.install(monkeypatch)
    attempts = Attempts()
    thread, _result = start_service(standin, config_file, fake_build(attempts))
    assert attempts.succeeded.wait(5)
    standin.control(5)  # SERVICE_CONTROL_SHUTDOWN
    thread.join(5)
    assert standin.statuses[-1] == ("STOPPED", 0, 0)


def test_stop_during_the_backoff_is_prompt(monkeypatch, config_file):
    standin = Pywin32Standin()
    standin.install(monkeypatch)
    attempts = Attempts(*[NodeDown("node down")] * 1000)

    def slow_build(config, remember_secret, stop):
        return ResidentLoop(attempts, reports=NoReports(), state=_Status(),
                            settings=ServiceSettings(), stop=stop)  # backoff 2.5..5 s

    thread, result = start_service(standin, config_file, slow_build)
    assert standin.running.wait(5) and attempts.called.wait(5)
    standin.control(1)  # during the first backoff
    thread.join(1.5)
    assert not thread.is_alive() and result["code"] == 0
    assert attempts.calls == 1 and standin.statuses[-1] == ("STOPPED", 0, 0)


def test_a_dying_loop_stops_the_service_with_an_error_code(monkeypatch, config_file):
    standin = Pywin32Standin()
    standin.install(monkeypatch)

    class DyingLoop:
        attempts = 0

        def run(self):
            raise RuntimeError("bug in the loop itself")

    thread, _result = start_service(standin, config_file, lambda *_args: DyingLoop())
    assert standin.stopped.wait(5)
    thread.join(5)
    # Non-zero exit: the SCM's recovery (with the non-crash failure flag) restarts it.
    assert standin.statuses[-1] == ("STOPPED", 1066, 0x20000001)
    assert standin.event_log == ["bm-hook stopped with exit code 1; see its log"]


def test_an_unloadable_config_stops_the_service_with_an_error_code(monkeypatch, tmp_path):
    standin = Pywin32Standin()
    standin.install(monkeypatch)
    path = tmp_path / "hook.toml"
    path.write_text("[node\n")
    thread, _result = start_service(standin, str(path), fake_build(Attempts()))
    assert standin.stopped.wait(5)
    thread.join(5)
    assert standin.statuses[-1][1] != 0
    assert standin.event_log == ["bm-hook stopped with exit code 2; see its log"]


def test_service_flag_by_hand_explains_itself(monkeypatch, config_file, caplog):
    standin = Pywin32Standin(started_by_scm=False)
    standin.install(monkeypatch)
    with caplog.at_level(logging.ERROR):
        code = run_service(config_file, SecretFilter(), platform="win32")
    assert code == ExitCode.CONFIG
    assert "for the Service Control Manager" in caplog.text and "sc.exe start bm-hook" in caplog.text


def test_service_needs_a_config_path(monkeypatch, caplog):
    Pywin32Standin().install(monkeypatch)
    with caplog.at_level(logging.ERROR):
        assert run_service(None, SecretFilter(), platform="win32") == ExitCode.CONFIG
    assert "--service needs --config FILE" in caplog.text


def test_resident_service_body_alone(config_file):
    attempts = Attempts()
    body = ResidentService(config_file, lambda _s: None, build=fake_build(attempts))
    result = {}
    thread = threading.Thread(target=lambda: result.update(code=body.run()))
    thread.start()
    assert attempts.succeeded.wait(5)
    body.stop()
    thread.join(5)
    assert result["code"] == 0


@LINUX_ONLY
def test_the_standin_is_only_in_sys_modules_inside_a_test():
    assert "win32serviceutil" not in sys.modules and "servicemanager" not in sys.modules
