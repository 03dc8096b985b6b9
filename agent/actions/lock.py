"""Per-server action locks shared by every process that uses the same store.

The service and a CLI command (``bm-agent power on ...``) each build their own ``Actions``;
without a shared lock, both could drive one BMC at once. Inside a process a dict says who
holds a server; across processes a POSIX record lock on one byte of ``<store>-actions.lock``
(at an offset derived from the server's uuid) does. The kernel drops a process's record
locks when it dies, so a ``kill -9`` never leaves a server locked.

Record locks belong to the process, not the file descriptor: threads of one process never
conflict through them (the dict covers that), and closing any descriptor of the file drops
all of the process's locks on it. So there is one ``ServerLocks`` per lock file per process
(``ServerLocks.shared``), and it opens the file while it holds something and closes it
when it holds nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from pathlib import Path

__all__ = ["OTHER_PROCESS", "ServerLocks", "lock_file_for"]

_SHARED: dict[Path, ServerLocks] = {}
_SHARED_GUARD = threading.Lock()

_LOGGER = logging.getLogger(__name__)
#: What ``acquire`` reports when another process holds the server.
OTHER_PROCESS = "an action started by another bm-agent process (service or CLI)"
_SUFFIX = "-actions.lock"


def lock_file_for(store_path: Path) -> Path:
    """Return the lock file that goes with a store file."""
    return store_path.with_name(store_path.name + _SUFFIX)


class ServerLocks:
    """Try-locks per server uuid: in this process and, through the lock file, across processes."""

    def __init__(self, lock_file: Path) -> None:
        self._guard = threading.Lock()
        self._held: dict[str, str] = {}  # uuid -> action holding it in this process
        self._path = lock_file
        self._fd: int | None = None

    @classmethod
    def shared(cls, lock_file: Path) -> ServerLocks:
        """Return this process's locks for ``lock_file`` (one instance per file)."""
        with _SHARED_GUARD:
            return _SHARED.setdefault(lock_file, cls(lock_file))

    def acquire(self, uuid: str, action: str) -> str | None:
        """Take ``uuid`` for ``action``; return what holds it instead, None when taken."""
        with self._guard:
            holder = self._held.get(uuid)
            if holder is not None:
                return holder
            if self._fd is None:
                self._fd = _open_lock_file(self._path)
            if self._fd is not None and not _lock_byte(self._fd, uuid, fcntl.LOCK_EX):
                self._close_if_idle()
                return OTHER_PROCESS
            self._held[uuid] = action
            return None

    def release(self, uuid: str) -> None:
        """Give ``uuid`` back."""
        with self._guard:
            if self._held.pop(uuid, None) is not None and self._fd is not None:
                _lock_byte(self._fd, uuid, fcntl.LOCK_UN)
                self._close_if_idle()

    def held(self) -> dict[str, str]:
        """Return the servers this process holds (uuid -> action)."""
        with self._guard:
            return dict(self._held)

    def _close_if_idle(self) -> None:
        if not self._held and self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _lock_byte(fd: int, uuid: str, kind: int) -> bool:
    try:
        fcntl.lockf(fd, kind | (fcntl.LOCK_NB if kind != fcntl.LOCK_UN else 0), 1, _offset(uuid))
    except OSError:  # EAGAIN/EACCES: another process holds it
        return False
    return True


def _offset(uuid: str) -> int:
    # 48 bits: collisions between two servers' uuids are out of reach for any café.
    return int.from_bytes(hashlib.blake2b(uuid.encode("utf-8"), digest_size=6).digest(), "big")


def _open_lock_file(path: Path) -> int | None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
    except OSError as exc:
        _LOGGER.warning("cannot open %s (%s): actions are locked within this process only",
                        path, exc.strerror)
        return None
    _match_store_owner(fd, path)
    return fd


def _match_store_owner(fd: int, path: Path) -> None:
    """Root (a CLI run with sudo) hands the file to the store's owner, so the service can lock."""
    if os.geteuid() != 0:
        return
    store = path.with_name(path.name.removesuffix(_SUFFIX))
    try:
        owner = store.stat()
        os.fchown(fd, owner.st_uid, owner.st_gid)
    except OSError:
        pass  # no store yet or a read-only mount: the next owner-run process creates it
