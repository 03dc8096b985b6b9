"""TEST SEAM, not pywin32: a minimal stand-in for the pywin32 surface boot_hooks.winservice uses.

pywin32 does not install on Linux, where CI runs. This models, from pywin32's sources
(win32/Lib/win32serviceutil.py, win32/src/PythonService.cpp), only what the service
path touches:

- ``win32serviceutil.ServiceFramework``: ``ReportServiceStatus`` (recorded here),
  ``ServiceCtrlHandlerEx`` (STOP -> ``SvcStop``, SHUTDOWN -> ``SvcShutdown``) and ``SvcRun``
  (report RUNNING, ``SvcDoRun()``, report STOP_PENDING);
- ``servicemanager``: ``Initialize``, ``PrepareToHostSingle``, ``LogErrorMsg`` and
  ``StartServiceCtrlDispatcher``, which, like the C host's ``service_main``, instantiates
  the class with ``(service_name,)``, calls ``SvcRun`` and then reports SERVICE_STOPPED:
  with exit code 0, or with ERROR_SERVICE_SPECIFIC_ERROR when ``SvcRun`` raised; outside
  the SCM it raises an error with ``winerror`` 1063;
- ``win32service``: the status and control constants (values from winsvc.h).

Tests install it with ``monkeypatch.setitem(sys.modules, ...)`` via :meth:`install`.
What it cannot show (the real SCM, recovery actions, the frozen exe) is verified on a
Windows PC (docs/hook.md).
"""

from __future__ import annotations

import threading
import types
from typing import Any

SERVICE_STOPPED, SERVICE_START_PENDING, SERVICE_STOP_PENDING, SERVICE_RUNNING = 1, 2, 3, 4
SERVICE_CONTROL_STOP, SERVICE_CONTROL_SHUTDOWN = 1, 5
ERROR_SERVICE_SPECIFIC_ERROR = 1066
ERROR_FAILED_SERVICE_CONTROLLER_CONNECT = 1063
NAMES = {SERVICE_STOPPED: "STOPPED", SERVICE_START_PENDING: "START_PENDING",
         SERVICE_STOP_PENDING: "STOP_PENDING", SERVICE_RUNNING: "RUNNING"}


class StandinError(Exception):
    """pywintypes.error's shape: ``winerror``, ``funcname``, ``strerror``."""

    def __init__(self, winerror: int, funcname: str, strerror: str) -> None:
        super().__init__(winerror, funcname, strerror)
        self.winerror, self.funcname, self.strerror = winerror, funcname, strerror


class Pywin32Standin:
    """One fake Service Control Manager and the three pywin32 modules talking to it."""

    def __init__(self, started_by_scm: bool = True) -> None:
        self.started_by_scm = started_by_scm
        self.statuses: list[tuple[str, int, int]] = []  # (state, win32 exit, service exit)
        self.event_log: list[str] = []
        self.hosted: Any = None
        self.instance: Any = None
        self.running = threading.Event()
        self.stopped = threading.Event()
        self.modules = {
            "win32service": self._win32service(),
            "win32serviceutil": self._win32serviceutil(),
            "servicemanager": self._servicemanager(),
        }

    def install(self, monkeypatch: Any) -> None:
        for name, module in self.modules.items():
            monkeypatch.setitem(__import__("sys").modules, name, module)

    def control(self, code: int) -> None:
        """Send a control as the SCM does (from another thread than the service's)."""
        self.instance.ServiceCtrlHandlerEx(code, 0, None)

    def states(self) -> list[str]:
        return [state for state, _, _ in self.statuses]

    def _report(self, state: int, win32_exit: int = 0, service_exit: int = 0) -> None:
        self.statuses.append((NAMES[state], win32_exit, service_exit))
        if state == SERVICE_RUNNING:
            self.running.set()

    # -- the modules ------------------------------------------------------------------
    def _win32service(self) -> types.ModuleType:
        module = types.ModuleType("win32service")
        for name, value in (("SERVICE_STOPPED", SERVICE_STOPPED),
                            ("SERVICE_START_PENDING", SERVICE_START_PENDING),
                            ("SERVICE_STOP_PENDING", SERVICE_STOP_PENDING),
                            ("SERVICE_RUNNING", SERVICE_RUNNING),
                            ("SERVICE_CONTROL_STOP", SERVICE_CONTROL_STOP),
                            ("SERVICE_CONTROL_SHUTDOWN", SERVICE_CONTROL_SHUTDOWN)):
            setattr(module, name, value)
        return module

    def _win32serviceutil(self) -> types.ModuleType:
        scm = self

        class ServiceFramework:
            def __init__(self, args: tuple[str, ...]) -> None:
                assert args[0] == self._svc_name_, "the SCM starts the service by its name"
                self.ssh = object()

            def ReportServiceStatus(self, serviceStatus: int, waitHint: int = 5000,
                                    win32ExitCode: int = 0, svcExitCode: int = 0) -> None:
                scm._report(serviceStatus, win32ExitCode, svcExitCode)

            def ServiceCtrlHandlerEx(self, control: int, event_type: int, data: Any) -> Any:
                if control == SERVICE_CONTROL_STOP:
                    return self.SvcStop()
                if control == SERVICE_CONTROL_SHUTDOWN:
                    return self.SvcShutdown()
                return None

            def SvcRun(self) -> None:
                self.ReportServiceStatus(SERVICE_RUNNING)
                self.SvcDoRun()
                self.ReportServiceStatus(SERVICE_STOP_PENDING)

        module = types.ModuleType("win32serviceutil")
        module.ServiceFramework = ServiceFramework  # type: ignore[attr-defined]
        return module

    def _servicemanager(self) -> types.ModuleType:
        scm = self
        module = types.ModuleType("servicemanager")

        def initialize(*_args: Any) -> None:
            return None

        def prepare_to_host_single(klass: Any) -> None:
            scm.hosted = klass

        def log_error_msg(message: str) -> None:
            scm.event_log.append(message)

        def start_service_ctrl_dispatcher() -> None:
            if not scm.started_by_scm:
                raise StandinError(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT,
                                   "StartServiceCtrlDispatcher",
                                   "The service process could not connect to the service "
                                   "controller.")
            scm.instance = scm.hosted((scm.hosted._svc_name_,))
            try:
                scm.instance.SvcRun()
            except Exception:
                scm._report(SERVICE_STOPPED, ERROR_SERVICE_SPECIFIC_ERROR, 0x20000001)
            else:
                scm._report(SERVICE_STOPPED)
            finally:
                scm.stopped.set()

        module.Initialize = initialize  # type: ignore[attr-defined]
        module.PrepareToHostSingle = prepare_to_host_single  # type: ignore[attr-defined]
        module.LogErrorMsg = log_error_msg  # type: ignore[attr-defined]
        module.StartServiceCtrlDispatcher = start_service_ctrl_dispatcher  # type: ignore[attr-defined]
        return module
