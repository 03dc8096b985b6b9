"""Per-machine state between runs: the last code's hash, the seat key's place, log, status.

``[state] dir`` names a directory on storage the PC keeps across reboots (on a diskless
system: the per-machine disk). It holds ``last-code`` (salted hash, :mod:`boot_hooks.codes`),
``seat.key`` (unless ``[agent] seat_key_file`` is set), ``bm-hook.log`` (rotating) and
``status.json`` (the last attempt's result). The legacy ``[state] file`` names the
last-code file; its parent then acts as the dir.

No dir configured: everything is kept in memory for this boot only (one INFO line says
so); agent mode then needs ``[agent] seat_key_file``, since a seat key made anew at each
boot would wait for staff approval at each boot. A dir that cannot be created or written
(the per-machine disk is not mounted): a WARNING, and memory only; the seat key, if it
was to live there, is then a :class:`ConfigError` naming the dir.

bm-hook creates only the dir itself, never its parents (they are the per-machine disk),
mode 0700 on Linux, and on Windows gives it to SYSTEM and Administrators only (inherited
by everything made inside). An existing dir's permissions are left as they are.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from boot_hooks.codes import CodeStore, LastCodeStore, MemoryCodeStore
from boot_hooks.config import HookConfig
from boot_hooks.errors import ConfigError, StateUnavailable
from boot_hooks.keys import restrict_windows_dir_acl

__all__ = ["LOG_FILE", "MEMORY_ONLY", "STATUS_FILE", "HookState", "open_state",
           "prepare_state_dir", "require_seat_key_place"]

_LOGGER = logging.getLogger(__name__)
LOG_FILE = "bm-hook.log"
STATUS_FILE = "status.json"
MEMORY_ONLY = "no [state] dir: last code and log kept in memory for this boot only"
_PROBE = ".bm-hook-write-probe"


class HookState:
    """One per process: a persistent directory, or memory only."""

    def __init__(self, codes: CodeStore, directory: str = "", unusable: str = "") -> None:
        """``directory``: the usable state dir (``""``: memory only, ``unusable`` says why)."""
        self.codes = codes
        self.persistent = bool(directory)
        self.where = directory or "memory"
        self.log_path: str | None = str(Path(directory) / LOG_FILE) if directory else None
        self.unusable = unusable
        self._status: dict[str, Any] | None = None

    def last_code_matches(self, code: str) -> bool:
        """Tell whether ``code`` is the last code this PC made."""
        return self.codes.matches(code)

    def remember_code(self, code: str) -> None:
        """Record ``code`` as the last one (its salted hash); never raises."""
        self.codes.remember(code)

    def write_status(self, status: Mapping[str, Any]) -> None:
        """Keep ``status`` (and write ``status.json`` atomically if persistent); never raises."""
        self._status = dict(status)
        if not self.persistent:
            return
        path = Path(self.where) / STATUS_FILE
        tmp = path.with_name(STATUS_FILE + ".tmp")
        try:
            text = json.dumps(self._status, default=str, sort_keys=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
            os.replace(tmp, path)
        except (OSError, TypeError, ValueError) as exc:
            _LOGGER.warning("could not write %s: %s", path, exc)

    def read_status(self) -> dict[str, Any] | None:
        """Return the last status written (from ``status.json`` if persistent), or None."""
        if self.persistent:
            try:
                data = json.loads((Path(self.where) / STATUS_FILE).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = None
            if isinstance(data, dict):
                return data
        return dict(self._status) if self._status is not None else None

    def seat_key_path(self, config: HookConfig) -> str:
        """Return where the seat key lives; ConfigError when its dir is not usable."""
        if config.seat_key_file or self.persistent:
            return config.seat_key_path
        require_seat_key_place(config)
        raise StateUnavailable(
            f"[state] dir {self.unusable}: this PC's seat key must persist there (else"
            " every boot waits for staff approval); mount the per-machine disk, fix"
            " [state] dir, or set [agent] seat_key_file")


def require_seat_key_place(config: HookConfig) -> None:
    """Agent mode needs a per-machine place for the seat key: ConfigError if none is set."""
    if config.mode == "agent" and not config.seat_key_path:
        raise ConfigError(
            "agent mode needs a per-machine place for this PC's seat key: set [state] dir"
            " (a directory on the disk this PC keeps across reboots, e.g. /var/lib/bm-hook"
            r" or E:\bm-hook; env BM_HOOK_STATE_DIR) or [agent] seat_key_file")


def open_state(config: HookConfig,
               restrict_dir: Callable[[str], str] | None = None) -> HookState:
    """Open ``[state] dir`` (made if absent), or fall back to memory with one log line."""
    require_seat_key_place(config)
    directory = config.state_dir_path
    if not directory:
        _LOGGER.info(MEMORY_ONLY)
        return HookState(MemoryCodeStore())
    problem = prepare_state_dir(directory, restrict_dir)
    if problem:
        _LOGGER.warning("[state] dir %s is not usable (%s): last code, log and status kept"
                        " in memory for this boot only; mount the per-machine disk or fix"
                        " [state] dir", directory, problem)
        return HookState(MemoryCodeStore(), unusable=f"{directory} is not usable ({problem})")
    _LOGGER.info("state: %s", directory)
    return HookState(LastCodeStore(config.last_code_path), directory)


def prepare_state_dir(directory: str,
                      restrict_dir: Callable[[str], str] | None = None) -> str:
    """Make ``directory`` if absent (not its parents) and try a write; return why it fails."""
    path = Path(directory)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        return f"cannot create it: {exc.strerror or type(exc).__name__}"
    else:
        _restrict_new_dir(directory, restrict_dir)
    if not path.is_dir():
        return "it is not a directory"
    probe = path / f"{_PROBE}-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"ok\n")
        finally:
            os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write in it: {exc.strerror or type(exc).__name__}"
    return ""


def _restrict_new_dir(directory: str, restrict_dir: Callable[[str], str] | None) -> None:
    if restrict_dir is None and os.name != "nt":
        return  # mkdir(mode=0o700) did it (less the umask, which only removes bits)
    failure = (restrict_dir or restrict_windows_dir_acl)(directory)
    if failure:
        _LOGGER.warning("could not restrict [state] dir %s to SYSTEM and Administrators"
                        " (icacls %s); its key files are restricted one by one", directory,
                        failure)
