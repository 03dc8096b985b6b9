"""The DBC chain as the DBC node asks it: JSON-RPC client, rental state, typed errors.

- ``ChainClient`` (``client``): the node's RPC calls over HTTPS with host failover and an
  overall deadline per call;
- ``ChainRentals`` / ``RentalState`` (``rental``): one machine's rental state as the node's
  idle timer decides it, TTL-cached, stale-marked when the chain is down;
- ``parse``: request bodies and answer parsing, exactly as ``HttpDBCChainClient.cpp``;
- ``hosts``: ``dbc_chain_domain`` from the node's ``core.conf``.

docs/protocol.md §14 documents the calls.
"""

from baremetal.chain.client import ChainClient
from baremetal.chain.errors import ChainBadAnswer, ChainError, ChainUnreachable, MachineUnknown
from baremetal.chain.hosts import CoreChainConf, read_core_conf
from baremetal.chain.parse import Methods, RentOrder
from baremetal.chain.rental import BLOCK_TIME_S, ChainRentals, RentalState, rental_from_chain

__all__ = [
    "BLOCK_TIME_S",
    "ChainBadAnswer",
    "ChainClient",
    "ChainError",
    "ChainRentals",
    "ChainUnreachable",
    "CoreChainConf",
    "MachineUnknown",
    "Methods",
    "RentOrder",
    "RentalState",
    "read_core_conf",
    "rental_from_chain",
]
