"""Logging for bm-hook: one line per step on stderr, with secrets scrubbed as a last guard.

Code never passes a secret to a log call; :class:`SecretFilter` is the belt to those
braces: every secret the run learns (keys, old and new codes) is registered and replaced
by ``***`` if it ever shows up in a formatted record. The filter sits on every handler:
stderr, ``--log-file``, the rotating ``bm-hook.log`` in the state dir, and the in-memory
ring of the last lines (:func:`recent_log_lines`, the tail a failure report carries).
"""

from __future__ import annotations

import collections
import logging
import logging.handlers
import sys

__all__ = ["SecretFilter", "attach_rotating_log", "mask_device_id", "recent_log_lines",
           "setup_logging"]

_FORMAT = "%(asctime)s bm-hook %(levelname)s %(message)s"
_MIN_SECRET_LEN = 6
_FORMATTER = logging.Formatter()
RECENT_LINES = 200
ROTATE_BYTES, ROTATE_BACKUPS = 1_000_000, 3


class SecretFilter(logging.Filter):
    """Replace registered secrets in log records by ``***``."""

    def __init__(self) -> None:
        """Start with no secrets."""
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        """Register a secret (too-short strings would mask ordinary words; ignored)."""
        if len(secret) >= _MIN_SECRET_LEN:
            self._secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the record in place; always keep it."""
        if not self._secrets:
            return True
        text = record.getMessage()
        scrubbed = self._scrub(text)
        if scrubbed != text:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._scrub(_FORMATTER.formatException(record.exc_info))
        return True

    def scrub(self, text: str) -> str:
        """Return ``text`` with every registered secret replaced by ``***``."""
        return self._scrub(text)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class RecentLines(logging.Handler):
    """Keep the last ``capacity`` formatted lines in memory (a ring; oldest dropped)."""

    def __init__(self, secret_filter: SecretFilter, capacity: int = RECENT_LINES) -> None:
        """Start empty; ``secret_filter`` scrubs again on read (secrets learnt later)."""
        super().__init__()
        self._lines: collections.deque[str] = collections.deque(maxlen=capacity)
        self._secret_filter = secret_filter

    def emit(self, record: logging.LogRecord) -> None:
        """Append one formatted line."""
        try:
            self._lines.append(self.format(record))
        except Exception:  # a logging handler must never raise
            self.handleError(record)

    def lines(self) -> list[str]:
        """Return the kept lines, oldest first, scrubbed once more."""
        return [self._secret_filter.scrub(line) for line in list(self._lines)]


_recent: RecentLines | None = None


def recent_log_lines() -> list[str]:
    """Return the last lines this process logged (at most 200; empty before setup)."""
    return _recent.lines() if _recent is not None else []


def _install(handler: logging.Handler, secret_filter: SecretFilter) -> logging.Handler:
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(secret_filter)
    return handler


def attach_rotating_log(path: str, secret_filter: SecretFilter) -> bool:
    """Also log to ``path``, rotated at ~1 MB with 3 old files kept; False if it cannot."""
    try:
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=ROTATE_BYTES, backupCount=ROTATE_BACKUPS, encoding="utf-8")
    except OSError as exc:
        logging.getLogger(__name__).warning("cannot write the log file %s: %s", path,
                                            exc.strerror)
        return False
    logging.getLogger().addHandler(_install(handler, secret_filter))
    return True


def setup_logging(verbose: bool, log_file: str | None = None) -> SecretFilter:
    """Log to stderr, to memory (the last lines) and to ``log_file`` (rewritten each run).

    Return the secret filter in use. A Windows service's stderr goes nowhere, hence the
    file (``--log-file``, or the state dir's ``bm-hook.log`` via :func:`attach_rotating_log`).
    """
    global _recent
    secret_filter = SecretFilter()
    _recent = RecentLines(secret_filter)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr), _recent]
    if log_file:
        try:
            handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
        except OSError as exc:
            print(f"bm-hook: cannot write log file {log_file}: {exc}", file=sys.stderr)
    root = logging.getLogger()
    root.handlers[:] = [_install(handler, secret_filter) for handler in handlers]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # urllib3 at DEBUG logs every URL; they hold no secret but drown the step lines.
    logging.getLogger("urllib3").setLevel(logging.INFO)
    return secret_filter


def mask_device_id(device_id: str) -> str:
    """Show only the last 4 characters of a DeepLink device code."""
    if not device_id:
        return "(none)"
    return "..." + device_id[-4:] if len(device_id) > 4 else "****"
