"""Account tests run on a store that seals nothing (no secrets of theirs are sealed)."""

from __future__ import annotations

import pytest


@pytest.fixture
def store_sealer() -> None:
    """Override tests/unit/conftest.py: these tests run on a store that seals nothing."""
    return None
