"""The emulator's rental checks asking a chain (``bm-node-emulator --chain URL``).

``ChainRentalBook`` has ``RentalBook``'s interface but asks ``baremetal.chain.ChainClient``
what the node asks (docs/protocol.md §4.4, §14), with no cache, as the node:

- ``machine(node_id, rent_order)``: ``request_machine_status`` then ``getRentOrder`` (by
  order id when the request names one, else by node_id; ``check_authority``,
  ``node_request_service.cpp:639-641``). A failed status call is ``unknown`` (the node's
  "query machine_status failed"); a failed order call leaves no renter;
- ``current_block()``: ``chain_getBlock``, 0 when it fails (``request_cur_block``);
- ``in_verify_time(node_id, wallet)``: ``getCommitteeOps`` and the 2400-block window.

Not modelled: the node's persistent rent-order map (``RentOrderManager``), which keeps
an order's old renter and rent end when the chain later reports the all-zero renter or
``rentEnd`` 0.
"""

from __future__ import annotations

import logging

from baremetal.chain import ChainClient, ChainError
from baremetal.chain.parse import DEFAULT_RENTER, machine_category
from baremetal.emulator.rentals import MachineRental
from baremetal.errors import InvalidInput

__all__ = ["ChainRentalBook"]

_LOGGER = logging.getLogger(__name__)


class ChainRentalBook:
    """Rental truth from the chain, through the same client the agent uses."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client

    def machine(self, node_id: str, rent_order: str = "") -> MachineRental:
        """Return the chain's view of one machine (``unknown`` when it cannot be had)."""
        try:
            status = machine_category(self.client.machine_status(node_id))
        except (ChainError, InvalidInput) as exc:
            _LOGGER.info("chain: machine status of %s: %s", node_id, exc)
            return MachineRental()
        try:
            order = self.client.rent_order(node_id, rent_order)
        except (ChainError, InvalidInput) as exc:
            _LOGGER.info("chain: rent order of %s: %s", node_id, exc)
            return MachineRental(status=status)
        renter = "" if order.renter == DEFAULT_RENTER else order.renter
        return MachineRental(status=status, renter=renter, rent_status=order.rent_status,
                             rent_order=rent_order, rent_end=order.rent_end)

    def current_block(self) -> int:
        """Return the chain's current block number (0 when the chain cannot be asked)."""
        try:
            return self.client.current_block()
        except ChainError as exc:
            _LOGGER.info("chain: current block: %s", exc)
            return 0

    def in_verify_time(self, node_id: str, wallet: str) -> bool:
        """Tell whether ``wallet`` is inside one of its verify windows for this machine."""
        try:
            return self.client.in_verify_time(node_id, wallet)
        except (ChainError, InvalidInput) as exc:
            _LOGGER.info("chain: verify time of %s: %s", node_id, exc)
            return False
