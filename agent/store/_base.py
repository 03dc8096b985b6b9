"""Helpers shared by the repositories: base class, JSON columns, the UNSET marker."""

from __future__ import annotations

import enum
import json
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

from agent.errors import ValidationError
from agent.secrets import Secret
from agent.store._db import Database

__all__ = ["MAX_JSON_BYTES", "UNSET", "Repo", "RowLike", "Unset", "dump_json", "load_json",
           "opt_bool"]

MAX_JSON_BYTES = 16 * 1024

# What the row converters accept: a sqlite3.Row or a plain mapping of column names.
RowLike = sqlite3.Row | Mapping[str, Any]


class Unset(enum.Enum):
    """Marker for "leave this column alone" where None is a meaningful value."""

    UNSET = "unset"


UNSET = Unset.UNSET


class Repo:
    """A repository: a database handle and a clock (Unix seconds)."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock


def _refuse(value: Any) -> Any:
    if isinstance(value, Secret):
        raise TypeError("a Secret cannot be stored in a JSON column")
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def dump_json(value: Any, *, field: str) -> str:
    """Serialise a JSON column; refuse secrets, non-JSON values and oversized documents."""
    try:
        text = json.dumps(value, default=_refuse, ensure_ascii=False, sort_keys=True,
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(field=field, reason=str(exc)) from None
    if len(text.encode("utf-8")) > MAX_JSON_BYTES:
        raise ValidationError(field=field, reason=f"larger than {MAX_JSON_BYTES} bytes")
    return text


def load_json(text: str) -> Any:
    """Parse a JSON column (the schema's json_valid CHECK keeps it valid)."""
    return json.loads(text)


def opt_bool(value: Any) -> bool | None:
    """Map an INTEGER 0/1/NULL column to bool or None."""
    return None if value is None else bool(value)
