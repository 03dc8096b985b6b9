"""Typed errors of the chain client (``baremetal.chain``), under ``BaremetalError``.

::

    ChainError                 the chain's answer could not be had or used
    ├── ChainUnreachable       no HTTP answer from any configured host within the deadline
    ├── ChainBadAnswer         a host answered, but not in the shape the DBC node parses
    └── MachineUnknown         the chain knows no such machine (``result`` is null)

Messages name the RPC method and the host, never a body (bodies carry nothing secret,
but they may be large or hostile).
"""

from __future__ import annotations

from baremetal.errors import BaremetalError

__all__ = ["ChainBadAnswer", "ChainError", "ChainUnreachable", "MachineUnknown"]


class ChainError(BaremetalError):
    """Root of the chain client's errors."""

    def __init__(self, method: str, reason: str) -> None:
        self.method = method
        self.reason = reason
        super().__init__(f"{method}: {reason}")


class ChainUnreachable(ChainError):
    """No host gave an HTTP answer within the call's deadline (refused, DNS, TLS, timeout)."""


class ChainBadAnswer(ChainError):
    """A host answered with something the DBC node would not accept."""


class MachineUnknown(ChainError):
    """The chain answered ``result: null``: it knows no machine with this node_id."""
