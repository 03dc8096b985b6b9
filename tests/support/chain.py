"""The chain simulator (``baremetal.emulator.chain_sim``) as a test peer on a free port.

- ``chain_sim`` fixture: a started ``ChainSimServer`` (real HTTP on 127.0.0.1), stopped at
  teardown; change ``chain_sim.state`` (``load``, ``current_block``, ``delay_s``,
  ``raw_answers``) between calls;
- ``start_chain_sim(state)`` for more than one (host failover).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from baremetal.emulator.chain_sim import ChainSimServer, ChainState
from tests.support.ports import free_port

__all__ = ["chain_sim", "chain_sims", "rented", "start_chain_sim"]


def start_chain_sim(state: ChainState | None = None) -> ChainSimServer:
    """Start a simulator on a free loopback port, serving ``state`` (a fresh one if None)."""
    server = ChainSimServer("127.0.0.1", free_port(), state or ChainState())
    server.start()
    return server


def rented(node_id: str, renter: str, rent_end: int, block: int, **extra: Any) -> dict[str, Any]:
    """A state document: ``node_id`` rented by ``renter`` until block ``rent_end``."""
    return {"current_block": block, "machines": {node_id: {
        "status": "rented", "renter": renter, "rent_end": rent_end, **extra}}}


@pytest.fixture
def chain_sims() -> Iterator[Callable[..., ChainSimServer]]:
    """Start simulators for one test; all are stopped afterwards."""
    started: list[ChainSimServer] = []

    def _start(state: ChainState | None = None) -> ChainSimServer:
        server = start_chain_sim(state)
        started.append(server)
        return server

    yield _start
    for server in started:
        server.stop()


@pytest.fixture
def chain_sim(chain_sims: Callable[..., ChainSimServer]) -> ChainSimServer:
    """One running chain simulator."""
    return chain_sims()
