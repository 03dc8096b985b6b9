"""Pure cross-verification: one server's readings in, a verdict out. No I/O, no clock.

Inputs for one server and one pass:

- ``Reading``: what the BMC said over IPMI 2.0 (pyghmi), what the DBC node's own way
  (``ipmitool`` over IPMI 1.5 ``lan``) said, and DBC's ``power_status`` if a client node
  was asked.
- ``Expectation``: what staff last asked for and when, and whether the machine is rented.
- ``Prior``: the verdict so far and how many consecutive passes saw a discrepancy.

Rules, in order (first match wins):

1. IPMI failed: ``auth_failed``, ``unsupported`` or ``unreachable`` (timeouts, busy BMCs and
   garbled answers included: the agent could not see the machine).
2. A staff action is younger than the grace window and the machine does not show its
   result yet: ``transitioning``.
3. Discrepancies (BMC vs staff intent, BMC vs DBC's view, persistent boot device lost):
   ``mismatch`` only once seen on ``confirmations`` consecutive passes (a single read in
   the middle of a transition is common, docs/ipmi.md §3.2); until then the prior verdict
   stands.
4. The DBC path (what the node itself would run) fails while IPMI 2.0 works:
   ``dbc_path_broken`` — renters' power requests through DBC would fail.
5. Off while not rented: ``expected_off`` — DBC's idle timer powers such machines off
   (docs/protocol.md §6.4), so staff need not worry.
6. Otherwise ``ok``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "BootObservation",
    "DbcPathObservation",
    "Expectation",
    "Judgement",
    "Prior",
    "Reading",
    "Verdict",
    "judge",
    "power_from_dbc_text",
]


class Verdict(StrEnum):
    """The state of one server as the dashboard shows it."""

    UNKNOWN = "unknown"
    OK = "ok"
    MISMATCH = "mismatch"
    TRANSITIONING = "transitioning"
    EXPECTED_OFF = "expected_off"
    UNREACHABLE = "unreachable"
    AUTH_FAILED = "auth_failed"
    DBC_PATH_BROKEN = "dbc_path_broken"
    UNSUPPORTED = "unsupported"


# IPMI error classes (the IpmiError leaf names, lower-cased by the monitor) -> verdict.
_ERROR_VERDICTS = {
    "auth": Verdict.AUTH_FAILED,
    "unsupported": Verdict.UNSUPPORTED,
    "unreachable": Verdict.UNREACHABLE,
    "timeout": Verdict.UNREACHABLE,
    "busy": Verdict.UNREACHABLE,
    "protocol": Verdict.UNREACHABLE,
}


@dataclass(frozen=True)
class BootObservation:
    """Boot flags as read from the BMC."""

    device: str
    valid: bool
    persistent: bool
    uefi: bool


@dataclass(frozen=True)
class DbcPathObservation:
    """Result of the node's own ipmitool command (IPMI 1.5 ``lan``)."""

    ok: bool
    message: str


@dataclass(frozen=True)
class Reading:
    """Everything observed about one server in one pass."""

    power: str | None = None
    boot: BootObservation | None = None
    ipmi_error: str | None = None
    ipmi_error_detail: str = ""
    dbc_path: DbcPathObservation | None = None
    dbc_power_status: str | None = None


@dataclass(frozen=True)
class Expectation:
    """What staff asked for, when, and whether DBC considers the machine rented."""

    power: str | None = None
    boot_device: str | None = None
    boot_persistent: bool = False
    action_age_s: float | None = None
    rented: bool | None = None


@dataclass(frozen=True)
class Prior:
    """The verdict before this pass and the running count of discrepant passes."""

    verdict: Verdict = Verdict.UNKNOWN
    discrepant_passes: int = 0


@dataclass(frozen=True)
class Judgement:
    """The verdict for this pass, why, and the counter to carry to the next pass."""

    verdict: Verdict
    reasons: tuple[str, ...] = field(default=())
    discrepant_passes: int = 0


def power_from_dbc_text(text: str) -> str | None:
    """Extract on/off from ipmitool's or a plug-in's status text (``Chassis Power is on``)."""
    lowered = text.strip().lower()
    for state in ("on", "off"):
        if lowered.endswith(f"power is {state}"):
            return state
    return None


def judge(
    reading: Reading,
    expectation: Expectation,
    prior: Prior,
    *,
    grace_s: float,
    confirmations: int,
) -> Judgement:
    """Turn one pass's reading into a verdict (rules in the module docstring)."""
    if reading.ipmi_error is not None:
        verdict = _ERROR_VERDICTS.get(reading.ipmi_error, Verdict.UNREACHABLE)
        return Judgement(verdict, (f"ipmi_{reading.ipmi_error}",), 0)
    if _in_grace(expectation, grace_s) and not _intent_reached(reading, expectation):
        return Judgement(Verdict.TRANSITIONING, ("action_in_progress",), 0)
    discrepancies = _discrepancies(reading, expectation)
    if discrepancies:
        count = prior.discrepant_passes + 1
        if count >= confirmations:
            return Judgement(Verdict.MISMATCH, discrepancies, count)
        return Judgement(_unconfirmed(prior.verdict), ("unconfirmed", *discrepancies), count)
    if reading.dbc_path is not None and not reading.dbc_path.ok:
        return Judgement(Verdict.DBC_PATH_BROKEN, ("dbc_ipmitool_failed",), 0)
    if reading.power == "off" and expectation.rented is False:
        return Judgement(Verdict.EXPECTED_OFF, ("idle_power_off",), 0)
    return Judgement(Verdict.OK, (), 0)


def _unconfirmed(prior: Verdict) -> Verdict:
    # A first discrepant read keeps the last settled verdict; there is none on a first pass.
    return Verdict.OK if prior in (Verdict.UNKNOWN, Verdict.MISMATCH) else prior


def _in_grace(expectation: Expectation, grace_s: float) -> bool:
    age = expectation.action_age_s
    return age is not None and age < grace_s


def _intent_reached(reading: Reading, expectation: Expectation) -> bool:
    if expectation.power is not None and reading.power != expectation.power:
        return False
    if expectation.boot_device is None:
        return True
    return reading.boot is not None and reading.boot.device == expectation.boot_device


def _discrepancies(reading: Reading, expectation: Expectation) -> tuple[str, ...]:
    found: list[str] = []
    if _staff_power_differs(reading, expectation):
        found.append("power_differs_from_request")
    if _dbc_power_differs(reading):
        found.append("power_differs_from_dbc")
    if _persistent_boot_lost(reading, expectation):
        found.append("boot_device_differs")
    return tuple(found)


def _staff_power_differs(reading: Reading, expectation: Expectation) -> bool:
    if expectation.power is None or reading.power is None:
        return False
    if reading.power == "off" and expectation.rented is False:
        # DBC's idle timer turns unrented machines off (§6.4): that is expected_off.
        return False
    return reading.power != expectation.power


def _dbc_power_differs(reading: Reading) -> bool:
    if reading.power is None:
        return False
    views = []
    if reading.dbc_path is not None and reading.dbc_path.ok:
        views.append(power_from_dbc_text(reading.dbc_path.message))
    if reading.dbc_power_status is not None:
        views.append(power_from_dbc_text(reading.dbc_power_status))
    return any(view is not None and view != reading.power for view in views)


def _persistent_boot_lost(reading: Reading, expectation: Expectation) -> bool:
    # A one-time override reads back as "default" once used: only persistent intent counts.
    if not expectation.boot_persistent or expectation.boot_device is None or reading.boot is None:
        return False
    return reading.boot.device != expectation.boot_device
