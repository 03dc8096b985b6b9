"""One overall deadline per node call: connect, send, headers and body together.

``requests`` (through urllib3 and http.client) bounds each socket wait, not the whole
exchange: a node that drips one byte of its status line or headers every 0.3 s keeps a
call with a 2 s timeout alive for hours, because every single read finishes in time.
Neither urllib3 2.x nor httpx offers a total timeout, so the client enforces its own:

- ``DeadlineAdapter`` is the ``requests`` transport adapter of every ``Client`` session.
  Its connections register each socket they open or reuse with the call running in the
  current thread (a context variable);
- ``overall_deadline(seconds)`` brackets one call. A timer shuts the call's sockets down
  (``shutdown(SHUT_RDWR)``, which wakes a read blocked in another thread, TLS included)
  when the deadline passes; the blocked read returns at once and the caller sees
  ``watch.expired`` and raises its typed timeout. The connection is then dropped by
  urllib3, never reused.

A socket is only ever shut down while its call is still running: ``finish`` (on every
exit of the ``with`` block) forgets the sockets and cancels the timer under one lock.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["CallWatch", "DeadlineAdapter", "overall_deadline"]


class CallWatch:
    """The sockets of one running call, shut down together when its deadline passes."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._finished = False
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        """Add a socket of this call; shut it down at once if the deadline already passed."""
        with self._lock:
            if self._finished:
                return
            if self.expired:
                _shut_down(sock)
            else:
                self._sockets.append(sock)

    def start(self) -> None:
        """Start the deadline's timer."""
        self._timer.start()

    def finish(self) -> None:
        """End the call: cancel the timer and forget the sockets (they may be pooled)."""
        with self._lock:
            self._finished = True
            self._sockets.clear()
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            for sock in self._sockets:
                _shut_down(sock)


_CURRENT: ContextVar[CallWatch | None] = ContextVar("baremetal_call_watch", default=None)


def _shut_down(sock: socket.socket) -> None:
    # socket.socket.shutdown, not SSLSocket.shutdown: the latter also drops the TLS
    # object another thread is reading with; shutting down the descriptor is enough.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


@contextlib.contextmanager
def overall_deadline(seconds: float) -> Iterator[CallWatch]:
    """Bound every socket this thread opens or reuses inside the block to ``seconds``."""
    watch = CallWatch(seconds)
    token = _CURRENT.set(watch)
    watch.start()
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
