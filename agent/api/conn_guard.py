"""Connection limits for ``bm-agent serve``: one host cannot take the API offline (slowloris).

As found: 1,100 half-sent requests from one host, held open, exhausted the process's file
descriptors; ``/healthz`` timed out and asyncio logged 935k "accept() out of system
resource" tracebacks (416 MB in 75 s). ``cmd_serve`` now runs uvicorn with:

- ``GuardedH11Protocol`` (uvicorn's h11 protocol, subclassed): at most ``[api]
  max_connections_per_ip`` (64) open connections per client address, more are closed as
  soon as they are accepted; a connection that has not sent complete request headers within
  ``[api] header_timeout_s`` (10 s) of opening, or of its previous answer, is closed;
- uvicorn's ``limit_concurrency`` (``[api] limit_concurrency``, 1000: 503 beyond);
- ``raise_open_files_limit``: the soft ``RLIMIT_NOFILE`` raised to ``[api] open_files``
  (at most the hard limit) at start;
- ``GuardedServer``: asyncio's accept() resource errors logged at most once per 10 s, with
  a count, instead of a traceback each. Closed connections are logged the same way.

The subclass relies on uvicorn's internals (``H11Protocol`` and its ``conn``, ``transport``,
``on_response_complete``): pyproject pins uvicorn to ``UVICORN_RANGE`` and
``check_uvicorn()`` refuses to serve with another version.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import logging
import resource
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import get_remote_addr

from agent.config import ApiSettings

__all__ = ["UVICORN_RANGE", "ConnectionLimits", "GuardedH11Protocol", "GuardedServer",
           "LogThrottle", "check_uvicorn", "guarded_protocol", "raise_open_files_limit",
           "uvicorn_options"]

_LOGGER = logging.getLogger(__name__)

UVICORN_RANGE = ((0, 30), (0, 56))  # >= first, < second: keep in step with pyproject.toml
LOG_EVERY_S = 10.0
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_OVERRIDDEN = ("connection_made", "connection_lost", "data_received", "on_response_complete")


class LogThrottle:
    """Count events; say when to log: the first at once, then at most once per ``every_s``."""

    def __init__(self, every_s: float = LOG_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._every_s = every_s
        self._clock = clock
        self._last = float("-inf")
        self._count = 0
        self._lock = threading.Lock()

    def hit(self) -> int:
        """Count one event; return how many to report now (0: stay quiet)."""
        with self._lock:
            self._count += 1
            now = self._clock()
            if now - self._last < self._every_s:
                return 0
            count, self._count, self._last = self._count, 0, now
            return count


@dataclass
class ConnectionLimits:
    """Open connections per client address, shared by every protocol instance."""

    per_ip: int
    header_timeout_s: float
    open_by_ip: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    timed_out: int = 0
    _refused_log: LogThrottle = field(default_factory=LogThrottle)
    _timeout_log: LogThrottle = field(default_factory=LogThrottle)

    def admit(self, ip: str) -> bool:
        """Count a new connection from ``ip``; False (and nothing counted) when over the cap."""
        if self.open_by_ip[ip] >= self.per_ip:
            self.refused += 1
            count = self._refused_log.hit()
            if count:
                _LOGGER.warning("closed %d connection(s) at once: %s already holds %d open "
                                "connections ([api] max_connections_per_ip)", count, ip,
                                self.per_ip)
            return False
        self.open_by_ip[ip] += 1
        return True

    def release(self, ip: str) -> None:
        """Forget one closed connection from ``ip``."""
        self.open_by_ip[ip] -= 1
        if self.open_by_ip[ip] <= 0:
            del self.open_by_ip[ip]

    def note_header_timeout(self, ip: str) -> None:
        """Count (and sometimes log) a connection closed for sending no complete headers."""
        self.timed_out += 1
        count = self._timeout_log.hit()
        if count:
            _LOGGER.warning("closed %d connection(s) that sent no complete request headers "
                            "within %g s (latest from %s; [api] header_timeout_s)", count,
                            self.header_timeout_s, ip)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a per-address cap and a request-header deadline."""

    limits: ClassVar[ConnectionLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._peer_ip: str | None = None
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit the connection (or close it at once) and start its header deadline."""
        peer = get_remote_addr(transport)  # type: ignore[arg-type]
        ip = peer[0] if peer else ""
        if not self.limits.admit(ip):
            transport.abort()  # type: ignore[attr-defined]
            return
        self._peer_ip = ip
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Release the address's slot; a connection refused at once has nothing else."""
        if self._peer_ip is None:
            return
        self._cancel_header_timer()
        self.limits.release(self._peer_ip)
        self._peer_ip = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse as uvicorn does; stop the deadline once the request headers are complete."""
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        """After an answer on a kept-alive connection, the next headers have a deadline too."""
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.limits.header_timeout_s,
                                                  self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        self.limits.note_header_timeout(self._peer_ip or "?")
        self.transport.close()


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """Return a ``GuardedH11Protocol`` class bound to ``limits`` (uvicorn's ``http=``)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits})


class GuardedServer(uvicorn.Server):
    """uvicorn's server, with asyncio's accept() resource errors logged sparingly."""

    async def startup(self, sockets: Any = None) -> None:
        """Install the throttled exception handler on the running loop, then start."""
        install_accept_error_throttle(asyncio.get_running_loop())
        await super().startup(sockets)


def install_accept_error_throttle(loop: asyncio.AbstractEventLoop,
                                  throttle: LogThrottle | None = None) -> None:
    """Log accept() EMFILE/ENFILE/ENOBUFS/ENOMEM once per 10 s with a count, no traceback."""
    throttle = throttle or LogThrottle()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if (isinstance(exc, OSError) and exc.errno in _RESOURCE_ERRNOS
                and "accept" in str(context.get("message", ""))):
            count = throttle.hit()
            if count:
                soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
                _LOGGER.error("accept() failed %d time(s) (latest: %s); open files soft "
                              "limit %d; new connections wait", count, exc.strerror, soft)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def raise_open_files_limit(wanted: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to ``wanted`` (at most the hard limit); return old, new."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target <= soft:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        _LOGGER.warning("cannot raise the open files limit from %d to %d: %s", soft, target, exc)
        return soft, soft
    return soft, target


def check_uvicorn() -> str | None:
    """Return why the installed uvicorn cannot carry ``GuardedH11Protocol``, or None."""
    try:
        version = tuple(int(part) for part in uvicorn.__version__.split(".")[:2])
    except ValueError:
        return f"unparsable uvicorn version {uvicorn.__version__!r}"
    low, high = UVICORN_RANGE
    if not low <= version < high:
        return (f"uvicorn {uvicorn.__version__} is outside the supported range "
                f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}")
    missing = [name for name in _OVERRIDDEN if not callable(getattr(H11Protocol, name, None))]
    params = inspect.signature(H11Protocol.__init__).parameters
    missing += [name for name in ("config", "server_state", "app_state") if name not in params]
    if missing:
        return f"uvicorn {uvicorn.__version__}'s H11Protocol lacks {', '.join(missing)}"
    return None


def uvicorn_options(api: ApiSettings) -> dict[str, Any]:
    """Return the ``uvicorn.Config`` options that bound connections (``http``, limits)."""
    limits = ConnectionLimits(per_ip=api.max_connections_per_ip,
                              header_timeout_s=api.header_timeout_s)
    return {"http": guarded_protocol(limits), "limit_concurrency": api.limit_concurrency}
