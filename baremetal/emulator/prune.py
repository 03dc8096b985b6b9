"""The node's idle power-off timer (docs/protocol.md §6.4, ``BareMetalTaskManager.cpp:57-107``).

First run after ``first_s`` (node: 3 min), then every ``every_s`` (node: 15 min); one
server at a time with ``gap_s`` (node: 3 s) between servers. A server whose machine is
``online`` (bonded, not rented), or ``rented`` with ``current_block > rent_end``, gets
ONE ``chassis power off``; the "once" flag lives in memory, is set only when the off
succeeded, and is reset when the machine is seen rented and live again.
"""

from __future__ import annotations

import logging
import threading

from baremetal.emulator.backends import PowerBackend
from baremetal.emulator.rentals import RentalView
from baremetal.emulator.store import BareMetalStore

__all__ = ["PruneTimer"]

_LOGGER = logging.getLogger(__name__)


class PruneTimer:
    """Background thread that powers idle servers off once."""

    def __init__(self, store: BareMetalStore, rentals: RentalView, power: PowerBackend, *,
                 first_s: float, every_s: float, gap_s: float) -> None:
        self._store = store
        self._rentals = rentals
        self._power = power
        self._first_s, self._every_s, self._gap_s = first_s, every_s, gap_s
        self._stop = threading.Event()
        self._powered_off: dict[str, bool] = {}
        self._thread = threading.Thread(target=self._run, name="prune-timer", daemon=True)

    def start(self) -> None:
        """Start the timer thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the timer and wait for the current server to finish."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        if self._stop.wait(self._first_s):
            return
        while not self._stop.is_set():
            try:
                self.prune_nodes()
            except Exception:  # the timer must survive one bad pass
                _LOGGER.exception("prune pass failed")
            if self._stop.wait(self._every_s):
                return

    def prune_nodes(self) -> None:
        """Run one pass over every registered server (``PruneNodes``)."""
        for node_id in self._store.snapshot():
            self._powered_off.setdefault(node_id, False)
            if self._stop.is_set():
                break
            self._prune_node(node_id)
            if self._stop.wait(self._gap_s):
                break

    def _prune_node(self, node_id: str) -> None:
        machine = self._rentals.machine(node_id)
        if machine.status == "unknown":
            return
        block = self._rentals.current_block()
        _LOGGER.info("prune node %s status %s rent end %d cur block %d",
                     node_id, machine.status, machine.rent_end, block)
        if machine.status == "online":
            self._power_off_once(node_id)
        elif machine.status == "rented":
            if machine.rent_end > 0 and block > machine.rent_end:
                self._power_off_once(node_id)
            else:
                self._powered_off[node_id] = False

    def _power_off_once(self, node_id: str) -> None:
        if self._powered_off.get(node_id) is False:
            ok, _message = self._power.power(node_id, "off")
            _LOGGER.info("prune: power off %s %s", node_id, "ok" if ok else "failed")
            if ok:
                self._powered_off[node_id] = True
