"""Logging for bm-hook: one line per step on stderr, with secrets scrubbed as a last guard.

Code never passes a secret to a log call; :class:`SecretFilter` is the belt to those
braces: every secret the run learns (keys, old and new codes) is registered and replaced
by ``***`` if it ever shows up in a formatted record.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["SecretFilter", "mask_device_id", "setup_logging"]

_FORMAT = "%(asctime)s bm-hook %(levelname)s %(message)s"
_MIN_SECRET_LEN = 6
_FORMATTER = logging.Formatter()


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

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def setup_logging(verbose: bool, log_file: str | None = None) -> SecretFilter:
    """Log to stderr (and ``log_file``, rewritten each run); return the secret filter in use.

    A scheduled task's stderr goes nowhere on Windows, hence the file.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        try:
            handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
        except OSError as exc:
            print(f"bm-hook: cannot write log file {log_file}: {exc}", file=sys.stderr)
    secret_filter = SecretFilter()
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.addFilter(secret_filter)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # urllib3 at DEBUG logs every URL; they hold no secret but drown the step lines.
    logging.getLogger("urllib3").setLevel(logging.INFO)
    return secret_filter


def mask_device_id(device_id: str) -> str:
    """Show only the last 4 characters of a DeepLink device code."""
    if not device_id:
        return "(none)"
    return "..." + device_id[-4:] if len(device_id) > 4 else "****"
