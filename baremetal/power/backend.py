"""The power-backend interface: one seat's power and boot device, whatever path reaches it.

A *power path* is how the agent reaches a seat: IPMI (pyghmi), Redfish (sushy) or an HTTP
plug / café power service. Every backend offers the same seven operations; one a path
cannot do raises :class:`~baremetal.errors.NotAvailableOnThisPath`, and what a path can do
is data (:class:`Capabilities`), so the dashboard and the CLI grey out the rest before
anyone clicks.

Failures are typed like IPMI's (``baremetal.errors``): ``PathUnreachable``,
``PathTimeout``, ``PathAuthFailed``, ``PathProtocolError`` map to the same verdicts as
their IPMI siblings (``unreachable``, ``auth_failed``, ``unsupported``…).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from baremetal.ipmi.codec import PowerState

__all__ = [
    "BootSetting",
    "Capabilities",
    "Operation",
    "PowerBackend",
    "PowerPath",
    "PowerReading",
    "PowerState",
]


class PowerPath(enum.StrEnum):
    """How the agent reaches a seat (the inventory's ``power_path``)."""

    IPMI = "ipmi"
    REDFISH = "redfish"
    HTTP = "http"


class Operation(enum.StrEnum):
    """What a backend may be asked to do."""

    STATUS = "status"
    ON = "on"
    OFF = "off"  # forced
    SOFT = "soft"  # graceful (ACPI) shutdown
    RESET = "reset"
    BOOT_GET = "boot_get"
    BOOT_SET = "boot_set"


@dataclass(frozen=True)
class Capabilities:
    """What one seat's path can do; the rest raises NotAvailableOnThisPath."""

    path: PowerPath
    operations: frozenset[Operation]

    def can(self, operation: Operation) -> bool:
        """Tell whether ``operation`` is available on this path."""
        return operation in self.operations


@dataclass(frozen=True)
class PowerReading:
    """Power as the path reports it; ``watts`` when the path measures them (a plug)."""

    power: PowerState
    path: PowerPath
    watts: float | None = None


@dataclass(frozen=True)
class BootSetting:
    """The boot device as read back, in DBC's names (``pxe``, ``disk``…, ``default``).

    ``notes`` carry what the caller should tell staff without treating it as a mismatch,
    e.g. a one-time override that reads back as continuous (sushy-tools does this).
    """

    device: str
    persistent: bool
    uefi: bool
    notes: tuple[str, ...] = field(default=())


class PowerBackend(Protocol):
    """One seat's power path. Every call is bounded by ``deadline_s``."""

    @property
    def capabilities(self) -> Capabilities:
        """What this seat's path can do."""

    def status(self, deadline_s: float) -> PowerReading:
        """Read the power state."""

    def on(self, deadline_s: float) -> None:
        """Power on."""

    def off(self, deadline_s: float) -> None:
        """Force power off."""

    def soft(self, deadline_s: float) -> None:
        """Ask the OS to shut down (ACPI)."""

    def reset(self, deadline_s: float) -> None:
        """Hard reset."""

    def boot_get(self, deadline_s: float) -> BootSetting:
        """Read the boot device override."""

    def boot_set(self, device: str, *, persistent: bool, uefi: bool,
                 deadline_s: float) -> None:
        """Set the boot device (DBC name: ``pxe``, ``disk``, ``cdrom``, ``bios``, ``default``)."""

    def close(self) -> None:
        """Release sessions and connections (a Redfish session is always logged out)."""
