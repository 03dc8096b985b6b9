"""The Redfish power path (sushy): power state, ComputerSystem.Reset, boot source override.

One :class:`RedfishBackend` drives one seat's ComputerSystem, found by its URL
(``/redfish/v1/Systems/<id>``) or, when none is given, as the service's only system.

Every call is bounded twice: sushy's connector gets connect and read timeouts no longer
than the call's deadline (one try, no retry), and the whole call runs in a
worker thread the caller stops waiting for at the deadline (``PathTimeout``).

Authentication is a Redfish session when the service offers one, else HTTP Basic
(sushy's ``SessionOrBasicAuth``); :meth:`RedfishBackend.close` always logs the session
out. HTTPS certificates are verified unless ``ca_file`` names a CA bundle or ``insecure``
is set explicitly. Passwords never appear in messages, logs or ``repr``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
import sushy
from sushy import auth as sushy_auth
from sushy import exceptions as sushy_exc
from sushy.resources.constants import PowerState as RedfishPowerState
from sushy.resources.constants import ResetType
from sushy.resources.system import constants as sys_cons

from baremetal.errors import (
    InvalidInput,
    NotAvailableOnThisPath,
    PathAuthFailed,
    PathProtocolError,
    PathTimeout,
    PathUnreachable,
    PowerPathError,
)
from baremetal.power.backend import (
    BootSetting,
    Capabilities,
    Operation,
    PowerPath,
    PowerReading,
    PowerState,
)

__all__ = ["ONCE_READ_AS_CONTINUOUS", "RedfishBackend", "RedfishTarget"]

T = TypeVar("T")

_CONNECT_TIMEOUT_S = 3.0
ONCE_READ_AS_CONTINUOUS = (
    "a one-time boot override reads back as continuous: this BMC does not keep 'Once'; "
    "the device will stay selected until changed"
)

# DBC's boot device names (baremetal.ipmi.codec.BootFlags) <-> Redfish targets.
_TO_REDFISH: dict[str, sys_cons.BootSource] = {
    "pxe": sys_cons.BootSource.PXE,
    "disk": sys_cons.BootSource.HDD,
    "cdrom": sys_cons.BootSource.CD,
    "bios": sys_cons.BootSource.BIOS_SETUP,
    "default": sys_cons.BootSource.NONE,
}
_FROM_REDFISH = {target: name for name, target in _TO_REDFISH.items()}

_ALL_OPERATIONS = frozenset(Operation)


@dataclass(frozen=True, kw_only=True)
class RedfishTarget:
    """Where and how to reach one seat's Redfish service."""

    base_url: str  # https://bmc.example:443 (the /redfish/v1/ root is appended)
    username: str
    password: str = field(repr=False)
    system_path: str | None = None  # /redfish/v1/Systems/<id>; None: the only system
    ca_file: str | None = None
    insecure: bool = False

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("https://", "http://")):
            raise InvalidInput("Redfish base_url must start with https:// or http://")
        if self.insecure and self.ca_file:
            raise InvalidInput("Redfish: give either ca_file or insecure, not both")

    @property
    def verify(self) -> bool | str:
        """What requests' ``verify`` gets: a CA file, False when insecure, else True."""
        if self.insecure:
            return False
        return self.ca_file or True


class RedfishBackend:
    """A PowerBackend on one Redfish ComputerSystem."""

    def __init__(self, target: RedfishTarget) -> None:
        self._target = target
        self._root: sushy.Sushy | None = None
        self._auth: sushy_auth.SessionOrBasicAuth | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._asked_once: str | None = None  # the device last set as a one-time override

    def __repr__(self) -> str:
        return f"RedfishBackend({self._target.base_url!r}, system={self._target.system_path!r})"

    @property
    def capabilities(self) -> Capabilities:
        """Redfish does all seven operations."""
        return Capabilities(PowerPath.REDFISH, _ALL_OPERATIONS)

    def status(self, deadline_s: float) -> PowerReading:
        """Read the system's PowerState."""
        state = self._bounded(deadline_s, lambda: self._system(deadline_s).power_state)
        if state is None:  # missing or not a Redfish PowerState value
            raise PathProtocolError(self._target.base_url, "the system reports no PowerState")
        power = PowerState.ON if state in (RedfishPowerState.ON,
                                           RedfishPowerState.POWERING_OFF) else PowerState.OFF
        return PowerReading(power=power, path=PowerPath.REDFISH)

    def on(self, deadline_s: float) -> None:
        """ComputerSystem.Reset On."""
        self._reset(ResetType.ON, deadline_s)

    def off(self, deadline_s: float) -> None:
        """ComputerSystem.Reset ForceOff."""
        self._reset(ResetType.FORCE_OFF, deadline_s)

    def soft(self, deadline_s: float) -> None:
        """ComputerSystem.Reset GracefulShutdown."""
        self._reset(ResetType.GRACEFUL_SHUTDOWN, deadline_s)

    def reset(self, deadline_s: float) -> None:
        """ComputerSystem.Reset ForceRestart."""
        self._reset(ResetType.FORCE_RESTART, deadline_s)

    def boot_get(self, deadline_s: float) -> BootSetting:
        """Read the boot source override in DBC's names."""
        boot = self._bounded(deadline_s, lambda: self._system(deadline_s).boot)
        return _boot_setting(boot.target, boot.enabled, boot.mode, asked_once=self._asked_once)

    def boot_set(self, device: str, *, persistent: bool, uefi: bool,
                 deadline_s: float) -> None:
        """Set the boot source override (Once or Continuous, UEFI or Legacy)."""
        if device not in _TO_REDFISH:
            raise InvalidInput(f"unknown boot device {device!r}; one of {sorted(_TO_REDFISH)}")
        enabled = (sys_cons.BootSourceOverrideEnabled.CONTINUOUS if persistent
                   else sys_cons.BootSourceOverrideEnabled.ONCE)
        mode = (sys_cons.BootSourceOverrideMode.UEFI if uefi
                else sys_cons.BootSourceOverrideMode.LEGACY)

        if device == "default":  # no override: the BIOS's own order
            enabled = sys_cons.BootSourceOverrideEnabled.DISABLED

        def set_boot() -> None:
            target = None if device == "default" else _TO_REDFISH[device]
            self._system(deadline_s).set_system_boot_options(
                target=target, enabled=enabled, mode=mode)

        self._bounded(deadline_s, set_boot)
        self._asked_once = None if persistent else device

    def close(self) -> None:
        """Log the Redfish session out (if one was opened) and drop the connection."""
        with self._lock:  # waits for a connect under way, so its session is logged out too
            auth, root = self._auth, self._root
            self._auth = self._root = None
            self._closed = True
        if auth is not None:
            # Best effort: the BMC expires a session it could not be told about.
            with contextlib.suppress(sushy_exc.SushyError, requests.RequestException):
                auth.close()
        if root is not None:
            root._conn.close()

    # -- internals ---------------------------------------------------------------------

    def _reset(self, reset_type: ResetType, deadline_s: float) -> None:
        self._bounded(deadline_s, lambda: self._system(deadline_s).reset_system(reset_type))

    def _connect(self, deadline_s: float) -> sushy.Sushy:
        with self._lock:
            if self._closed:  # a worker that outlived its deadline must not log in again
                raise PathUnreachable(self._target.base_url, "the backend was closed")
            if self._root is None:
                target = self._target
                self._auth = sushy_auth.SessionOrBasicAuth(target.username, target.password)
                self._root = sushy.Sushy(
                    target.base_url, auth=self._auth, verify=target.verify,
                    server_side_retries=1, server_side_retries_delay=0.1,
                    read_timeout=deadline_s,
                    connect_timeout=min(_CONNECT_TIMEOUT_S, deadline_s))
            return self._root

    def _system(self, deadline_s: float) -> Any:
        root = self._connect(deadline_s)
        return root.get_system(self._target.system_path)

    def _bounded(self, deadline_s: float, call: Callable[[], T]) -> T:
        """Run ``call`` in a worker; give up at the deadline; map sushy's errors."""
        name = self._target.base_url
        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="redfish")
        try:
            future = pool.submit(_translated, name, call)
            try:
                return future.result(timeout=deadline_s)
            except concurrent.futures.TimeoutError:
                raise PathTimeout(name, f"no answer within {deadline_s:g} s") from None
        finally:
            pool.shutdown(wait=False)


def _translated(name: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except PowerPathError:
        raise
    except sushy_exc.AccessError:
        raise PathAuthFailed(name, "the Redfish service refused the user name or "
                                   "password (HTTP 401/403)") from None
    except sushy_exc.ConnectionError as exc:
        raise _connection_error(name, exc) from None
    except sushy_exc.UnknownDefaultError:
        raise PathProtocolError(name, "the service lists more or fewer than one system; "
                                      "give the system's URL") from None
    except sushy_exc.ResourceNotFoundError:
        raise PathProtocolError(name, "no such Redfish system (HTTP 404)") from None
    except sushy_exc.HTTPError as exc:
        raise PathProtocolError(name, f"HTTP {exc.status_code} from the Redfish "
                                      "service") from None
    except sushy_exc.InvalidParameterValueError:
        raise NotAvailableOnThisPath(name, "this Redfish system does not offer that value "
                                           "(not in its AllowableValues)") from None
    except sushy_exc.SushyError as exc:
        raise PathProtocolError(name, f"unexpected Redfish answer: "
                                      f"{type(exc).__name__}") from None
    except ValueError:  # invalid JSON
        raise PathProtocolError(name, "the Redfish service's answer is not JSON") from None
    except (AttributeError, KeyError, TypeError):
        # sushy trips over answers of an unexpected shape, e.g. {"error": "text"}.
        raise PathProtocolError(name, "the Redfish service's answer has an unexpected "
                                      "shape") from None


def _connection_error(name: str, exc: sushy_exc.ConnectionError) -> PowerPathError:
    cause = exc.__cause__ or exc.__context__
    text = str(exc)
    if isinstance(cause, requests.Timeout) or "timed out" in text.lower():
        return PathTimeout(name, "the Redfish service did not answer in time")
    if isinstance(cause, requests.exceptions.SSLError) or "SSL" in text:
        return PathUnreachable(name, "TLS failed: check the certificate, ca_file or "
                                     "the insecure flag")
    return PathUnreachable(name, "no answer from the Redfish service (refused, reset "
                                 "or no route)")


def _boot_setting(target: Any, enabled: Any, mode: Any, *, asked_once: str | None) -> BootSetting:
    notes: tuple[str, ...] = ()
    if enabled == sys_cons.BootSourceOverrideEnabled.DISABLED or target is None:
        device = "default"
    elif target in _FROM_REDFISH:
        device = _FROM_REDFISH[target]
    else:  # Usb, UefiHttp…: no DBC name
        device = "default"
        notes = (f"the override target {target.value} has no DBC boot device name",)
    persistent = enabled == sys_cons.BootSourceOverrideEnabled.CONTINUOUS
    # Tolerated, not a mismatch: sushy-tools (and some BMCs) keep every override continuous.
    if persistent and asked_once == device:
        notes = (*notes, ONCE_READ_AS_CONTINUOUS)
    return BootSetting(device=device, persistent=persistent,
                       uefi=mode == sys_cons.BootSourceOverrideMode.UEFI, notes=notes)

