"""What a seat's power path can do, from its inventory settings alone (no I/O)."""

from __future__ import annotations

from agent.models import PowerSettings
from baremetal.power.backend import Capabilities, Operation, PowerPath
from baremetal.power.http_plug import preset_capabilities

__all__ = ["capabilities_of", "operation_names"]

_EVERYTHING = frozenset(Operation)


def capabilities_of(power: PowerSettings) -> Capabilities:
    """IPMI and Redfish do all seven operations; a plug what its preset allows."""
    path = PowerPath(power.path)
    if path is PowerPath.HTTP:
        return preset_capabilities(power.plug_preset or "")
    return Capabilities(path=path, operations=_EVERYTHING)


def operation_names(capabilities: Capabilities) -> list[str]:
    """List the operations as sorted strings (what the API and the dashboard carry)."""
    return sorted(str(op) for op in capabilities.operations)
