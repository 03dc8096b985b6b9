"""A stand-in for the stdlib's ``_winapi`` whose pipe handles are Unix socket connections.

SEAM, not Windows: a named pipe cannot exist on Linux, so the integration tests run
``boot_hooks.sdk_pipe_win.PipeChannel``'s own code (open loop, overlapped read/write,
wait, cancel, GetOverlappedResult, close) against the fake SDK server through this
object. Only what the channel uses is here, with the semantics the Win32 docs give:

- ``CreateFile`` connects non-blocking: a full backlog is ERROR_PIPE_BUSY, a missing or
  dead socket ERROR_FILE_NOT_FOUND; ``WaitNamedPipe`` waits a little (at most its
  timeout, then ERROR_SEM_TIMEOUT) and returns, after which the pipe may be busy again;
- ``ReadFile`` completes at once when bytes are there, else is pending;
  ``WaitForMultipleObjects`` waits (select) for the read's socket; ``cancel`` cancels a
  pending read unless bytes arrived (then it completed in the race and keeps them);
  ``GetOverlappedResult(True)`` blocks until the read ends; a closed peer is
  ERROR_BROKEN_PIPE;
- ``WriteFile`` completes at once (SDK frames are small).

It also counts what a leak check needs: handles open, operations still pending.
"""

from __future__ import annotations

import itertools
import select
import socket
import time

from boot_hooks import sdk_pipe_win as win

__all__ = ["SocketWinApi", "win_error"]

_WAIT_STEP_S = 0.05
WAIT_TIMEOUT = 258  # winbase.h
ERROR_NO_DATA = 232  # winerror.h: "the pipe is being closed"


def win_error(code: int) -> OSError:
    """An OSError as ``_winapi`` raises it on Windows (``winerror`` set)."""
    exc = OSError(f"[WinError {code}]")
    exc.winerror = code  # type: ignore[attr-defined]
    return exc


class _Op:
    """One overlapped operation (``_winapi.Overlapped``'s surface)."""

    def __init__(self, api: SocketWinApi, sock: socket.socket, size: int) -> None:
        self._api, self._sock, self._size = api, sock, size
        self.event = next(api._ids)
        self.data: bytes | None = None
        self.cancelled = False
        self.pending = True
        self.error: OSError | None = None

    def try_complete(self) -> bool:
        try:
            chunk = self._sock.recv(self._size)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if chunk:
            self.data = chunk
        else:
            self.error = win_error(win.ERROR_BROKEN_PIPE)
        self.pending = False
        return True

    def cancel(self) -> None:
        self._api.cancels += 1
        if self.pending and not self.try_complete():
            self.cancelled, self.pending = True, False

    def GetOverlappedResult(self, wait: bool) -> tuple[int, int]:
        while self.pending and wait:
            select.select([self._sock], [], [], _WAIT_STEP_S)
            self.try_complete()
        self._api.pending.discard(self)
        if self.error is not None:
            raise self.error
        if self.cancelled:
            return 0, win.ERROR_OPERATION_ABORTED
        return len(self.data or b""), 0

    def getbuffer(self) -> bytes | None:
        return self.data


class _DoneOp:
    """A write that completed at once."""

    def __init__(self, api: SocketWinApi, written: int) -> None:
        self.event = next(api._ids)
        self._written = written

    def cancel(self) -> None:
        pass

    def GetOverlappedResult(self, wait: bool) -> tuple[int, int]:
        return self._written, 0

    def getbuffer(self) -> bytes | None:
        return None


class SocketWinApi:
    """``_winapi`` for :class:`~boot_hooks.sdk_pipe_win.PipeChannel`, on Unix sockets."""

    def __init__(self) -> None:
        self._ids = itertools.count(100)
        self.handles: dict[int, socket.socket] = {}
        self.pending: set[_Op] = set()
        self._by_event: dict[int, _Op] = {}
        self.calls: list[str] = []
        self.cancels = 0

    def CreateFile(self, name: str, access: int, share: int, security: int,
                   disposition: int, flags: int, template: int) -> int:
        self.calls.append("CreateFile")
        assert flags & win.FILE_FLAG_OVERLAPPED and disposition == win.OPEN_EXISTING
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(name)
        except BlockingIOError:
            sock.close()
            raise win_error(win.ERROR_PIPE_BUSY) from None
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise win_error(win.ERROR_FILE_NOT_FOUND) from None
        handle = next(self._ids)
        self.handles[handle] = sock
        return handle

    def WaitNamedPipe(self, name: str, timeout_ms: int) -> None:
        self.calls.append("WaitNamedPipe")
        assert timeout_ms > 0, "0 would mean the server's default wait"
        time.sleep(min(timeout_ms / 1000, _WAIT_STEP_S))
        if timeout_ms / 1000 <= _WAIT_STEP_S:
            raise win_error(win.ERROR_SEM_TIMEOUT)

    def ReadFile(self, handle: int, size: int, overlapped: bool) -> tuple[_Op, int]:
        self.calls.append("ReadFile")
        assert overlapped
        op = _Op(self, self.handles[handle], size)
        if op.try_complete():
            if op.error is not None:
                raise op.error
            return op, 0
        self.pending.add(op)
        self._by_event[op.event] = op
        return op, win.ERROR_IO_PENDING

    def WriteFile(self, handle: int, data: bytes, overlapped: bool) -> tuple[_DoneOp, int]:
        self.calls.append("WriteFile")
        assert overlapped
        sock = self.handles[handle]
        sock.setblocking(True)
        try:
            sock.sendall(data)
        except OSError:
            raise win_error(ERROR_NO_DATA) from None
        finally:
            sock.setblocking(False)
        return _DoneOp(self, len(data)), 0

    def WaitForMultipleObjects(self, handles: list[int], wait_all: bool, timeout_ms: int) -> int:
        self.calls.append("WaitForMultipleObjects")
        (event,) = handles
        op = self._by_event[event]
        readable, _, _ = select.select([op._sock], [], [], timeout_ms / 1000)
        return win.WAIT_OBJECT_0 if readable else WAIT_TIMEOUT

    def CloseHandle(self, handle: int) -> None:
        self.calls.append("CloseHandle")
        self.handles.pop(handle).close()
