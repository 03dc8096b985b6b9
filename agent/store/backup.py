"""Integrity check, online backup and restore of the store file.

``backup_to`` uses SQLite's online backup API (writers keep going), writes a single
self-contained file (journal_mode=DELETE, mode 0600: it holds sealed secrets and password
hashes), checks it, and renames it into place atomically. ``restore_backup`` checks a backup
(integrity, schema not newer than this code, a bm-agent store at all) and copies it over the
store with the same API; the agent must be stopped, and the secrets key file is handled
separately (the backup never contains it). ``check_store_file`` runs the same checks on any
store file without changing it (``bm-agent upgrade-check``); ``store_in_use`` tells whether
another process has the store open (``bm-agent restore`` refuses then).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from pathlib import Path

from agent.errors import StoreCorrupt, StoreError, StoreTooNew
from agent.store._db import Database, translate_errors
from agent.store._schema import SCHEMA_VERSION, schema_version

__all__ = ["backup_to", "check_store_file", "create_private_file", "integrity_problems",
           "restore_backup", "store_in_use"]

# Every connection to a WAL database holds a shared POSIX lock on this byte of the -shm
# file for as long as it is open (SQLite os_unix.c: UNIX_SHM_DMS = (22 + 8) * 4 + 8).
_SHM_DMS_OFFSET = 128


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (SQLite copies it to -wal/-shm)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def integrity_problems(conn: sqlite3.Connection) -> list[str]:
    """Run ``PRAGMA integrity_check`` and ``foreign_key_check``; return problems ([] = clean)."""
    found = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
    problems = [] if found == ["ok"] else found
    for table, rowid, parent, _fkid in conn.execute("PRAGMA foreign_key_check").fetchall():
        problems.append(f"foreign key: {table} row {rowid} points to a missing {parent}")
    return problems


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup_to(db: Database, dest: Path) -> Path:
    """Copy the live store to ``dest`` (atomically replaced); return ``dest``."""
    dest = Path(dest).absolute()
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    create_private_file(tmp)
    try:
        with translate_errors(dest):
            target = sqlite3.connect(tmp, isolation_level=None)
            try:
                db.connection().backup(target)
                target.execute("PRAGMA journal_mode=DELETE")
                problems = integrity_problems(target)
            finally:
                target.close()
        if problems:
            raise StoreCorrupt("; ".join(problems[:5]), path=str(dest))
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _check_backup(src: Path) -> int:
    if not src.is_file():
        raise StoreError("backup file not found", path=str(src))
    with translate_errors(src):
        conn = sqlite3.connect(f"{src.absolute().as_uri()}?mode=ro", uri=True)
        try:
            version = schema_version(conn)
            problems = integrity_problems(conn)
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master"
                                                 " WHERE type = 'table'")}
        finally:
            conn.close()
    if problems:
        raise StoreCorrupt("; ".join(problems[:5]), path=str(src))
    if version > SCHEMA_VERSION:
        raise StoreTooNew(path=str(src), found=version, supported=SCHEMA_VERSION)
    if version == 0 or "servers" not in tables:
        raise StoreCorrupt("not a bm-agent store", path=str(src))
    return version


def check_store_file(path: Path) -> int:
    """Check a store or backup read-only (integrity, schema not too new); return its version."""
    return _check_backup(Path(path))


def store_in_use(path: Path) -> bool:
    """Tell whether another process has the store at ``path`` open (its -shm lock is held)."""
    shm = Path(f"{Path(path).absolute()}-shm")
    try:
        fd = os.open(shm, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False  # no connection in WAL mode exists without its -shm file
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS_OFFSET)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, _SHM_DMS_OFFSET)
        return False
    finally:
        os.close(fd)


def restore_backup(src: Path, dest: Path) -> int:
    """Replace the store at ``dest`` by the backup ``src`` (agent stopped); return its version.

    Open the result with ``Store.open`` afterwards: migrations bring an older backup up to
    date there.
    """
    src, dest = Path(src), Path(dest)
    version = _check_backup(src)
    create_private_file(dest)
    with translate_errors(dest):
        source = sqlite3.connect(f"{src.absolute().as_uri()}?mode=ro", uri=True)
        target = sqlite3.connect(dest, isolation_level=None)
        try:
            source.backup(target)
            problems = integrity_problems(target)
        finally:
            source.close()
            target.close()
    if problems:
        raise StoreCorrupt("; ".join(problems[:5]), path=str(dest))
    return version
