"""Staff actions straight through IPMI: power on/off/soft/reset and boot device.

The DBC node refuses power for machines that are not rented (docs/protocol.md §3.6, §4.4), so
staff act on the BMC directly. For each server, in order:

1. take the server's lock without waiting: a server with an action in flight gets result
   ``conflict`` (a single-server call raises ``ActionInProgress``, a ``Conflict``: 409);
2. record the staff intent in the store first, so the monitor reports ``transitioning``
   instead of a mismatch while the action runs;
3. send the IPMI command (per-call deadline ``[check] deadline_s``);
4. read back every ``[actions] verify_interval_s`` until the new state holds or
   ``[actions] verify_deadline_s`` has passed: ``verified`` or ``unverified``, with the
   last reading;
5. append the audit event (who, what, result, reading) durably, then answer: an action that
   was acknowledged is recorded. The lock is released after the event is written.

What "holds" means: ``on``/``reset`` -> power reads on; ``off``/``soft`` -> power reads off
(a soft shutdown needs the OS to cooperate: a machine that ignores ACPI stays on and the
result is ``unverified``, not an error); boot device -> the flags read back with the
valid bit and the requested device, persistence and UEFI bit. ``none`` (no override)
also holds when the BMC reports the valid bit clear. A BMC that keeps the selector but
reports the valid bit clear or drops the persistent/UEFI bit (ipmi_sim does both) gives
``unverified`` with the reading, which is the truth about that BMC.

Batches (``uuids`` or ``select(label="zone=vip")``) run in parallel on a pool of
``[check] pool_size`` threads, one result per server. The lock holds across processes
(``agent.actions.lock``): a CLI action on a server the service is acting on is a conflict.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from agent.actions.lock import ServerLocks, lock_file_for
from agent.config import Settings
from agent.errors import ActionInProgress, ServerNotFound, ValidationError
from agent.labels import parse_selector
from agent.metrics import Metrics
from agent.models import EventKind, Server
from agent.store import Store
from baremetal.errors import IpmiError
from baremetal.ipmi.client import DBC_BOOT_DEVICES, POWER_ACTIONS, BmcAddress, BmcClient, error_kind

__all__ = ["ActionReading", "ActionResult", "Actions"]

_LOGGER = logging.getLogger(__name__)
# Power action -> the power state that shows it took effect (and the staff intent).
_POWER_TARGET = {"on": "on", "off": "off", "soft": "off", "reset": "on"}


@dataclass(frozen=True)
class ActionReading:
    """The last read-back of an action (None fields: not read, or the read failed)."""

    power: str | None = None
    boot_device: str | None = None
    boot_selector: str | None = None
    boot_valid: bool | None = None
    boot_persistent: bool | None = None
    boot_uefi: bool | None = None
    error: str | None = None


@dataclass(frozen=True)
class ActionResult:
    """One server's outcome: ``ok`` = the BMC took the command; ``verified`` = read back.

    ``code``: ``verified``, ``unverified``, ``conflict``, ``not_found``, or ``ipmi_<kind>``
    (``ipmi_unreachable``, ``ipmi_timeout``, ``ipmi_auth``, ``ipmi_busy``,
    ``ipmi_unsupported``, ``ipmi_protocol``) when the command itself failed,
    ``bmc_settings_invalid`` (e.g. a password IPMI 2.0 cannot carry), ``failed`` for an
    internal error (logged).
    """

    uuid: str
    action: str
    ok: bool
    verified: bool
    code: str
    message: str
    reading: ActionReading | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (no secrets)."""
        data = asdict(self)
        data["reading"] = asdict(self.reading) if self.reading is not None else None
        return data


@dataclass(frozen=True)
class _Request:
    """What to do to each server: the audit name, the command and how to tell it holds."""

    action: str
    detail: dict[str, Any]
    send: Callable[[BmcAddress], object]
    read: Callable[[BmcAddress], ActionReading]
    holds: Callable[[ActionReading], bool]
    record_intent: Callable[[int, str], object]


class Actions:
    """Power and boot-device actions with per-server locks, read-back and audit."""

    def __init__(self, *, store: Store, bmc: BmcClient, settings: Settings, metrics: Metrics,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._store = store
        self._bmc = bmc
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._locks = ServerLocks.shared(lock_file_for(store.path))

    # --- public operations -------------------------------------------------------------

    def power(self, *, uuids: Sequence[str], action: str, actor: str) -> list[ActionResult]:
        """Power ``on``, ``off``, ``soft`` (ACPI shutdown) or ``reset`` each server."""
        if action not in POWER_ACTIONS:
            raise ValidationError(field="action", reason=f"must be one of {sorted(POWER_ACTIONS)}")
        deadline = self._settings.check.deadline_s
        target = _POWER_TARGET[action]
        request = _Request(
            action=f"power_{action}", detail={"command": action, "target": target},
            send=lambda addr: self._bmc.set_power(addr, action, deadline),
            read=self._read_power, holds=lambda r: r.power == target,
            record_intent=lambda sid, who: self._store.intents.set_power(
                server_id=sid, power=target, actor=who))
        return self._run(uuids, request, actor)

    def set_boot(self, *, uuids: Sequence[str], device: str, persistent: bool, uefi: bool,
                 actor: str) -> list[ActionResult]:
        """Set the boot device (DBC names: none pxe disk cdrom bios), one-time or persistent."""
        if device not in DBC_BOOT_DEVICES:
            raise ValidationError(field="device",
                                  reason=f"must be one of {sorted(DBC_BOOT_DEVICES)}")
        deadline = self._settings.check.deadline_s
        request = _Request(
            action="bootdev",
            detail={"device": device, "persistent": persistent, "uefi": uefi},
            send=lambda addr: self._bmc.set_boot(addr, device, persistent=persistent, uefi=uefi,
                                                 deadline_s=deadline),
            read=self._read_boot, holds=lambda r: _boot_holds(r, device, persistent, uefi),
            record_intent=lambda sid, who: self._store.intents.set_boot(
                server_id=sid, device=device, persistent=persistent, uefi=uefi, actor=who))
        return self._run(uuids, request, actor)

    def select(self, *, uuids: Sequence[str] = (), label: str | None = None) -> list[str]:
        """Resolve ids (uuid or node_id) and a label selection into uuids, in order, unique.

        An unknown id raises ``ServerNotFound`` (nothing is done to a partial selection);
        a label that matches nothing adds nothing.
        """
        chosen: dict[str, None] = {}
        for ident in uuids:
            chosen[self._resolve(ident).uuid] = None
        if label is not None:
            for server in self._store.servers.find(labels=parse_selector(label)):
                chosen[server.uuid] = None
        return list(chosen)

    def in_flight(self) -> dict[str, str]:
        """Return the servers with an action in progress (uuid -> action)."""
        return self._locks.held()

    # --- machinery ---------------------------------------------------------------------

    def _resolve(self, ident: str) -> Server:
        try:
            return self._store.servers.get_by_uuid(uuid=ident)
        except ServerNotFound:
            return self._store.servers.get_by_node_id(node_id=ident)

    def _run(self, uuids: Sequence[str], request: _Request, actor: str) -> list[ActionResult]:
        if isinstance(uuids, str):
            raise ValidationError(field="uuids", reason="a list of server uuids, not a string")
        wanted = list(dict.fromkeys(uuids))
        if len(wanted) == 1:
            result = self._one(wanted[0], request, actor, single=True)
            if result.code == "not_found":
                raise ServerNotFound(wanted[0])
            return [result]
        if not wanted:
            return []
        size = min(self._settings.check.pool_size, len(wanted))
        with concurrent.futures.ThreadPoolExecutor(size, thread_name_prefix="action") as pool:
            return list(pool.map(lambda uuid: self._one(uuid, request, actor), wanted))

    def _one(self, uuid: str, request: _Request, actor: str, *,
             single: bool = False) -> ActionResult:
        holder = self._acquire(uuid, request.action)
        if holder is not None:
            result = ActionResult(uuid, request.action, False, False, "conflict",
                                  f"another action is in progress on this server: {holder}")
            self._finish(result, request, actor, 0.0)
            if single:
                raise ActionInProgress(server=uuid, action=holder)
            return result
        started = time.monotonic()
        try:
            try:
                result = self._act(uuid, request, actor)
            except Exception as exc:
                _LOGGER.exception("action %s on %s failed", request.action, uuid)
                result = ActionResult(uuid, request.action, False, False, "failed",
                                      f"internal error: {type(exc).__name__}")
            return self._finish(result, request, actor, time.monotonic() - started)
        finally:
            self._release(uuid)

    def _act(self, uuid: str, request: _Request, actor: str) -> ActionResult:
        try:
            server = self._store.servers.get_by_uuid(uuid=uuid)
        except ServerNotFound:
            return ActionResult(uuid, request.action, False, False, "not_found",
                                f"server {uuid} not found")
        creds = self._store.servers.credentials(server_id=server.id)
        try:
            addr = BmcAddress(host=creds.ipmi_host, port=creds.ipmi_port or 623,
                              username=creds.ipmi_user, password=creds.ipmi_password.reveal())
        except ValueError as exc:  # e.g. a password longer than IPMI 2.0 allows
            return ActionResult(uuid, request.action, False, False, "bmc_settings_invalid",
                                f"the stored BMC settings cannot be used: {exc}")
        request.record_intent(server.id, actor)
        try:
            request.send(addr)
        except IpmiError as exc:
            kind = error_kind(exc)
            return ActionResult(uuid, request.action, False, False, f"ipmi_{kind}", str(exc),
                                ActionReading(error=kind))
        reading = self._read_back(addr, request)
        if request.holds(reading):
            return ActionResult(uuid, request.action, True, True, "verified",
                                "the BMC reports the requested state", reading)
        wait = self._settings.actions.verify_deadline_s
        return ActionResult(uuid, request.action, True, False, "unverified",
                            f"the BMC took the command but does not report the requested "
                            f"state after {wait:g} s", reading)

    def _read_back(self, addr: BmcAddress, request: _Request) -> ActionReading:
        settings = self._settings.actions
        end = time.monotonic() + settings.verify_deadline_s
        while True:
            reading = request.read(addr)
            if request.holds(reading) or time.monotonic() + settings.verify_interval_s > end:
                return reading
            self._sleep(settings.verify_interval_s)

    def _read_power(self, addr: BmcAddress) -> ActionReading:
        try:
            return ActionReading(power=str(self._bmc.read_power(addr,
                                                                self._settings.check.deadline_s)))
        except IpmiError as exc:
            return ActionReading(error=error_kind(exc))

    def _read_boot(self, addr: BmcAddress) -> ActionReading:
        try:
            flags = self._bmc.read_boot(addr, self._settings.check.deadline_s)
        except IpmiError as exc:
            return ActionReading(error=error_kind(exc))
        # With the valid bit clear the BMC boots its default order; the selector it kept is
        # shown too, so staff can tell "dropped the valid bit" from "ignored the call".
        return ActionReading(boot_device=flags.device, boot_selector=_selector_name(
            flags.selector), boot_valid=flags.valid, boot_persistent=flags.persistent,
            boot_uefi=flags.uefi)

    def _finish(self, result: ActionResult, request: _Request, actor: str,
                seconds: float) -> ActionResult:
        outcome = result.code if result.code in ("verified", "unverified", "conflict",
                                                 "not_found") else "failed"
        detail = {**request.detail, "code": result.code, "message": result.message[:300],
                  "duration_s": round(seconds, 3),
                  "reading": asdict(result.reading) if result.reading else None}
        self._store.events.append(actor=actor, kind=EventKind.AUDIT, action=request.action,
                                  server_uuid=result.uuid, result=outcome,
                                  verified=result.verified, detail=detail)
        self._metrics.observe_action(request.action, outcome)
        _LOGGER.info("%s %s on %s: %s", actor, request.action, result.uuid, result.code)
        return result

    def _acquire(self, uuid: str, action: str) -> str | None:
        """Take the server's lock; return the holder's action when it is taken."""
        return self._locks.acquire(uuid, action)

    def _release(self, uuid: str) -> None:
        self._locks.release(uuid)


_SELECTOR_NAMES = {sel: name for name, sel in DBC_BOOT_DEVICES.items()}


def _selector_name(selector: int) -> str:
    return _SELECTOR_NAMES.get(selector, f"unknown:0x{selector:02x}")


def _boot_holds(reading: ActionReading, device: str, persistent: bool, uefi: bool) -> bool:
    if reading.error is not None or reading.boot_valid is None:
        return False
    if not reading.boot_valid:
        return device == "none"
    return (reading.boot_device == device and reading.boot_persistent == persistent
            and reading.boot_uefi == uefi)
