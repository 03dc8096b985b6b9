"""Connections, transactions and error translation for the store (the sqlite3 adapter).

One connection per thread (WAL lets readers run beside the one writer); connections of
threads that have ended are closed when the next one is made, so a churning thread pool
cannot leak them. Writes use ``BEGIN IMMEDIATE`` (take the write lock up front: no
deadlock-prone lock upgrade) and nest as SAVEPOINTs. Every ``sqlite3.Error`` leaves as a
``StoreError`` leaf (``translate_errors``).

Durability: ``write(durable=True)`` commits with ``synchronous=FULL`` (the WAL is fsynced
before COMMIT returns: an acknowledged audit event or outbox change survives power loss);
``durable=False`` commits with ``synchronous=NORMAL`` (survives a SIGKILL of the agent,
since the WAL write is done before COMMIT returns, but the last commits may vanish on
power loss): used for readings and verdicts, which the next pass rewrites anyway.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent.errors import (
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreIntegrityError,
)

__all__ = ["Database", "store_error_from", "translate_errors"]

_LOGGER = logging.getLogger(__name__)

# Primary result codes (https://www.sqlite.org/rescode.html).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CORRUPT = 5, 6, 11
_SQLITE_FULL, _SQLITE_CONSTRAINT, _SQLITE_NOTADB = 13, 19, 26
_WAL_SIZE_LIMIT = 64 * 1024 * 1024


def store_error_from(exc: sqlite3.Error, path: Path) -> StoreError:
    """Map a sqlite3 exception to the most specific StoreError leaf."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc)
    where = str(path)
    if primary == _SQLITE_FULL:
        return StoreFull(text, path=where)
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StoreCorrupt(text, path=where)
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StoreBusy(text, path=where)
    if primary == _SQLITE_CONSTRAINT or isinstance(exc, sqlite3.IntegrityError):
        return StoreIntegrityError(text, path=where)
    return StoreError(text, path=where)


@contextmanager
def translate_errors(path: Path) -> Iterator[None]:
    """Turn sqlite3 exceptions raised inside the block into StoreError leaves."""
    try:
        yield
    except sqlite3.Error as exc:
        raise store_error_from(exc, path) from exc


class _ThreadState(threading.local):
    conn: sqlite3.Connection | None = None
    depth: int = 0
    synchronous: str = ""
    data_version: int = -1


class Database:
    """Per-thread SQLite connections to one file, with nested write transactions."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self._busy_timeout_s = busy_timeout_s
        self._state = _ThreadState()
        self._lock = threading.Lock()
        # Writers of this process queue here (instant hand-over) instead of in SQLite's
        # busy handler, which polls with sleeps of up to 25 ms; busy_timeout still covers
        # other processes (a CLI beside the server).
        self._write_lock = threading.Lock()
        self._commits = 0  # commits made by this process
        self._foreign = 0  # times a thread saw another connection's commit
        self._open: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
        self._closed = False

    def connection(self) -> sqlite3.Connection:
        """Return this thread's connection, opening it on first use."""
        conn = self._state.conn
        if conn is None:
            conn = self._connect()
            self._state.conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise StoreError("store is closed", path=str(self.path))
            self._close_orphans()
            with translate_errors(self.path):
                conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s,
                                       isolation_level=None, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
            self._state.synchronous = "FULL"
            self._open.append((weakref.ref(threading.current_thread()), conn))
            return conn

    def _close_orphans(self) -> None:
        alive = []
        for ref, conn in self._open:
            thread = ref()
            if thread is not None and thread.is_alive():
                alive.append((ref, conn))
            else:
                conn.close()
        self._open = alive

    def open_connections(self) -> int:
        """Count connections currently open (for tests and metrics)."""
        with self._lock:
            return len(self._open)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Yield this thread's connection for reads, translating errors."""
        with translate_errors(self.path):
            yield self.connection()

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """Run the block in a write transaction (a savepoint when nested); commit on success."""
        conn = self.connection()
        state = self._state
        with translate_errors(self.path):
            if state.depth > 0:
                with self._savepoint(conn):
                    yield conn
                return
            self._set_synchronous(conn, "FULL" if durable else "NORMAL")
            with self._write_lock:
                conn.execute("BEGIN IMMEDIATE")
                state.depth = 1
                try:
                    yield conn
                    conn.execute("COMMIT")
                    self._commits += 1  # under _write_lock
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                finally:
                    state.depth = 0

    @contextmanager
    def _savepoint(self, conn: sqlite3.Connection) -> Iterator[None]:
        state = self._state
        name = f"sp{state.depth}"
        conn.execute(f"SAVEPOINT {name}")
        state.depth += 1
        try:
            yield
        except BaseException:
            if conn.in_transaction:  # SQLITE_FULL may already have rolled everything back
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
            raise
        else:
            conn.execute(f"RELEASE {name}")
        finally:
            state.depth -= 1

    def generation(self) -> tuple[int, int]:
        """Return a value that changes whenever anyone (this process or another) committed.

        Own commits are counted; others' show up as a new ``PRAGMA data_version`` on this
        thread's connection. Read it before a query whose result you cache under it.
        """
        with self.read() as conn:
            version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if version != self._state.data_version:
            self._state.data_version = version
            with self._lock:
                self._foreign += 1
        return self._commits, self._foreign

    def _set_synchronous(self, conn: sqlite3.Connection, level: str) -> None:
        if self._state.synchronous != level:
            conn.execute(f"PRAGMA synchronous={level}")
            self._state.synchronous = level

    def close(self) -> None:
        """Close every connection (call after the threads using the store have stopped)."""
        with self._lock:
            self._closed = True
            for _ref, conn in self._open:
                conn.close()
            self._open = []
        self._state.conn = None
