"""The resident mode: rotate the DeepLink code, retrying over the whole time budget, then idle.

One *attempt* is exactly what a plain ``bm-hook`` run does (``run_agent`` / ``run_direct``
with their step deadlines). Its failure decides what comes next:

- ``ConfigError`` (exit 2) ends retrying: nothing heals it without a human. The process
  stays resident and idle; the failure is logged, written to the status and reported.
- everything else (exit 1, 3..8, and any unexpected exception, which is logged with its
  traceback and treated like exit 1) is retried: during the first ``[service] retry_s``
  with a backoff of 5 s doubling to 60 s with jitter, afterwards every
  ``[service] slow_retry_s``, forever, until an attempt succeeds.

After every attempt: one log line (attempt n, result, next try), ``state.write_status``,
on failure ``reports.record(error, n)``, then always ``reports.flush(timeout)``. Every wait
ends early when the stop event is set; a stop during an attempt abandons it after a short
grace (the loop runs in a daemon worker thread, see :func:`run_until_stopped`).
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from boot_hooks.config import HookConfig, ServiceSettings, load_config
from boot_hooks.errors import ConfigError, ExitCode, HookError, StateUnavailable
from boot_hooks.logs import SecretFilter, attach_rotating_log, mask_device_id
from boot_hooks.report import FailureReports
from boot_hooks.retry import Backoff
from boot_hooks.state import HookState, open_state

if TYPE_CHECKING:
    from boot_hooks.direct_flow import Outcome

__all__ = [
    "FailureSink",
    "NoReports",
    "ResidentLoop",
    "RotationEnd",
    "StatusSink",
    "build_loop",
    "load_logged",
    "main_resident",
    "rotate_once",
    "run_until_stopped",
]

_LOGGER = logging.getLogger(__name__)

FAST_FIRST_S = 5.0  # first wait of the fast phase ...
FAST_MAX_S = 60.0  # ... doubling up to this, each with jitter (half to full)
REPORT_FLUSH_S = 10.0  # longest a flush of failure reports may block after an attempt
IDLE_WAKE_S = 3600.0  # idle: wake this often (the seats issue gives the idle phase work)
STOP_GRACE_S = 5.0  # on stop, wait this long for a running attempt before abandoning it
_POLL_S = 0.1  # the controlling thread's poll of the stop request

Remember = Callable[[str], None]
Wait = Callable[[float], bool]  # wait up to s seconds; True when stopped


class FailureSink(Protocol):
    """Where failed attempts are reported (the agent, via ``boot_hooks.report``)."""

    def record(self, error: BaseException, attempt: int) -> None:
        """Queue one failure; never raises."""

    def flush(self, timeout_s: float) -> int:
        """Send what is queued within ``timeout_s``; return how many were sent; never raises."""


class StatusSink(Protocol):
    """The part of the hook's state the loop uses: ``status.json``."""

    def write_status(self, status: Mapping[str, Any]) -> None:
        """Keep the latest attempt's status; never raises."""


class NoReports:
    """A :class:`FailureSink` that sends nothing (the log already has every failure)."""

    def record(self, error: BaseException, attempt: int) -> None:
        """Drop the failure."""

    def flush(self, timeout_s: float) -> int:
        """Send nothing."""
        return 0


class RotationEnd(enum.Enum):
    """How the rotation phase of the resident loop ended."""

    ROTATED = "rotated"  # an attempt succeeded
    GAVE_UP = "gave_up"  # a configuration error: retrying cannot help
    STOPPED = "stopped"  # the stop event was set first


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ResidentLoop:
    """Rotation attempts with retries over the whole time budget, then idle until stopped."""

    def __init__(
        self,
        attempt: Callable[[], Outcome],
        *,
        reports: FailureSink,
        state: StatusSink,
        settings: ServiceSettings,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
        wait: Wait | None = None,
        now: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        """Wire the loop; ``clock``, ``wait`` and ``now`` are seams for tests."""
        self._attempt = attempt
        self._reports = reports
        self._state = state
        self._settings = settings
        self._stop = stop
        self._clock = clock
        self._wait = wait if wait is not None else stop.wait
        self._now = now
        self._backoff = Backoff(first_s=FAST_FIRST_S, max_s=FAST_MAX_S)
        self._slow = False
        self.attempts = 0

    def run(self) -> RotationEnd:
        """Rotate (with retries), then stay idle until the stop event is set."""
        end = self.rotate()
        if end is not RotationEnd.STOPPED:
            _LOGGER.info("resident: idle until stopped")
            while not self._wait(IDLE_WAKE_S):
                pass
        _LOGGER.info("resident: stopped after %d attempt(s)", self.attempts)
        return end

    def rotate(self) -> RotationEnd:
        """Attempt until one succeeds, a configuration error, or the stop event."""
        started = self._clock()
        while not self._stop.is_set():
            self.attempts += 1
            outcome, error = self._try_once()
            if error is None:
                assert outcome is not None
                self._succeeded(outcome)
                return RotationEnd.ROTATED
            if isinstance(error, ConfigError) and not isinstance(error, StateUnavailable):
                self._gave_up(error)
                return RotationEnd.GAVE_UP
            delay = self._next_delay(started)
            self._failed(error, delay)
            if self._wait(delay):
                break
        return RotationEnd.STOPPED

    def _try_once(self) -> tuple[Outcome | None, BaseException | None]:
        try:
            return self._attempt(), None
        except HookError as exc:
            return None, exc
        except Exception as exc:  # the loop never dies: a bug is retried like exit 1
            _LOGGER.exception("attempt %d: internal error (a bug)", self.attempts)
            return None, exc

    def _next_delay(self, started: float) -> float:
        if self._clock() - started < self._settings.retry_s:
            return self._backoff.next_delay()
        if not self._slow:
            self._slow = True
            _LOGGER.warning("fast retries over after %.0f s; retrying every %.0f s until it works",
                            self._settings.retry_s, self._settings.slow_retry_s)
        return self._settings.slow_retry_s

    def _succeeded(self, outcome: Outcome) -> None:
        message = (f"node {outcome.node_id} reports the new code for device "
                   f"{mask_device_id(outcome.device_id)}")
        _LOGGER.info("attempt %d done: %s (%.3f s)", self.attempts, message, outcome.elapsed_s)
        self._after_attempt("ok", ExitCode.OK, message, None)

    def _gave_up(self, error: ConfigError) -> None:
        _LOGGER.error("attempt %d failed (exit %d, %s): %s; not retrying: fix the configuration, "
                      "then restart bm-hook", self.attempts, error.exit_code,
                      error.exit_code.name.lower(), error)
        self._after_attempt("failed", error.exit_code, str(error), error)

    def _failed(self, error: BaseException, delay: float) -> None:
        code = error.exit_code if isinstance(error, HookError) else ExitCode.INTERNAL
        message = _message(error)
        _LOGGER.error("attempt %d failed (exit %d, %s): %s; next try in %.1f s",
                      self.attempts, code, code.name.lower(), message, delay)
        self._after_attempt("retrying", code, message, error)

    def _after_attempt(self, result: str, code: ExitCode, message: str,
                       error: BaseException | None) -> None:
        status = {"result": result, "exit_code": int(code), "error": code.name.lower(),
                  "message": message, "attempt": self.attempts,
                  "at": self._now().isoformat(timespec="seconds")}
        _guarded("write the status", self._state.write_status, status)
        if error is not None:
            _guarded("record the failure report", self._reports.record, error, self.attempts)
        _guarded("flush the failure reports", self._reports.flush, REPORT_FLUSH_S)


def _message(error: BaseException) -> str:
    if isinstance(error, HookError):
        return str(error)
    # An unexpected exception's text is not vetted like HookError messages: name only.
    return f"internal error ({type(error).__name__}); the log has the traceback"


def _guarded(what: str, call: Callable[..., object], *args: Any) -> None:
    # The sinks promise never to raise; the loop does not bet its life on it.
    try:
        call(*args)
    except Exception:
        _LOGGER.exception("cannot %s", what)


def run_until_stopped(loop: ResidentLoop, stop: threading.Event, *,
                      signalled: Callable[[], bool] = lambda: False,
                      grace_s: float = STOP_GRACE_S) -> int:
    """Run ``loop`` in a worker thread until ``stop`` (or ``signalled()``); return the exit code.

    0 on a stop (an attempt still running after ``grace_s`` is abandoned: the worker is a
    daemon thread); 1 when the loop itself raised (the worker then sets ``stop``).
    """
    crashed: list[BaseException] = []

    def work() -> None:
        try:
            loop.run()
        except BaseException as exc:
            crashed.append(exc)
            _LOGGER.critical("resident loop died", exc_info=True)
        finally:
            stop.set()

    worker = threading.Thread(target=work, name="bm-hook-resident", daemon=True)
    worker.start()
    # Polled, not stop.wait(): a signal handler calling Event.set() can deadlock against a
    # wait holding the same lock in this thread, and Windows cannot interrupt a bare wait.
    while not (stop.is_set() or signalled()):
        time.sleep(_POLL_S)
    stop.set()
    worker.join(grace_s)
    if crashed:
        return int(ExitCode.INTERNAL)
    if worker.is_alive():
        _LOGGER.warning("stopping during attempt %d: abandoned", loop.attempts)
    return int(ExitCode.OK)


def rotate_once(config: HookConfig, remember_secret: Remember, state: HookState) -> Outcome:
    """Make one rotation attempt: what a plain ``bm-hook`` run does."""
    if config.mode == "agent":
        from boot_hooks.agent_flow import run_agent

        return run_agent(config, remember_secret, state)
    from boot_hooks.direct_flow import run_direct

    return run_direct(config, remember_secret, state)


class StateKeeper:
    """The hook's state for a long-running process: opened again while its dir is unusable.

    A plain run opens ``[state] dir`` once. The resident mode lives for the whole boot, and
    the per-machine disk may be mounted after it starts: until the dir is usable every
    attempt tries again (and the rotating log is attached the first time it is).
    """

    def __init__(self, config: HookConfig, secret_filter: SecretFilter,
                 opener: Callable[[HookConfig], HookState] = open_state) -> None:
        """Remember how to open the state; nothing is opened yet."""
        self._config, self._filter, self._open = config, secret_filter, opener
        self._state: HookState | None = None

    def current(self) -> HookState:
        """Return the state, re-opening it if its dir was not usable last time."""
        if self._state is None or self._state.unusable:
            self._state = self._open(self._config)
            if self._state.log_path:
                attach_rotating_log(self._state.log_path, self._filter)
        return self._state

    def write_status(self, status: Mapping[str, Any]) -> None:
        """Keep the latest attempt's status in the current state; never raises."""
        if self._state is not None:
            self._state.write_status(status)


def build_loop(config: HookConfig, secret_filter: SecretFilter,
               stop: threading.Event) -> ResidentLoop:
    """Wire the resident loop: one attempt, the status sink, the failure reports."""
    keeper = StateKeeper(config, secret_filter)
    reports: FailureSink = FailureReports(config, secret_filter.add)
    return ResidentLoop(lambda: rotate_once(config, secret_filter.add, keeper.current()),
                        reports=reports, state=keeper, settings=config.service, stop=stop)


def load_logged(config_path: str | None) -> HookConfig | ExitCode:
    """Load the config of a long-running mode, or log why not and return the exit code."""
    try:
        return load_config(config_path, os.environ)
    except ConfigError as exc:
        _LOGGER.error("failed (exit %d, %s): %s", exc.exit_code, exc.exit_code.name, exc)
        return exc.exit_code
    except Exception:
        _LOGGER.exception("internal error")
        return ExitCode.INTERNAL


def main_resident(config_path: str | None, secret_filter: SecretFilter) -> int:
    """Run ``bm-hook --resident``: load the config, loop until SIGTERM/SIGINT; exit code."""
    config = load_logged(config_path)
    if isinstance(config, ExitCode):
        return int(config)
    stop = threading.Event()
    signalled: list[int] = []  # the handler only appends: it must not take a lock
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: signalled.append(number))
    _LOGGER.info("start: resident, %s mode, sdk %s, fast retries for %.0f s, then every %.0f s",
                 config.mode, config.sdk, config.service.retry_s, config.service.slow_retry_s)
    code = run_until_stopped(build_loop(config, secret_filter, stop), stop,
                             signalled=lambda: bool(signalled))
    _LOGGER.info("resident: exit %d%s", code, " on signal" if signalled else "")
    return code
