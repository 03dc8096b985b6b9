"""Which servers DBC considers rented, from a rentals JSON file (``[check] rentals_file``).

The fallback of ``agent.monitor.rental_source`` when the chain (``[chain]``) is off or
cannot be asked. What the DBC node's idle timer asks the chain (machine status, rent end,
current block; docs/protocol.md §6.4) can come from a JSON file in the emulator's format
(documented in ``baremetal/emulator/rentals.py``)::

    {"current_block": 1000,
     "machines": {"<server node_id>": {"status": "online|rented|verify|unknown",
                                       "rent_end": 1200}}}

``RentalsFile.rented(node_id)`` answers the way the node's prune timer decides
(``BareMetalTaskManager.cpp:57-107``):

- ``False`` (not rented: the timer powers it off) for ``online``, and for ``rented`` with
  ``rent_end > 0`` and ``current_block > rent_end``;
- ``True`` for any other ``rented``;
- ``None`` (unknown: the timer leaves it alone) for ``verify``, ``unknown``, machines not
  in the file, servers without a node_id, and when the file is missing or unreadable.

The file is re-read when its mtime or size changes; a malformed file keeps the last good
content (and logs a warning once per change).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["RentalsFile"]

_LOGGER = logging.getLogger(__name__)


def _rented(raw: Any, current_block: int) -> bool | None:
    if not isinstance(raw, dict):
        return None
    status = str(raw.get("status", "unknown")).lower()
    if status == "online":
        return False
    if status != "rented":
        return None
    try:
        rent_end = int(raw.get("rent_end", 0) or 0)
    except (TypeError, ValueError):
        rent_end = 0
    return not (rent_end > 0 and current_block > rent_end)


class RentalsFile:
    """The rentals JSON, re-read on change; thread-safe."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._rented: dict[str, bool | None] = {}

    @property
    def path(self) -> Path:
        """The file read."""
        return self._path

    def rented(self, node_id: str | None) -> bool | None:
        """Tell whether DBC considers this server rented (None: unknown)."""
        if not node_id:
            return None
        with self._lock:
            self._refresh()
            return self._rented.get(node_id)

    def _refresh(self) -> None:
        try:
            stat = os.stat(self._path)
        except OSError:
            if self._stamp is not None:
                _LOGGER.warning("rentals file %s is gone: rental state unknown", self._path)
            self._rented, self._stamp = {}, None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
            block = int(raw.get("current_block", 0) or 0)
            machines = raw.get("machines", {})
            if not isinstance(machines, dict):
                raise TypeError("machines is not an object")
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            _LOGGER.warning("rentals file %s ignored (last good content kept): %s",
                            self._path, exc)
            return
        self._rented = {str(k): _rented(v, block) for k, v in machines.items()}
