"""Schema migrations, ordered and versioned by ``PRAGMA user_version``.

``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``; each runs in one write
transaction together with the version bump, so a failed migration leaves the previous
version intact. A store whose version is above ``SCHEMA_VERSION`` was written by a newer
bm-agent: ``migrate`` raises ``StoreTooNew`` before touching it. Never edit a released
migration; append a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from agent.errors import StoreTooNew
from agent.store._db import Database

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "schema_version"]

_V1 = (
    """CREATE TABLE servers (
        id INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        ip TEXT NOT NULL,
        os TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        ipmi_host TEXT NOT NULL,
        ipmi_port INTEGER CHECK (ipmi_port IS NULL OR ipmi_port BETWEEN 1 AND 65535),
        ipmi_user TEXT NOT NULL,
        ipmi_password_sealed TEXT NOT NULL,
        mac TEXT,
        labels TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(labels)),
        node_id TEXT UNIQUE,
        node_private_key_sealed TEXT,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'registered', 'updating', 'deleting', 'failed')),
        state_detail TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL)""",
    "CREATE INDEX servers_state ON servers(state)",
    "CREATE INDEX servers_ip ON servers(ip)",
    """CREATE TABLE server_intents (
        server_id INTEGER PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
        power TEXT CHECK (power IS NULL OR power IN ('on', 'off')),
        power_at REAL,
        boot_device TEXT,
        boot_persistent INTEGER NOT NULL DEFAULT 0,
        boot_uefi INTEGER NOT NULL DEFAULT 0,
        boot_at REAL,
        actor TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE readings (
        id INTEGER PRIMARY KEY,
        server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
        ts REAL NOT NULL,
        power TEXT,
        boot_device TEXT,
        boot_valid INTEGER,
        boot_persistent INTEGER,
        boot_uefi INTEGER,
        dbc_path_ok INTEGER,
        dbc_path_message TEXT NOT NULL DEFAULT '',
        dbc_power_status TEXT,
        error_class TEXT,
        error_detail TEXT NOT NULL DEFAULT '',
        latency_ms REAL)""",
    "CREATE INDEX readings_server ON readings(server_id, id)",
    """CREATE TABLE verdicts (
        server_id INTEGER PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
        verdict TEXT NOT NULL,
        reasons TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(reasons)),
        discrepant_passes INTEGER NOT NULL DEFAULT 0,
        since REAL NOT NULL,
        checked_at REAL NOT NULL,
        last_ok_at REAL)""",
    "CREATE INDEX verdicts_verdict ON verdicts(verdict)",
    # AUTOINCREMENT: an event id is never reused, even after pruning (audit references).
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        actor TEXT NOT NULL,
        kind TEXT NOT NULL
            CHECK (kind IN ('audit', 'verdict', 'registry', 'auth', 'deeplink', 'system')),
        action TEXT NOT NULL DEFAULT '',
        server_uuid TEXT,
        result TEXT NOT NULL DEFAULT '',
        verified INTEGER CHECK (verified IS NULL OR verified IN (0, 1)),
        detail TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(detail)))""",
    "CREATE INDEX events_server ON events(server_uuid, id)",
    "CREATE INDEX events_kind ON events(kind, id)",
    """CREATE TRIGGER events_append_only BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END""",
    """CREATE TRIGGER events_keep_audit BEFORE DELETE ON events WHEN OLD.kind = 'audit'
        BEGIN SELECT RAISE(ABORT, 'audit events are never deleted'); END""",
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        op TEXT NOT NULL,
        key TEXT,
        payload TEXT NOT NULL CHECK (json_valid(payload)),
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'claimed', 'done', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        claim_token TEXT,
        claimed_until REAL,
        last_error TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL)""",
    "CREATE INDEX outbox_due ON outbox(state, next_attempt_at)",
    "CREATE INDEX outbox_key ON outbox(key) WHERE key IS NOT NULL",
    """CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
        pwhash TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        password_changed_at REAL NOT NULL)""",
    # Split tokens: the public selector finds the row, the verifier's SHA-256 is compared
    # in constant time; only hashes are stored.
    """CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        selector TEXT NOT NULL UNIQUE,
        verifier_hash BLOB NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        label TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        last_used_at REAL,
        expires_at REAL)""",
    "CREATE INDEX api_tokens_user ON api_tokens(user_id)",
    """CREATE TABLE web_sessions (
        id INTEGER PRIMARY KEY,
        selector TEXT NOT NULL UNIQUE,
        verifier_hash BLOB NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf_token TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen_at REAL NOT NULL,
        expires_at REAL NOT NULL)""",
    "CREATE INDEX web_sessions_user ON web_sessions(user_id)",
    "CREATE INDEX web_sessions_expiry ON web_sessions(expires_at)",
    "CREATE TABLE hook_nonces (nonce TEXT PRIMARY KEY, ts REAL NOT NULL) WITHOUT ROWID",
    "CREATE INDEX hook_nonces_ts ON hook_nonces(ts)",
    """CREATE TABLE deeplink_status (
        server_id INTEGER PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
        device_id TEXT,
        last_rotated_at REAL,
        last_boot_seen_at REAL,
        last_result TEXT NOT NULL DEFAULT '',
        last_error TEXT NOT NULL DEFAULT '',
        updated_at REAL NOT NULL)""",
    "CREATE INDEX deeplink_device ON deeplink_status(device_id) WHERE device_id IS NOT NULL",
)

# Seat keys: each GPU PC's own ed25519 key, enrolled with the café hook token and approved
# by staff (agent.hook.seats); at most one approved key per server (a few pending ones: competing
# enrollments stay visible). The pinned DeepLink device_id per server, and a change waiting
# for staff approval.
_V2 = (
    """CREATE TABLE seat_keys (
        id INTEGER PRIMARY KEY,
        server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
        public_key TEXT NOT NULL UNIQUE CHECK (length(public_key) = 64),
        state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
        created_ip TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        decided_by TEXT,
        decided_at REAL)""",
    "CREATE INDEX seat_keys_server ON seat_keys(server_id, state)",
    "CREATE UNIQUE INDEX seat_keys_one_approved ON seat_keys(server_id)"
    " WHERE state = 'approved'",
    """CREATE TABLE deeplink_pins (
        server_id INTEGER PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
        device_id TEXT NOT NULL,
        pinned_at REAL NOT NULL,
        pinned_by TEXT NOT NULL,
        pending_device_id TEXT,
        pending_at REAL)""",
)

# Power paths (docs/operations.md "choosing a power path"): how the agent reaches each seat.
# Every existing server is an IPMI seat. A Redfish seat reuses the ipmi_* login; a plug seat
# has its own (password sealed like the BMC's). A reading records the path that produced it
# and the watts a plug measured.
_V3 = (
    "ALTER TABLE servers ADD COLUMN power_path TEXT NOT NULL DEFAULT 'ipmi'"
    " CHECK (power_path IN ('ipmi', 'redfish', 'http'))",
    "ALTER TABLE servers ADD COLUMN redfish_url TEXT",
    "ALTER TABLE servers ADD COLUMN tls_verify INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE servers ADD COLUMN plug_preset TEXT",
    "ALTER TABLE servers ADD COLUMN plug_url TEXT",
    "ALTER TABLE servers ADD COLUMN plug_username TEXT",
    "ALTER TABLE servers ADD COLUMN plug_password_sealed TEXT",
    "ALTER TABLE servers ADD COLUMN plug_id TEXT",
    "ALTER TABLE servers ADD COLUMN plug_template TEXT"
    " CHECK (plug_template IS NULL OR json_valid(plug_template))",
    "ALTER TABLE readings ADD COLUMN path TEXT",
    "ALTER TABLE readings ADD COLUMN watts REAL",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """Read ``PRAGMA user_version``."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: Database, migrations: Sequence[Sequence[str]] = MIGRATIONS) -> int:
    """Bring the store to ``len(migrations)``; refuse a newer store; return the old version."""
    with db.read() as conn:
        found = schema_version(conn)
    if found > len(migrations):
        raise StoreTooNew(path=str(db.path), found=found, supported=len(migrations))
    for target in range(found + 1, len(migrations) + 1):
        with db.write() as conn:
            # Re-read under the write lock: another process may have migrated meanwhile.
            if schema_version(conn) >= target:
                continue
            for statement in migrations[target - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={target}")
    return found
