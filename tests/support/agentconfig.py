"""The tests' one writer of ``bm-agent`` TOML configs.

It renders with the agent's own writer (``render_default_config``: every key present,
commented, unknown keys refused), so a test config cannot drift from the key table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.config import render_default_config


def write_agent_config(directory: Path, values: Mapping[str, Any],
                       name: str = "agent.toml") -> Path:
    """Write ``directory/name`` with ``values`` keyed ``"section.key"``; return its path."""
    path = directory / name
    path.write_text(render_default_config(values), encoding="utf-8")
    return path
