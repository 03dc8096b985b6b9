"""One overall deadline per node call: connect, send, headers and body together.

``requests`` (through urllib3 and http.client) bounds each socket wait, not the whole
exchange: a node that drips one byte of its status line or headers every 0.3 s keeps a
call with a 2 s timeout alive for hours, because every single read finishes in time.
Neither urllib3 2.x nor httpx offers a total timeout, so the client enforces its own:

- ``DeadlineAdapter`` is the ``requests`` transport adapter of every ``Client`` session.
  Its connections register each socket they open or reuse with the call running in the
  current thread (a context variable);
- ``overall_deadline(seconds)`` brackets one call. One shared watchdog thread (started on
  first use) shuts the call's sockets down (``shutdown(SHUT_RDWR)``, which wakes a read
  blocked in another thread, TLS included) when the deadline passes; the blocked read
  returns at once and the caller sees ``watch.expired`` and raises its typed timeout. The
  connection is then dropped by urllib3, never reused.

A socket is only ever shut down while its call is still running: ``finish`` (on every
exit of the ``with`` block) forgets the sockets under the watch's lock, and the watchdog
skips finished calls. Not bounded: the DNS lookup before a connect (nodes are addressed
by IP in practice); the connect itself has its own timeout within the deadline.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["CallWatch", "DeadlineAdapter", "overall_deadline"]


class CallWatch:
    """The sockets of one running call, shut down together when its deadline passes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.finished = False
        self.expired = False

    def watch(self, sock: socket.socket) -> None:
        """Add a socket of this call; shut it down at once if the deadline already passed."""
        with self._lock:
            if self.finished:
                return
            if self.expired:
                _shut_down(sock)
            else:
                self._sockets.append(sock)

    def finish(self) -> None:
        """End the call: forget its sockets (they may go back to the pool)."""
        with self._lock:
            self.finished = True
            self._sockets.clear()

    def expire(self) -> None:
        """Shut down every socket of the call (its deadline passed), unless it finished."""
        with self._lock:
            if self.finished:
                return
            self.expired = True
            for sock in self._sockets:
                _shut_down(sock)


class _Watchdog:
    """One daemon thread expiring the calls whose deadline passed (earliest first)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, CallWatch]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, watch: CallWatch, seconds: float) -> None:
        """Expire ``watch`` in ``seconds`` unless it finishes first."""
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._seq), watch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="node-call-watchdog",
                                                daemon=True)
                self._thread.start()
            elif self._heap[0][2] is watch:
                self._cond.notify()  # an earlier deadline than the one being waited for

    def _run(self) -> None:
        while True:
            with self._cond:
                due = self._wait_for_due()
            for watch in due:
                watch.expire()

    def _wait_for_due(self) -> list[CallWatch]:
        """Pop the calls that are due (dropping finished ones); wait while there are none."""
        while True:
            now = time.monotonic()
            due = []
            while self._heap and (self._heap[0][2].finished or self._heap[0][0] <= now):
                _at, _seq, watch = heapq.heappop(self._heap)
                if not watch.finished:
                    due.append(watch)
            if due:
                return due
            self._cond.wait(self._heap[0][0] - now if self._heap else None)


_WATCHDOG = _Watchdog()


def _fresh_watchdog_after_fork() -> None:
    # A child process starts without the parent's watchdog thread, maybe with its lock held.
    global _WATCHDOG
    _WATCHDOG = _Watchdog()


os.register_at_fork(after_in_child=_fresh_watchdog_after_fork)


_CURRENT: ContextVar[CallWatch | None] = ContextVar("baremetal_call_watch", default=None)


def _shut_down(sock: socket.socket) -> None:
    # socket.socket.shutdown, not SSLSocket.shutdown: the latter also drops the TLS
    # object another thread is reading with; shutting down the descriptor is enough.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


@contextlib.contextmanager
def overall_deadline(seconds: float) -> Iterator[CallWatch]:
    """Bound every socket this thread opens or reuses inside the block to ``seconds``."""
    watch = CallWatch()
    token = _CURRENT.set(watch)
    _WATCHDOG.arm(watch, seconds)
    try:
        yield watch
    finally:
        watch.finish()
        _CURRENT.reset(token)


def _watch_current(sock: socket.socket | None) -> None:
    watch = _CURRENT.get()
    if watch is not None and sock is not None:
        watch.watch(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch_current(sock)  # before the TLS handshake and the request are sent
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch_current(self.sock)  # a pooled connection: its socket exists already
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch_current(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch_current(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """The ``requests`` adapter whose connections report their sockets to the running call."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Build requests' pool manager, with pools of watched connections."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
