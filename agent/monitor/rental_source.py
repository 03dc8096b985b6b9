"""Which servers DBC considers rented: the chain first, the rentals file as fallback.

``RentalSource.rented(node_id)`` answers like ``RentalsFile.rented`` (True / False / None,
the node's idle-timer rules, docs/protocol.md §6.4) from the DBC chain, asked as the node
asks it (``baremetal.chain``, §14): TTL-cached (``[chain] ttl_s``), one deadline per call
(``[chain] timeout_s``). When the chain cannot be asked, the last answer is used, marked
stale with its age (``rental(node_id)``); with none, the rentals file decides
(``[check] rentals_file``); with neither, None.

Chain hosts: ``[chain] hosts``, else the ``dbc_chain_domain`` lines of the node's
``core.conf`` (``[chain] core_conf``, default ``conf/core.conf`` beside the directory of
``[node] node_dat``, where the node keeps it). No host: the chain is off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.config.settings import Settings
from agent.monitor.rentals import RentalsFile
from baremetal.chain import (
    ChainClient,
    ChainError,
    ChainRentals,
    CoreChainConf,
    Methods,
    RentalState,
    read_core_conf,
)
from baremetal.errors import InvalidInput

__all__ = ["RentalSource", "RentalView", "chain_hosts", "rental_source", "rental_view"]

_LOGGER = logging.getLogger(__name__)
_PARALLEL = 8  # chain calls in flight during one monitor pass


class RentalSource:
    """The chain's rental state with the rentals file behind it; thread-safe."""

    def __init__(self, chain: ChainRentals | None, rentals_file: RentalsFile | None) -> None:
        self.chain = chain
        self.rentals_file = rentals_file
        self._lock = threading.Lock()
        self._chain_down = False

    def rental(self, node_id: str | None) -> RentalState | None:
        """Return the chain's state of this server (maybe stale), or None without one."""
        if not node_id or self.chain is None:
            return None
        try:
            state = self.chain.rental(node_id)
        except ChainError as exc:
            self._note(down=True, error=exc)
            return None
        self._note(down=state.stale, error=state.error)
        return state

    def rented(self, node_id: str | None) -> bool | None:
        """Tell whether DBC considers this server rented (None: unknown)."""
        state = self.rental(node_id)
        if state is not None:
            return state.rented
        if self.rentals_file is not None:
            return self.rentals_file.rented(node_id)
        return None

    def peek(self, node_id: str | None) -> tuple[bool | None, RentalState | None]:
        """Return ``rented`` and the chain's last state without asking anyone (for pages).

        The chain's cached answer (maybe stale), else the rentals file; a page never waits
        for the chain: the monitor's pass keeps the cache current.
        """
        state = self.chain.peek(node_id) if node_id and self.chain is not None else None
        if state is not None and state.rented is not None:
            return state.rented, state
        if self.rentals_file is not None:
            return self.rentals_file.rented(node_id), state
        return None, state

    def rented_many(self, node_ids: Iterable[str | None]) -> dict[str, bool | None]:
        """Answer ``rented`` for many servers, asking the chain for up to 8 at once."""
        wanted = sorted({n for n in node_ids if n})
        if self.chain is None or len(wanted) < 2:
            return {n: self.rented(n) for n in wanted}
        with ThreadPoolExecutor(max_workers=_PARALLEL, thread_name_prefix="chain") as pool:
            return dict(zip(wanted, pool.map(self.rented, wanted), strict=True))

    def _note(self, *, down: bool, error: object) -> None:
        with self._lock:
            changed, self._chain_down = down != self._chain_down, down
        if changed and down:
            _LOGGER.warning("DBC chain cannot be asked (%s): rental state from the last "
                            "answer, else the rentals file", error)
        elif changed:
            _LOGGER.info("DBC chain answers again")


@dataclass(frozen=True)
class RentalView:
    """What staff are shown: ``rented`` / ``idle`` / ``unknown``, the rent's end, stale."""

    state: str = "unknown"
    until: float | None = None  # Unix time the rent ends (estimated from the blocks)
    stale: bool = False  # the chain could not be asked: this is its last answer

    def until_iso(self) -> str | None:
        """Return the rent's end as ISO-8601 UTC (``2026-12-03T20:15:00Z``), or None."""
        if self.until is None:
            return None
        return datetime.fromtimestamp(self.until, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rental_view(source: RentalSource | None, node_id: str | None) -> RentalView:
    """Return the rental state to show for this server, without asking the chain."""
    if source is None or not node_id:
        return RentalView()
    rented, state = source.peek(node_id)
    stale = bool(state is not None and state.stale)
    if rented is True:
        return RentalView("rented", state.rent_end_at if state is not None else None, stale)
    if rented is False:
        return RentalView("idle", None, stale)
    return RentalView("unknown", None, stale)


def chain_hosts(settings: Settings) -> tuple[tuple[str, ...], CoreChainConf]:
    """Return the chain hosts to ask and the node's core.conf chain keys (maybe empty)."""
    path = settings.chain.core_conf
    if path is None:
        path = Path(settings.node.node_dat).parent.parent / "conf" / "core.conf"
        if not path.is_file():
            return settings.chain.hosts, CoreChainConf()
    try:
        conf = read_core_conf(path)
    except OSError as exc:
        _LOGGER.warning("cannot read %s (%s): chain hosts only from [chain] hosts",
                        path, exc.strerror)
        conf = CoreChainConf()
    return settings.chain.hosts or conf.hosts, conf


def rental_source(settings: Settings) -> RentalSource | None:
    """Build the rental source of ``settings``; None when neither chain nor file is set."""
    file = RentalsFile(settings.check.rentals_file) if settings.check.rentals_file else None
    hosts, conf = chain_hosts(settings)
    chain = None
    if hosts:
        try:
            client = ChainClient(hosts, timeout_s=settings.chain.timeout_s,
                                 methods=Methods.for_conf(conf.terminating_rental),
                                 verify_tls=settings.chain.verify_tls)
        except InvalidInput as exc:  # a bad dbc_chain_domain line in core.conf
            _LOGGER.warning("DBC chain off: %s", exc)
        else:
            chain = ChainRentals(client, ttl_s=settings.chain.ttl_s)
            _LOGGER.info("rental state from the DBC chain: %s", ", ".join(client.hosts))
    if chain is None and file is None:
        return None
    return RentalSource(chain, file)
