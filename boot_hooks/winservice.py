r"""``bm-hook --service``: the Windows service ``bm-hook`` (pywin32), running the resident loop.

The Service Control Manager starts ``"<InstallDir>\bm-hook.exe" --service --config FILE``;
:func:`run_service` hands the process to it (``servicemanager.PrepareToHostSingle`` +
``StartServiceCtrlDispatcher``). The service thread's ``SvcDoRun`` runs the same loop as
``--resident`` (:mod:`boot_hooks.resident`); ``SvcStop`` / ``SvcShutdown`` report
STOP_PENDING and set the stop event. When the loop dies (or the config cannot be loaded)
``SvcDoRun`` raises, and pywin32 reports SERVICE_STOPPED with a non-zero exit code
(``ERROR_SERVICE_SPECIFIC_ERROR``): the SCM's recovery actions, with the failure-actions
flag for non-crash failures (``sc.exe failureflag bm-hook 1``), then restart it.

The logic lives in :class:`ResidentService`, plain Python; :func:`service_class` only
adapts it to ``win32serviceutil.ServiceFramework``. pywin32 is imported lazily, so this
module imports (and is unit-tested) where pywin32 is absent.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import Any

from boot_hooks.errors import ExitCode
from boot_hooks.logs import SecretFilter
from boot_hooks.resident import build_loop, load_logged, run_until_stopped

__all__ = [
    "DISPLAY_NAME",
    "SERVICE_NAME",
    "ResidentService",
    "ServiceFailed",
    "pywin32_available",
    "run_service",
    "service_class",
]

_LOGGER = logging.getLogger(__name__)

SERVICE_NAME = "bm-hook"
DISPLAY_NAME = "bm-hook (DeepLink code rotation)"
DESCRIPTION = ("Gives this PC a fresh DeepLink verification code at every boot and publishes "
               "it through the DBC node; retries until it works, then stays resident.")
STOP_WAIT_HINT_MS = 15_000  # covers the resident loop's stop grace
# StartServiceCtrlDispatcher outside the SCM (someone ran --service by hand).
ERROR_FAILED_SERVICE_CONTROLLER_CONNECT = 1063

BuildLoop = Callable[..., Any]


class ServiceFailed(Exception):
    """The service's run ended with a non-zero exit code (pywin32 then reports an error stop)."""

    def __init__(self, exit_code: int) -> None:
        """Keep the exit code of the failed run."""
        super().__init__(f"bm-hook service stopped with exit code {exit_code}")
        self.exit_code = exit_code


def _load_pywin32() -> SimpleNamespace | None:
    try:
        import servicemanager
        import win32service
        import win32serviceutil
    except ImportError:
        return None
    return SimpleNamespace(servicemanager=servicemanager, win32service=win32service,
                           win32serviceutil=win32serviceutil)


def pywin32_available() -> bool:
    """Tell whether pywin32's service modules can be imported here."""
    return _load_pywin32() is not None


class ResidentService:
    """The service's body without pywin32: load the config, run the loop, stop on request."""

    def __init__(self, config_path: str, secret_filter: SecretFilter,
                 build: BuildLoop = build_loop) -> None:
        """Prepare; nothing runs before :meth:`run`."""
        self.config_path = config_path
        self.secret_filter = secret_filter
        self.stop_event = threading.Event()
        self._build = build

    def run(self) -> int:
        """Run the resident loop until :meth:`stop`; return the exit code (0 = clean stop)."""
        config = load_logged(self.config_path)
        if isinstance(config, ExitCode):
            return int(config)
        _LOGGER.info("start: service %s, %s mode, sdk %s", SERVICE_NAME, config.mode, config.sdk)
        loop = self._build(config, self.secret_filter, self.stop_event)
        return run_until_stopped(loop, self.stop_event)

    def stop(self) -> None:
        """Ask the loop to stop (called from the SCM's control thread)."""
        _LOGGER.info("service: stop requested")
        self.stop_event.set()


def service_class(pywin32: Any, make_body: Callable[[], ResidentService]) -> type:
    """Return the ``ServiceFramework`` subclass that the SCM instantiates for ``bm-hook``."""
    win32service: ModuleType = pywin32.win32service
    servicemanager: ModuleType = pywin32.servicemanager

    class BmHookService(pywin32.win32serviceutil.ServiceFramework):  # type: ignore[misc]
        _svc_name_ = SERVICE_NAME
        _svc_display_name_ = DISPLAY_NAME
        _svc_description_ = DESCRIPTION

        def __init__(self, args: Any) -> None:
            super().__init__(args)
            self.body = make_body()

        def SvcStop(self) -> None:
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING,
                                     waitHint=STOP_WAIT_HINT_MS)
            self.body.stop()

        def SvcShutdown(self) -> None:
            self.SvcStop()

        def SvcDoRun(self) -> None:
            self.ReportServiceStatus(win32service.SERVICE_RUNNING)
            code = self.body.run()
            if code != 0:
                servicemanager.LogErrorMsg(f"{SERVICE_NAME} stopped with exit code {code}; "
                                           "see its log")
                raise ServiceFailed(code)

    return BmHookService


def run_service(config_path: str | None, secret_filter: SecretFilter, *,
                platform: str = sys.platform, build: BuildLoop = build_loop) -> int:
    """Hand this process to the SCM as the ``bm-hook`` service; return the exit code."""
    pywin32 = _load_pywin32() if platform == "win32" else None
    if pywin32 is None:
        _LOGGER.error("--service needs Windows with pywin32 (this is %s%s); run "
                      "`bm-hook --resident` instead (Linux: packaging/bm-hook.service)",
                      platform, "" if platform != "win32" else " without pywin32")
        return int(ExitCode.CONFIG)
    if not config_path:
        _LOGGER.error("--service needs --config FILE (the service's ImagePath passes it)")
        return int(ExitCode.CONFIG)
    body_config: str = config_path
    cls = service_class(pywin32, lambda: ResidentService(body_config, secret_filter, build))
    servicemanager = pywin32.servicemanager
    servicemanager.Initialize()
    servicemanager.PrepareToHostSingle(cls)
    try:
        servicemanager.StartServiceCtrlDispatcher()
    except Exception as exc:
        if getattr(exc, "winerror", None) == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT:
            _LOGGER.error("--service is for the Service Control Manager (`sc.exe start %s`); "
                          "to run in this console use `bm-hook --resident`", SERVICE_NAME)
            return int(ExitCode.CONFIG)
        _LOGGER.exception("the Service Control Manager dispatcher failed")
        return int(ExitCode.INTERNAL)
    return int(ExitCode.OK)
