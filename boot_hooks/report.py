"""Tell the agent about each failed rotation attempt (``POST /api/v1/hook/report``).

A diskless PC loses its log at the next reset; the agent keeps the report as an event on
the seat's page. ``FailureReports`` is the resident loop's ``FailureSink``:

- ``record(error, attempt)`` queues one report (exit code and name from the error's
  ``exit_code``, anything else counts as ``internal``; the message is ``str(error)`` on one
  line, capped; the boot's id and uptime; the time). At most ``MAX_QUEUED`` wait: the
  oldest is dropped and counted, and the next report sent says how many were dropped.
- ``flush(timeout_s)`` sends the queue in order through a fresh ``AgentClient`` signed by
  this PC's seat key (read from ``[agent] seat_key_file`` only if it exists: never made
  here), each request bounded by ``[deadlines] call_s`` and half the time left (the client
  may retry once). It stops at the first failure and keeps the rest for the next flush; a
  report the agent calls malformed (400) is dropped instead, so it cannot block the queue.

Direct mode has no agent: reports are only logged. Neither method ever raises, and no
secret is logged (the seat key's seed goes to ``remember_secret``, the log filter).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from boot_hooks.config import HookConfig
from boot_hooks.errors import ConfigError, ExitCode, HookError
from boot_hooks.keys import SEAT_KEY_FIELD, read_seed_file
from boot_hooks.relay import AgentClient, SeatSigner

__all__ = ["MAX_MESSAGE", "MAX_QUEUED", "FailureReports", "boot_id", "one_line"]

_LOGGER = logging.getLogger(__name__)
MAX_QUEUED = 20
MAX_MESSAGE = 500
_LINUX_BOOT_ID = "/proc/sys/kernel/random/boot_id"
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """Return ``text`` on one line without control/format characters, at most ``limit`` long."""
    cleaned = "".join(" " if unicodedata.category(c) in _HIDDEN else c for c in text)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[:limit - 1] + "…"


def _boot_time() -> float | None:
    try:
        import psutil

        return float(psutil.boot_time())
    except Exception:  # any psutil failure: the report goes without it
        return None


def boot_id() -> str:
    """Return this boot's id: Linux's random boot_id, else the boot time (UTC)."""
    try:
        with open(_LINUX_BOOT_ID, encoding="ascii") as fh:
            found = fh.read(64).strip()
        if found:
            return found
    except (OSError, ValueError):
        pass
    booted = _boot_time()
    if booted is None:
        return "unknown"
    return "boot-" + datetime.fromtimestamp(booted, UTC).strftime("%Y%m%dT%H%M%SZ")


def _uptime_s(now: float) -> float:
    booted = _boot_time()
    return round(max(0.0, now - booted), 1) if booted is not None else 0.0


class FailureReports:
    """Queue failed attempts; send them to the agent on ``flush`` (agent mode only)."""

    def __init__(self, config: HookConfig, remember_secret: Callable[[str], None],
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._remember = remember_secret
        self._clock = clock
        self._queue: deque[dict[str, Any]] = deque()
        self._dropped = 0
        self._lock = threading.Lock()
        self._boot_id = boot_id()

    @property
    def queued(self) -> int:
        """Reports waiting to be sent."""
        with self._lock:
            return len(self._queue)

    @property
    def dropped(self) -> int:
        """Reports dropped (queue full) and not yet mentioned in a sent report."""
        with self._lock:
            return self._dropped

    def record(self, error: BaseException, attempt: int) -> None:
        """Queue a report of one failed attempt (direct mode: log it only). Never raises."""
        try:
            report = self._build(error, attempt)
        except Exception:  # never let a report break the loop that reports
            _LOGGER.exception("cannot build a failure report")
            return
        if self._config.mode != "agent":
            _LOGGER.info("failure report (direct mode, not sent): attempt %d, exit %d %s",
                         report["attempt"], report["exit_code"], report["error"])
            return
        with self._lock:
            if len(self._queue) >= MAX_QUEUED:
                self._queue.popleft()
                self._dropped += 1
            self._queue.append(report)

    def flush(self, timeout_s: float) -> int:
        """Send queued reports in order until one fails or time runs out; return sent count."""
        if self._config.mode != "agent" or not self.queued:
            return 0
        try:
            return self._send_queued(time.monotonic() + max(0.0, timeout_s))
        except Exception:  # never raises: the reports wait for the next flush
            _LOGGER.exception("cannot send failure reports")
            return 0

    def _build(self, error: BaseException, attempt: int) -> dict[str, Any]:
        code = error.exit_code if isinstance(error, HookError) else ExitCode.INTERNAL
        now = self._clock()
        return {"exit_code": int(code), "error": code.name.lower(),
                "message": one_line(str(error) or type(error).__name__),
                "attempt": max(1, int(attempt)), "boot_id": self._boot_id,
                "uptime_s": _uptime_s(now), "occurred_at": round(now, 3)}

    def _client(self) -> AgentClient | None:
        path = self._config.seat_key_path
        if not os.path.exists(path):
            _LOGGER.info("failure reports wait: no seat key in %s yet (%d queued)", path,
                         self.queued)
            return None
        try:
            seed = read_seed_file(path, "[agent] seat_key_file", SEAT_KEY_FIELD)
        except ConfigError as exc:
            _LOGGER.warning("failure reports wait: %s", exc)
            return None
        self._remember(seed.hex)
        seat = SeatSigner(seed.hex)
        return AgentClient(self._config.agent_url, seat, source_ip=self._config.source_ip,
                           seat=seat, cert_sha256=self._config.agent_cert_sha256)

    def _send_queued(self, deadline: float) -> int:
        client = self._client()
        sent = 0
        while client is not None:
            left = deadline - time.monotonic()
            with self._lock:
                if not self._queue or left <= 0:
                    break
                head, dropped = self._queue[0], self._dropped
            report = dict(head)
            if dropped:
                report["message"] = one_line(
                    f"[{dropped} older failure reports dropped] {report['message']}")
            try:
                # AgentClient retries once (stale clock, replay): two requests fit in ``left``.
                client.report(report, min(self._config.deadlines.call_s, left / 2))
            except ConfigError as exc:  # 400: this report is malformed; never resend it
                _LOGGER.warning("agent refused failure report (dropped): %s", exc)
            except HookError as exc:
                _LOGGER.info("failure reports wait (%d queued): %s", self.queued, exc)
                break
            else:
                sent += 1
            with self._lock:
                if self._queue and self._queue[0] is head:  # record() may have dropped it
                    self._queue.popleft()
                self._dropped -= dropped
        return sent
