r"""The Windows channel to DeepLink's SDK: ``\\.\pipe\deeplink_sdk`` with overlapped I/O.

Through the stdlib's ``_winapi`` (what ``multiprocessing.connection.PipeConnection``
uses), no threads and no new dependency:

- open: ``CreateFile(GENERIC_READ | GENERIC_WRITE, OPEN_EXISTING, FILE_FLAG_OVERLAPPED)``.
  ``ERROR_PIPE_BUSY`` (every instance taken) -> ``WaitNamedPipe`` and open again, until
  the open's deadline (:class:`SdkBusy`); ``ERROR_FILE_NOT_FOUND`` -> DeepLink is not
  there yet (:class:`SdkUnavailable`, the caller retries).
- read / write: ``ReadFile`` / ``WriteFile`` overlapped, then ``WaitForMultipleObjects``
  on the operation's event with the call's timeout. A timed-out operation is cancelled
  (``CancelIoEx``) and its end awaited (``GetOverlappedResult(wait=True)``), so nothing
  is pending afterwards; bytes of a read that completed in that race are kept.
  ``ERROR_MORE_DATA`` (a message-mode read cut short) is a normal chunk: the rest comes
  with the next read.
- close: ``CloseHandle``, always (nothing can still be in flight then).

``_winapi`` exists only on Windows; it is imported when a pipe is opened, so this module
imports everywhere, and the unit tests hand :meth:`PipeChannel.open` a scripted stand-in.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Sequence
from contextlib import suppress
from typing import Protocol, cast

from boot_hooks.errors import ConfigError
from boot_hooks.retry import Deadline
from boot_hooks.sdk_transport import READ_CHUNK, SdkBusy, SdkTimeout, SdkUnavailable

__all__ = ["Overlapped", "PipeChannel", "WinApi", "system_winapi"]

_LOGGER = logging.getLogger(__name__)

# Win32 constants (winerror.h, winbase.h, winnt.h); the same values as ``_winapi``'s.
ERROR_FILE_NOT_FOUND = 2
ERROR_PATH_NOT_FOUND = 3
ERROR_ACCESS_DENIED = 5
ERROR_BROKEN_PIPE = 109
ERROR_SEM_TIMEOUT = 121
ERROR_PIPE_BUSY = 231
ERROR_MORE_DATA = 234
ERROR_OPERATION_ABORTED = 995
ERROR_IO_PENDING = 997
GENERIC_READ = 0x80000000
GENERIC_WRITE = 0x40000000
OPEN_EXISTING = 3
FILE_FLAG_OVERLAPPED = 0x40000000
WAIT_OBJECT_0 = 0
NULL = 0
_NOT_THERE = (ERROR_FILE_NOT_FOUND, ERROR_PATH_NOT_FOUND)


class Overlapped(Protocol):
    """The part of ``_winapi.Overlapped`` this channel uses."""

    @property
    def event(self) -> int:
        """The manual-reset event signalled when the operation completes."""

    def GetOverlappedResult(self, wait: bool, /) -> tuple[int, int]:
        """Return (bytes transferred, error); raise OSError for a failed operation."""

    def cancel(self) -> None:
        """CancelIoEx the operation if it is still pending."""

    def getbuffer(self) -> bytes | None:
        """Return the bytes a completed read got."""


class WinApi(Protocol):  # Win32 names, as in _winapi
    """The part of ``_winapi`` this channel uses (the seam the unit tests script)."""

    def CreateFile(
        self, name: str, access: int, share: int, security: int,
        disposition: int, flags: int, template: int, /,
    ) -> int:
        """Open a file or pipe; OSError with ``winerror`` on failure."""

    def WaitNamedPipe(self, name: str, timeout_ms: int, /) -> None:
        """Wait until an instance of the pipe is free; OSError on timeout or absence."""

    def ReadFile(
        self, handle: int, size: int, overlapped: bool, /
    ) -> tuple[Overlapped, int]:
        """Start an overlapped read: (operation, 0 | ERROR_IO_PENDING | ERROR_MORE_DATA)."""

    def WriteFile(
        self, handle: int, data: bytes, overlapped: bool, /
    ) -> tuple[Overlapped, int]:
        """Start an overlapped write: (operation, 0 | ERROR_IO_PENDING)."""

    def WaitForMultipleObjects(
        self, handles: Sequence[int], wait_all: bool, timeout_ms: int, /
    ) -> int:
        """Wait for an event: WAIT_OBJECT_0 + index, or WAIT_TIMEOUT."""

    def CloseHandle(self, handle: int, /) -> None:
        """Close a handle."""


def system_winapi() -> WinApi:
    """Return the real ``_winapi`` (Windows only); elsewhere `sdk = "pipe"` is a ConfigError."""
    try:
        module = importlib.import_module("_winapi")
    except ImportError:
        raise ConfigError(
            '[deeplink] sdk = "pipe" needs Windows; on this system use "unix:PATH" or "none"'
        ) from None
    return cast(WinApi, module)


def _winerror(exc: OSError) -> int | None:
    code = getattr(exc, "winerror", None)
    return code if isinstance(code, int) else None


def _ms(seconds: float) -> int:
    # Rounded up, so a wait covers the deadline; never 0: WaitNamedPipe reads 0 as
    # NMPWAIT_USE_DEFAULT_WAIT (the server's default wait).
    return max(1, math.ceil(seconds * 1000))


class PipeChannel:
    """A :class:`~boot_hooks.sdk_transport.ByteChannel` on a Windows named pipe handle."""

    def __init__(self, api: WinApi, handle: int) -> None:
        """Own ``handle``, an open overlapped pipe handle."""
        self._api = api
        self._handle: int | None = handle

    @classmethod
    def open(cls, path: str, timeout_s: float, api: WinApi | None = None) -> PipeChannel:
        """Open the pipe at ``path``, waiting up to ``timeout_s`` while it is busy."""
        api = api if api is not None else system_winapi()
        deadline, logged = Deadline(timeout_s), False
        while True:
            try:
                handle = api.CreateFile(path, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                                        OPEN_EXISTING, FILE_FLAG_OVERLAPPED, NULL)
                return cls(api, handle)
            except OSError as exc:
                if _winerror(exc) != ERROR_PIPE_BUSY:
                    raise SdkUnavailable(_open_failure(path, exc)) from None
            if deadline.expired():
                raise SdkBusy(f"DeepLink SDK pipe {path} stayed busy (all instances in use)")
            if not logged:
                _LOGGER.info("DeepLink SDK pipe %s busy; waiting for a free instance", path)
                logged = True
            _wait_named_pipe(api, path, deadline)

    def write(self, data: bytes, timeout_s: float) -> None:
        """Write all of ``data``; a write not done by ``timeout_s`` is cancelled."""
        handle = self._open_handle()
        try:
            ov, err = self._api.WriteFile(handle, data, True)
            written, status, timed_out = self._settle(ov, err, timeout_s)
        except OSError as exc:
            raise SdkUnavailable(f"DeepLink SDK pipe write failed: {exc}") from None
        if status == ERROR_OPERATION_ABORTED and timed_out:
            raise SdkTimeout("DeepLink SDK did not take our request in time")
        if status != 0 or written != len(data):
            raise SdkUnavailable(f"DeepLink SDK pipe wrote {written} of {len(data)} bytes")

    def read(self, timeout_s: float) -> bytes:
        """Return the next bytes; a read with none by ``timeout_s`` is cancelled."""
        deadline = Deadline(timeout_s)
        while True:
            chunk = self._read_once(deadline.cap(timeout_s))
            if chunk:
                return chunk
            if deadline.expired():  # zero-length messages only: nothing to frame
                raise SdkTimeout("DeepLink SDK did not answer in time")

    def _read_once(self, timeout_s: float) -> bytes:
        handle = self._open_handle()
        try:
            ov, err = self._api.ReadFile(handle, READ_CHUNK, True)
            _, status, timed_out = self._settle(ov, err, timeout_s)
        except OSError as exc:
            if _winerror(exc) == ERROR_BROKEN_PIPE:
                raise SdkUnavailable("DeepLink SDK closed the pipe") from None
            raise SdkUnavailable(f"DeepLink SDK pipe read failed: {exc}") from None
        if status == ERROR_OPERATION_ABORTED:
            if timed_out:
                raise SdkTimeout("DeepLink SDK did not answer in time")
            raise SdkUnavailable("DeepLink SDK pipe read was aborted")
        # 0 or ERROR_MORE_DATA: what came is ours, even if it came as we cancelled.
        return ov.getbuffer() or b""

    def _settle(self, ov: Overlapped, err: int, timeout_s: float) -> tuple[int, int, bool]:
        """Wait for ``ov`` up to ``timeout_s``, else cancel it; always await its end.

        Returns (bytes transferred, status, timed out). GetOverlappedResult runs in a
        ``finally``: even when the wait itself fails (Ctrl-C), the operation is cancelled
        and finished before the handle can be closed.
        """
        signalled = err != ERROR_IO_PENDING
        try:
            if not signalled:
                waited = self._api.WaitForMultipleObjects([ov.event], False, _ms(timeout_s))
                signalled = waited == WAIT_OBJECT_0
        finally:
            if not signalled:
                ov.cancel()
            transferred, status = ov.GetOverlappedResult(True)
        return transferred, status, not signalled

    def _open_handle(self) -> int:
        if self._handle is None:
            raise SdkUnavailable("DeepLink SDK pipe is closed")
        return self._handle

    def close(self) -> None:
        """Close the handle (no operation is ever left pending on it)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            with suppress(OSError):
                self._api.CloseHandle(handle)


def _wait_named_pipe(api: WinApi, path: str, deadline: Deadline) -> None:
    """WaitNamedPipe until an instance is free or the deadline; the caller opens again."""
    try:
        api.WaitNamedPipe(path, _ms(deadline.remaining()))
    except OSError as exc:
        if _winerror(exc) != ERROR_SEM_TIMEOUT:  # timed out: the open loop's deadline says so
            raise SdkUnavailable(_open_failure(path, exc)) from None


def _open_failure(path: str, exc: OSError) -> str:
    code = _winerror(exc)
    if code in _NOT_THERE:
        return f"DeepLink SDK pipe {path} is not there yet (DeepLink not running)"
    if code == ERROR_ACCESS_DENIED:
        return (f"DeepLink SDK pipe {path} refused access: run bm-hook as LocalSystem "
                "(the pipe admits only its owner and SYSTEM)")
    return f"cannot open DeepLink SDK pipe {path}: {exc}"
