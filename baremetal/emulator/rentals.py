"""The chain, as far as the emulator needs it: a JSON rentals file, re-read when it changes.

No chain is reachable from tests, so what ``HttpDBCChainClient`` would ask the chain
(machine status, current renter and order, rent end, current block, committee verify
window) comes from one file::

    {
      "current_block": 1000,                  # optional; the prune timer compares rent_end
      "machines": {
        "<server node_id>": {
          "status": "rented",                 # online | rented | verify | unknown
          "renter": "5Grw...",                # SS58 or 64-hex, string-compared as on chain
          "multisig": {"wallets": ["5..."], "threshold": 2},  # optional: the renter is the
                                              # multisig account derived from these
          "rent_status": "renting",           # renting | waitingVerifying | rentExpired
          "rent_order": "42",                 # optional order id (request "rent_order")
          "rent_end": 1200,                   # optional block number
          "verifiers": ["5..."],              # wallets inside the committee verify window
          "offline": false                    # true: relays to this server time out
        }
      }
    }

A machine that is missing is ``unknown`` (not bonded). Unknown keys are ignored. The
file is re-read whenever its mtime or size changes; a malformed file keeps the last
good content.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from baremetal import signing

__all__ = ["MachineRental", "RentalBook", "RentalView", "multisig_account"]

_LOGGER = logging.getLogger(__name__)
_STATUSES = ("online", "rented", "verify", "unknown")
_MULTISIG_SALT = b"modlpy/utilisuba"


def multisig_account(wallets: list[str], threshold: int) -> str:
    """Derive the pallet-multisig account (SS58) of ``wallets`` and ``threshold``.

    Standard Substrate derivation (the node's closed library presumably does the
    same, docs/protocol.md §4.6 [inferred]): blake2b-256 of the salt, the SCALE-encoded
    sorted signatory keys and the u16 threshold.
    """
    keys = sorted(_public_key(w) for w in wallets)
    encoded = _compact_len(len(keys)) + b"".join(keys) + threshold.to_bytes(2, "little")
    digest = hashlib.blake2b(_MULTISIG_SALT + encoded, digest_size=32).digest()
    return signing.public_key_to_ss58(digest)


def _public_key(wallet: str) -> bytes:
    text = wallet.removeprefix("0x")
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    return signing.ss58_to_public_key(wallet)


def _compact_len(n: int) -> bytes:
    if n < 1 << 6:
        return bytes([n << 2])
    return ((n << 2) | 1).to_bytes(2, "little")


@dataclass(frozen=True)
class MachineRental:
    """What the chain says about one machine."""

    status: str = "unknown"
    renter: str = ""
    rent_status: str = "renting"
    rent_order: str = ""
    rent_end: int = 0
    verifiers: tuple[str, ...] = ()
    offline: bool = False
    multisig_signers: tuple[str, ...] = field(default=())


def _machine_from(raw: dict[str, Any]) -> MachineRental:
    status = str(raw.get("status", "unknown")).lower()
    renter = str(raw.get("renter", ""))
    signers: tuple[str, ...] = ()
    multisig = raw.get("multisig")
    if isinstance(multisig, dict):
        signers = tuple(str(w) for w in multisig.get("wallets", []))
        renter = multisig_account(list(signers), int(multisig.get("threshold", 1)))
    return MachineRental(
        status=status if status in _STATUSES else "unknown",
        renter=renter,
        rent_status=str(raw.get("rent_status", "renting")),
        rent_order=str(raw.get("rent_order", "")),
        rent_end=int(raw.get("rent_end", 0) or 0),
        verifiers=tuple(str(w) for w in raw.get("verifiers", [])),
        offline=bool(raw.get("offline", False)),
        multisig_signers=signers,
    )


class RentalView(Protocol):
    """What the emulator's rental checks ask: ``RentalBook`` (a file) or ``ChainRentalBook``."""

    def machine(self, node_id: str, rent_order: str = "") -> MachineRental:
        """Return the chain's view of one machine."""

    def current_block(self) -> int:
        """Return the current block number."""

    def in_verify_time(self, node_id: str, wallet: str) -> bool:
        """Tell whether ``wallet`` is in a committee verify window of the machine."""


class RentalBook:
    """The rentals file, re-read on change; thread-safe."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._machines: dict[str, MachineRental] = {}
        self._current_block = 0

    def _refresh(self) -> None:
        if self._path is None:
            return
        try:
            stat = os.stat(self._path)
        except OSError:
            self._machines, self._stamp = {}, None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
            machines = {str(k): _machine_from(v) for k, v in raw.get("machines", {}).items()}
            block = int(raw.get("current_block", 0) or 0)
        except (OSError, ValueError, TypeError, AttributeError, signing.SigningError) as exc:
            _LOGGER.warning("rentals file %s ignored: %s", self._path, exc)
            return
        self._machines, self._current_block, self._stamp = machines, block, stamp
        _LOGGER.info("rentals reloaded: %d machines", len(machines))

    def machine(self, node_id: str, rent_order: str = "") -> MachineRental:
        """Return the chain's view of one machine (``unknown`` when absent).

        ``rent_order`` is ignored: the file holds one order per machine.
        """
        del rent_order
        with self._lock:
            self._refresh()
            return self._machines.get(node_id, MachineRental())

    def in_verify_time(self, node_id: str, wallet: str) -> bool:
        """Tell whether ``wallet`` is listed among the machine's ``verifiers``."""
        return wallet in self.machine(node_id).verifiers

    def current_block(self) -> int:
        """Return the chain's current block number."""
        with self._lock:
            self._refresh()
            return self._current_block
