"""The agent's SQLite store: the only package that imports sqlite3.

Open with ``Store.open(path, *, sealer=None, clock=time.time, busy_timeout_s=5.0)``: the file
is created 0600 if missing, put in WAL mode, and migrated (``PRAGMA user_version``); a store
newer than this code raises ``StoreTooNew`` untouched. Thread-safe: each thread gets its own
connection (monitor pool and FastAPI's threadpool may share one ``Store``).

Repositories (keyword-only arguments, typed results from ``agent.models``):

- ``store.servers``  ServerRepo: add, upsert (idempotent import), update, set_registration,
  get, get_by_uuid, get_by_node_id, find_by_ip, find, count, credentials, all_credentials,
  verify_sealer (does the key open every sealed value? run it after a restore), remove
- ``store.intents``  IntentRepo: set_power, set_boot, get, all
- ``store.checks``   CheckRepo: record (a batch of CheckResult -> VerdictChange list),
  history, latest, verdict, verdicts, verdict_counts, reading_count, prune_history
- ``store.status``   StatusRepo: find, get (server + verdict + newest reading)
- ``store.events``   EventRepo: append, get, page, latest_id, prune, prune_sampled
- ``store.outbox``   OutboxRepo: enqueue, claim, complete, fail, release_claims, retry, get,
  find, counts, next_due_at, prune_done
- ``store.users`` / ``store.tokens`` / ``store.sessions``: accounts storage for agent.accounts.auth
- ``store.nonces``   NonceRepo: remember, prune, count
- ``store.deeplink`` DeepLinkRepo: record, note_boot, get, all, duplicate_device_ids
- ``store.seats``    SeatRepo: get_by_key, approved, find, enroll, decide (seat keys)
- ``store.pins``     DeepLinkPinRepo: get, all, pin_first, propose, approve (device_ids)

Store-wide: ``transaction()`` (group calls atomically; nested calls become savepoints),
``integrity_check()``, ``backup_to(path)``, ``schema_version()``, ``journal_mode()``,
``close()``; module-level ``restore_backup(src, dest)``, ``check_store_file(path)`` (read-only
checks, returns the schema version), ``store_in_use(path)``, ``backoff_delay``,
``SCHEMA_VERSION``. Every failure is a ``StoreError`` leaf (``StoreFull`` on a full disk: the
failed transaction is rolled back and the file stays intact) or a domain error
(``ServerNotFound``, ``AlreadyExists``, ``LeaseLost``, ``ValidationError``...).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from agent.errors import StoreError
from agent.secrets import Sealer
from agent.store._base import UNSET, Unset
from agent.store._db import Database
from agent.store._schema import MIGRATIONS, SCHEMA_VERSION, migrate, schema_version
from agent.store.accounts import SessionRepo, TokenRepo, UserRepo
from agent.store.backup import (
    backup_to,
    check_store_file,
    create_private_file,
    integrity_problems,
    restore_backup,
    store_in_use,
)
from agent.store.checks import CheckRepo
from agent.store.events import EventRepo
from agent.store.hooks import DeepLinkRepo, NonceRepo
from agent.store.outbox import OutboxRepo, backoff_delay
from agent.store.seats import DeepLinkPinRepo, SeatRepo
from agent.store.servers import IntentRepo, ServerRepo
from agent.store.status import StatusRepo

__all__ = ["SCHEMA_VERSION", "UNSET", "Store", "Unset", "backoff_delay", "check_store_file",
           "restore_backup", "store_in_use"]

_LOGGER = logging.getLogger(__name__)


class Store:
    """Handle on one store file; see the module docstring for the repositories."""

    def __init__(self, db: Database, *, sealer: Sealer | None,
                 clock: Callable[[], float]) -> None:
        self._db = db
        self.servers = ServerRepo(db, clock, sealer)
        self.intents = IntentRepo(db, clock)
        self.checks = CheckRepo(db, clock)
        self.status = StatusRepo(db, clock)
        self.events = EventRepo(db, clock)
        self.outbox = OutboxRepo(db, clock)
        self.users = UserRepo(db, clock)
        self.tokens = TokenRepo(db, clock)
        self.sessions = SessionRepo(db, clock)
        self.nonces = NonceRepo(db, clock)
        self.deeplink = DeepLinkRepo(db, clock)
        self.seats = SeatRepo(db, clock)
        self.pins = DeepLinkPinRepo(db, clock)

    @classmethod
    def open(cls, path: str | Path, *, sealer: Sealer | None = None,
             clock: Callable[[], float] = time.time, busy_timeout_s: float = 5.0,
             migrations: Sequence[Sequence[str]] = MIGRATIONS) -> Store:
        """Open (creating if needed) and migrate the store at ``path``."""
        path = Path(path).absolute()
        if not path.parent.is_dir():
            raise StoreError("directory does not exist", path=str(path))
        create_private_file(path)
        db = Database(path, busy_timeout_s=busy_timeout_s)
        try:
            _prepare(db, migrations)
        except BaseException:
            db.close()
            raise
        return cls(db, sealer=sealer, clock=clock)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._db.path

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group repository calls into one durable, atomic transaction."""
        with self._db.write():
            yield

    def schema_version(self) -> int:
        """Return the schema version of the file."""
        with self._db.read() as conn:
            return schema_version(conn)

    def journal_mode(self) -> str:
        """Return the journal mode (``wal`` once opened)."""
        with self._db.read() as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0])

    def integrity_check(self) -> list[str]:
        """Return integrity and foreign-key problems ([] means clean)."""
        with self._db.read() as conn:
            return integrity_problems(conn)

    def backup_to(self, path: str | Path) -> Path:
        """Write an online, consistent, self-contained copy to ``path`` (mode 0600)."""
        return backup_to(self._db, Path(path))

    def close(self) -> None:
        """Close every connection."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _prepare(db: Database, migrations: Sequence[Sequence[str]]) -> None:
    with db.read() as conn:
        found = schema_version(conn)  # also fails fast on a file that is not a database
        if found > len(migrations):
            migrate(db, migrations)  # raises StoreTooNew before anything is changed
        mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
    if mode.lower() != "wal":
        raise StoreError(f"cannot switch to WAL mode (got {mode})", path=str(db.path))
    old = migrate(db, migrations)
    if old != len(migrations):
        _LOGGER.info("store %s migrated from schema %d to %d", db.path, old, len(migrations))
