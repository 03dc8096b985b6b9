"""Fixtures shared by the unit tests: a fresh SQLite store in the test's tmp_path.

A module changes how the store is opened by overriding one of the two small fixtures
it is built from: ``store_sealer`` (``None`` for a store that seals nothing) and
``store_clock`` (a test clock, e.g. ``tests.support.clock.Clock``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.secrets import Sealer, generate_key
from agent.store import Store


@pytest.fixture
def store_sealer() -> Sealer | None:
    """The sealer the ``store`` fixture opens with: a fresh random key."""
    return Sealer(generate_key())


@pytest.fixture
def store_clock() -> Callable[[], float]:
    """The clock the ``store`` fixture opens with: wall time, as ``Store.open`` defaults."""
    return time.time


@pytest.fixture
def store(tmp_path: Path, store_sealer: Sealer | None,
          store_clock: Callable[[], float]) -> Iterator[Store]:
    """A new store at ``tmp_path/agent.db``, closed after the test."""
    with Store.open(tmp_path / "agent.db", sealer=store_sealer, clock=store_clock) as opened:
        yield opened
