"""Stores written by older releases: the schema of version N and rows in its columns.

The store code always speaks the newest schema, so a store "as version N left it" is made
with that version's migrations and plain SQL inserts of the version-1 server columns (every
later version kept them).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from agent.secrets import Sealer, Secret
from agent.store import Store
from agent.store._schema import MIGRATIONS

__all__ = ["add_v1_server", "make_old_store"]


def make_old_store(path: Path, version: int, sealer: Sealer | None = None) -> None:
    """Create an empty store at schema ``version`` (1 .. newest)."""
    with Store.open(path, sealer=sealer, migrations=MIGRATIONS[:version]) as store:
        assert store.schema_version() == version


def add_v1_server(path: Path, sealer: Sealer, *, uuid: str, ip: str, ipmi_host: str,
                  ipmi_user: str, password: str, ipmi_port: int | None = None,
                  desc: str = "") -> int:
    """Insert a server with the version-1 columns only; return its id."""
    now = time.time()
    conn = sqlite3.connect(path)
    try:
        with conn:
            cursor = conn.execute(
                "INSERT INTO servers (uuid, ip, description, ipmi_host, ipmi_port, ipmi_user,"
                " ipmi_password_sealed, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (uuid, ip, desc, ipmi_host, ipmi_port, ipmi_user,
                 sealer.seal(Secret(password)), now, now))
        return int(cursor.lastrowid or 0)
    finally:
        conn.close()
