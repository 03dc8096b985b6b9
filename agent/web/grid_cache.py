"""The grid's JSON body, kept encoded (plain and gzip) and refreshed off the request path.

Building the body for 500 servers costs ~15-25 ms of Python after a monitor pass (the
store rebuilds its status rows, then every row is encoded). A poll must not pay that, so
``GridCache.get()`` answers from the last built body and, when it is older than
``max_age_s``, starts one refresh in a background thread (stale-while-revalidate): polls
never wait for a build, except the very first. The body is at most ``max_age_s`` plus
one build old — the page polls every 5 s. While no one polls, nothing runs.

The body is ``GridOut`` (``agent.web.shapes``, where the row format is written) serialised
by pydantic once per build; requests only send the stored bytes.

Fresh on first load: the monitor passes every ``[check] interval_s`` (60 s by default), so
a page opened after a quiet minute would show readings up to a minute old as if live.
``request_pass()`` (the page's first poll, and the poll after a staff action) starts one
monitor pass off the request path when the last one ended more than ``FRESH_S`` ago, and
rebuilds the body as soon as it ends; the page marks the older readings until then.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.web.shapes import GridOut

if TYPE_CHECKING:
    from agent.app import Agent

__all__ = ["FRESH_S", "GridBody", "GridCache", "build_body"]

_LOGGER = logging.getLogger(__name__)
FRESH_S = 5.0  # a page's first load asks for a pass when the last one is older than this


@dataclass(frozen=True)
class GridBody:
    """One encoded grid: JSON, its gzip, a strong ETag (of the JSON), when it was built."""

    body: bytes
    gzipped: bytes
    etag: str
    built_at: float


def build_body(agent: Agent, clock: Callable[[], float] = time.monotonic) -> GridBody:
    """Read every server's status through the agent and encode its row."""
    duplicated, deeplinks = agent.deeplink_statuses()
    last = agent.monitor.last_pass
    grid = GridOut.from_statuses(
        agent.server_statuses(), duplicated, deeplinks, agent.rental_view,
        pass_at=None if last is None else last.started_at + last.duration_s,
        interval_s=agent.settings.check.interval_s)
    body = grid.model_dump_json().encode("utf-8")
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    return GridBody(body, gzip.compress(body, compresslevel=5, mtime=0), etag, clock())


class GridCache:
    """The last GridBody, refreshed in the background once older than ``max_age_s``."""

    def __init__(self, agent: Agent, *, max_age_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._agent = agent
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._current: GridBody | None = None
        self._refreshing = False
        self._pass_asked_at: float | None = None  # Unix time of the pass in flight

    def get(self) -> GridBody:
        """Return the current body (building it now only the first time)."""
        current = self._current
        if current is None:
            with self._lock:  # first poll after start: build once, others wait for it
                if self._current is None:
                    self._current = build_body(self._agent, self._clock)
                return self._current
        if self._clock() - current.built_at > self._max_age_s:
            self._start_refresh()
        return current

    def request_pass(self, now: float) -> float | None:
        """Start a monitor pass unless one ended within FRESH_S or one was asked already.

        Return the Unix time the pending pass was asked at (None: the data is fresh).
        """
        last = self._agent.monitor.last_pass
        if last is not None and now - (last.started_at + last.duration_s) < FRESH_S:
            return self._pass_asked_at
        with self._lock:
            if self._pass_asked_at is not None:
                return self._pass_asked_at
            self._pass_asked_at = now
        threading.Thread(target=self._fresh_pass, name="grid-pass", daemon=True).start()
        return now

    def _fresh_pass(self) -> None:
        try:
            self._agent.monitor.run_pass()
        except Exception:  # the loop's next pass will try again
            _LOGGER.exception("pass asked for by the dashboard failed")
        finally:
            self._refresh_now()
            with self._lock:
                self._pass_asked_at = None

    def _refresh_now(self) -> None:
        with self._lock:
            self._refreshing = True
        self._refresh()

    def _start_refresh(self) -> None:
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True
        threading.Thread(target=self._refresh, name="grid-refresh", daemon=True).start()

    def _refresh(self) -> None:
        try:
            fresh = build_body(self._agent, self._clock)
            current = self._current
            # Same content: keep the object (and its ETag) but note it is fresh now.
            self._current = fresh if current is None or current.etag != fresh.etag else \
                GridBody(current.body, current.gzipped, current.etag, fresh.built_at)
        except Exception:
            _LOGGER.exception("grid refresh failed; serving the previous body")
        finally:
            with self._lock:
                self._refreshing = False
