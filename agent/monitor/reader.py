"""Gather one server's observation for the cross-check: the only I/O of a monitor pass.

For one server, in order, each call bounded by the per-call deadline:

1. IPMI 2.0 through ``BmcClient``: chassis power, then raw boot flags. The first failure
   ends the IPMI part (after a timeout the BMC's lock is still held by the stuck call, so
   a second call would only wait out its own deadline).
2. Optionally the DBC-path probe: the exact ``ipmitool`` command the DBC node runs
   (IPMI 1.5 ``lan``, ``chassis power status``, docs/protocol.md §6.2) with the deadline as
   timeout (the node has none). Skipped when IPMI 2.0 found the BMC unreachable, timed out
   or busy (ipmitool would only burn its own timeout on it) and on a refused login
   (another wrong login only brings the BMC's account lockout closer, docs/ipmi.md §3.2).
3. Optionally DBC's own ``power_status`` through the client node: a manager-targeted
   one-server list (``bare_metal/<node_id>``, §3.1 case 3) makes the node run a live
   status and report it. Only for servers with a node_id.

A dead BMC therefore costs one deadline; a live one at most two IPMI deadlines plus one
per optional probe. Nothing here raises for a bad server: every failure is part of the
``Observation``. Error texts are scrubbed of the server's password before they are kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.metrics import Metrics
from agent.models import ReadingRecord, ServerCredentials
from agent.monitor.crosscheck import BootObservation, DbcPathObservation, Reading
from baremetal.dbc.client import Client
from baremetal.errors import BaremetalError, IpmiError, IpmiTimeout, UnsafeShellWord
from baremetal.ipmi.client import BmcAddress, BmcClient, BootFlags, error_kind
from baremetal.ipmi.ipmitool import run_dbc_ipmitool
from baremetal.ipmi.shell_word import check_node_shell_fields

__all__ = ["Checker", "Observation", "reading_record"]

_LOGGER = logging.getLogger(__name__)
_MAX_TEXT = 500
# IPMI 2.0 failures after which the DBC-path probe is not run in the same pass.
_SKIP_PROBE_AFTER = frozenset({"unreachable", "timeout", "busy", "auth"})


@dataclass(frozen=True)
class Observation:
    """What one server looked like in one pass, with the crosscheck ``Reading`` inside."""

    uuid: str
    server_id: int
    ts: float
    reading: Reading
    latency_ms: float | None = None
    boot: BootFlags | None = None
    notes: tuple[str, ...] = field(default=())


def reading_record(observation: Observation) -> ReadingRecord:
    """Turn an observation into the row the store keeps (history)."""
    reading, boot = observation.reading, observation.boot
    dbc = reading.dbc_path
    return ReadingRecord(
        server_id=observation.server_id, ts=observation.ts, power=reading.power,
        boot_device=boot.device if boot else None, boot_valid=boot.valid if boot else None,
        boot_persistent=boot.persistent if boot else None,
        boot_uefi=boot.uefi if boot else None,
        dbc_path_ok=dbc.ok if dbc else None, dbc_path_message=dbc.message if dbc else "",
        dbc_power_status=reading.dbc_power_status, error_class=reading.ipmi_error,
        error_detail=reading.ipmi_error_detail, latency_ms=observation.latency_ms)


def _scrub(text: str, secret: str) -> str:
    text = text if not secret else text.replace(secret, "***")
    return text[:_MAX_TEXT]


@dataclass(frozen=True)
class _IpmiPart:
    power: str | None = None
    boot: BootFlags | None = None
    error: str | None = None
    detail: str = ""
    latency_ms: float | None = None


class Checker:
    """Reads one server at a time; shared by the monitor's pool threads."""

    def __init__(self, *, bmc: BmcClient, deadline_s: float, dbc_path_probe: bool = False,
                 client_node: Client | None = None, manager_id: str | None = None,
                 ipmitool: str = "ipmitool", metrics: Metrics | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._bmc = bmc
        self._deadline_s = deadline_s
        self._probe = dbc_path_probe
        self._client_node = client_node if manager_id else None
        self._manager_id = manager_id
        self._ipmitool = ipmitool
        self._metrics = metrics
        self._clock = clock
        self._warned_no_ipmitool = False

    @property
    def per_server_budget_s(self) -> float:
        """Longest time ``observe`` can take for one server (plus scheduling slack)."""
        calls = 2 + int(self._probe) + int(self._client_node is not None)
        return calls * self._deadline_s

    def observe(self, creds: ServerCredentials) -> Observation:
        """Read one server; never raises for a misbehaving BMC or node."""
        ts = self._clock()
        password = creds.ipmi_password.reveal()
        ipmi = self._read_ipmi(creds, password)
        notes: list[str] = []
        dbc_path = None
        if self._probe:
            if ipmi.error in _SKIP_PROBE_AFTER:
                notes.append(f"dbc path probe skipped (ipmi {ipmi.error})")
            else:
                dbc_path = self._probe_dbc_path(creds, password, notes)
        dbc_power = self._client_power_status(creds, notes)
        boot = ipmi.boot
        reading = Reading(
            power=ipmi.power,
            boot=BootObservation(boot.device, boot.valid, boot.persistent, boot.uefi)
            if boot else None,
            ipmi_error=ipmi.error, ipmi_error_detail=ipmi.detail, dbc_path=dbc_path,
            dbc_power_status=dbc_power)
        return Observation(uuid=creds.uuid, server_id=creds.server_id, ts=ts, reading=reading,
                           latency_ms=ipmi.latency_ms, boot=boot, notes=tuple(notes))

    def _read_ipmi(self, creds: ServerCredentials, password: str) -> _IpmiPart:
        try:
            addr = BmcAddress(host=creds.ipmi_host, port=creds.ipmi_port or 623,
                              username=creds.ipmi_user, password=password)
        except ValueError as exc:
            # Unusable BMC settings: a credential problem if it is about the login.
            text = str(exc)
            kind = "auth" if "user" in text.lower() or "password" in text.lower() else \
                "unreachable"
            return _IpmiPart(error=kind, detail=_scrub(f"invalid BMC settings: {text}",
                                                       password))
        started = time.monotonic()
        power: str | None = None
        try:
            power = str(self._bmc.read_power(addr, self._deadline_s))
            boot = self._bmc.read_boot(addr, self._deadline_s)
        except IpmiError as exc:
            return _IpmiPart(power=power, error=error_kind(exc),
                             detail=_scrub(str(exc), password))
        latency = (time.monotonic() - started) * 1000.0
        return _IpmiPart(power=power, boot=boot, latency_ms=latency)

    def _probe_dbc_path(self, creds: ServerCredentials, password: str,
                        notes: list[str]) -> DbcPathObservation | None:
        try:
            # The node would not run the intended command with such a value: say so.
            check_node_shell_fields(hostname=creds.ipmi_host, port=creds.ipmi_port,
                                    username=creds.ipmi_user, password=password)
        except UnsafeShellWord as exc:
            self._count("dbc_path", "unsafe_value")
            return DbcPathObservation(False, f"not run: the stored {exc.field} is not safe on "
                                             f"the DBC node's shell command line ({exc.rule})")
        try:
            # The node passes the stored port only when one is stored (§6.2): None -> no -p.
            result = run_dbc_ipmitool(creds.ipmi_host, creds.ipmi_port, creds.ipmi_user,
                                      password, "power", "status",
                                      timeout_s=self._deadline_s, executable=self._ipmitool)
        except IpmiTimeout:
            self._count("dbc_path", "timeout")
            return DbcPathObservation(False, f"ipmitool gave no answer within "
                                             f"{self._deadline_s:g} s")
        except IpmiError as exc:  # ipmitool cannot be started here: the probe says nothing
            self._count("dbc_path", "unavailable")
            if not self._warned_no_ipmitool:
                self._warned_no_ipmitool = True
                _LOGGER.warning("DBC-path probe unavailable: %s", exc)
            notes.append("dbc path probe unavailable (ipmitool cannot be started)")
            return None
        if not result.ok:
            self._count("dbc_path", "failed")
        return DbcPathObservation(result.ok, _scrub(result.message, password))

    def _client_power_status(self, creds: ServerCredentials, notes: list[str]) -> str | None:
        if self._client_node is None or not creds.node_id:
            return None
        try:
            found = self._client_node.get_bare_metal(
                creds.node_id, None, manager_id=self._manager_id, timeout_s=self._deadline_s)
        except BaremetalError as exc:
            self._count("client_node", type(exc).__name__)
            notes.append(f"client node: {type(exc).__name__}")
            return None
        if found is None or found.power_status is None:
            notes.append("client node gave no power_status")
            return None
        return found.power_status[:_MAX_TEXT]

    def _count(self, source: str, kind: str) -> None:
        if self._metrics is not None:
            self._metrics.count_check_error(source, kind)
