"""The Windows pipe channel's control flow, against a scripted ``_winapi`` (no Windows)."""

import sys
import threading
import time

import pytest

from boot_hooks import sdk_pipe_win as win
from boot_hooks.errors import ConfigError
from boot_hooks.sdk import open_channel
from boot_hooks.sdk_pipe_win import PipeChannel
from boot_hooks.sdk_transport import (
    FramedTransport,
    SdkBusy,
    SdkTimeout,
    SdkUnavailable,
    encode_frame,
)

PATH = r"\\.\pipe\deeplink_sdk"
HANDLE = 7
WAIT_TIMEOUT = 258


def win_error(code):
    exc = OSError(f"[WinError {code}]")
    exc.winerror = code
    return exc


class ScriptedOverlapped:
    """One scripted overlapped operation: what GetOverlappedResult answers, what it read."""

    def __init__(self, api, result=(0, 0), data=None):
        self.api, self.result, self.data = api, result, data
        self.event = 500 + len(api.log)

    def cancel(self):
        self.api.log.append(("cancel", self.event))

    def GetOverlappedResult(self, wait):
        self.api.log.append(("GetOverlappedResult", self.event, wait))
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result

    def getbuffer(self):
        return self.data


class ScriptedWinApi:
    """SEAM: a stand-in for the stdlib's ``_winapi``, scripted per function.

    ``script[name]`` is a list of outcomes taken in order (or one callable for every
    call): an exception is raised, a callable is called with the arguments (and its
    result returned), anything else is returned. Every call is logged with its
    arguments, so a test asserts the sequence.
    """

    def __init__(self, **script):
        self.script = script
        self.log = []

    def _next(self, name, *args):
        self.log.append((name, *args))
        outcomes = self.script[name]
        outcome = outcomes if callable(outcomes) else outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome(*args) if callable(outcome) else outcome

    def names(self):
        return [entry[0] for entry in self.log]

    def CreateFile(self, *args):
        return self._next("CreateFile", *args)

    def WaitNamedPipe(self, name, timeout_ms):
        return self._next("WaitNamedPipe", name, timeout_ms)

    def ReadFile(self, handle, size, overlapped):
        return self._next("ReadFile", handle, size, overlapped)

    def WriteFile(self, handle, data, overlapped):
        return self._next("WriteFile", handle, data, overlapped)

    def WaitForMultipleObjects(self, handles, wait_all, timeout_ms):
        return self._next("WaitForMultipleObjects", list(handles), wait_all, timeout_ms)

    def CloseHandle(self, handle):
        self.log.append(("CloseHandle", handle))
        for outcome in self.script.get("CloseHandle", []):
            raise outcome


def opened(api):
    api.script.setdefault("CreateFile", []).insert(0, HANDLE)
    channel = PipeChannel.open(PATH, 1.0, api=api)
    api.log.clear()
    return channel


# -- open ----------------------------------------------------------------------------------


def test_open_asks_for_an_overlapped_read_write_handle():
    api = ScriptedWinApi(CreateFile=[HANDLE])
    PipeChannel.open(PATH, 1.0, api=api).close()
    assert api.log == [
        ("CreateFile", PATH, win.GENERIC_READ | win.GENERIC_WRITE, 0, win.NULL,
         win.OPEN_EXISTING, win.FILE_FLAG_OVERLAPPED, win.NULL),
        ("CloseHandle", HANDLE),
    ]


def test_busy_pipe_is_waited_for_then_opened():
    busy = win_error(win.ERROR_PIPE_BUSY)
    api = ScriptedWinApi(CreateFile=[busy, busy, HANDLE], WaitNamedPipe=[None, None])
    channel = PipeChannel.open(PATH, 2.0, api=api)
    assert api.names() == ["CreateFile", "WaitNamedPipe", "CreateFile", "WaitNamedPipe",
                           "CreateFile"]
    waits = [entry[2] for entry in api.log if entry[0] == "WaitNamedPipe"]
    assert all(1 <= ms <= 2000 for ms in waits)  # never 0: that is the server's default wait
    channel.close()
    assert api.log[-1] == ("CloseHandle", HANDLE)


def test_pipe_busy_until_the_deadline_is_sdk_busy():
    def wait(name, timeout_ms):  # as Windows: waits the whole timeout, then ERROR_SEM_TIMEOUT
        time.sleep(timeout_ms / 1000)
        raise win_error(win.ERROR_SEM_TIMEOUT)

    api = ScriptedWinApi(CreateFile=[win_error(win.ERROR_PIPE_BUSY)] * 10,
                         WaitNamedPipe=[wait] * 10)
    started = time.monotonic()
    with pytest.raises(SdkBusy, match="stayed busy"):
        PipeChannel.open(PATH, 0.3, api=api)
    assert 0.25 < time.monotonic() - started < 0.8
    assert api.names() == ["CreateFile", "WaitNamedPipe", "CreateFile"]
    assert "CloseHandle" not in api.names()  # no handle was ever opened


@pytest.mark.parametrize("code", [win.ERROR_FILE_NOT_FOUND, win.ERROR_PATH_NOT_FOUND])
def test_missing_pipe_is_not_there_yet_at_once(code):
    api = ScriptedWinApi(CreateFile=[win_error(code)])
    with pytest.raises(SdkUnavailable, match="not there yet") as info:
        PipeChannel.open(PATH, 5.0, api=api)
    assert not isinstance(info.value, SdkBusy)
    assert api.names() == ["CreateFile"]  # the caller retries with backoff, not WaitNamedPipe


def test_pipe_gone_while_waiting_for_it_is_not_there_yet():
    api = ScriptedWinApi(CreateFile=[win_error(win.ERROR_PIPE_BUSY)],
                         WaitNamedPipe=[win_error(win.ERROR_FILE_NOT_FOUND)])
    with pytest.raises(SdkUnavailable, match="not there yet"):
        PipeChannel.open(PATH, 5.0, api=api)


def test_access_denied_says_to_run_as_system():
    api = ScriptedWinApi(CreateFile=[win_error(win.ERROR_ACCESS_DENIED)])
    with pytest.raises(SdkUnavailable, match="LocalSystem"):
        PipeChannel.open(PATH, 5.0, api=api)


@pytest.mark.skipif(sys.platform == "win32", reason="the real _winapi exists on Windows")
def test_pipe_kind_off_windows_is_a_config_error():
    with pytest.raises(ConfigError, match="needs Windows"):
        open_channel("pipe", PATH, 0.1)


@pytest.mark.skipif(sys.platform != "win32", reason="_winapi exists only on Windows")
def test_constants_match_winapi():
    import _winapi

    for name in ("ERROR_BROKEN_PIPE", "ERROR_SEM_TIMEOUT", "ERROR_PIPE_BUSY", "ERROR_MORE_DATA",
                 "ERROR_OPERATION_ABORTED", "ERROR_IO_PENDING", "GENERIC_READ", "GENERIC_WRITE",
                 "OPEN_EXISTING", "FILE_FLAG_OVERLAPPED", "WAIT_OBJECT_0", "NULL"):
        assert getattr(win, name) == getattr(_winapi, name), name


# -- read ----------------------------------------------------------------------------------


def test_pending_read_timing_out_is_cancelled_then_awaited():
    api = ScriptedWinApi()
    channel = opened(api)
    ov = ScriptedOverlapped(api, result=(0, win.ERROR_OPERATION_ABORTED))
    api.script.update(ReadFile=[(ov, win.ERROR_IO_PENDING)], WaitForMultipleObjects=[WAIT_TIMEOUT])
    threads = threading.active_count()
    with pytest.raises(SdkTimeout):
        channel.read(0.3)
    assert api.log[0][:2] == ("ReadFile", HANDLE)
    (_, events, wait_all, timeout_ms) = api.log[1]
    assert events == [ov.event] and wait_all is False and 250 <= timeout_ms <= 300
    assert api.log[2:] == [("cancel", ov.event), ("GetOverlappedResult", ov.event, True)]
    assert threading.active_count() == threads  # no thread was started
    channel.close()
    assert api.log[-1] == ("CloseHandle", HANDLE)  # nothing pending: safe to close


def test_read_completing_in_the_cancel_race_keeps_its_bytes():
    api = ScriptedWinApi()
    channel = opened(api)
    ov = ScriptedOverlapped(api, result=(5, 0), data=b"hello")
    api.script.update(ReadFile=[(ov, win.ERROR_IO_PENDING)], WaitForMultipleObjects=[WAIT_TIMEOUT])
    assert channel.read(0.2) == b"hello"
    assert api.names() == ["ReadFile", "WaitForMultipleObjects", "cancel", "GetOverlappedResult"]


def test_signalled_read_is_not_cancelled():
    api = ScriptedWinApi()
    channel = opened(api)
    ov = ScriptedOverlapped(api, result=(3, 0), data=b"abc")
    api.script.update(ReadFile=[(ov, win.ERROR_IO_PENDING)],
                      WaitForMultipleObjects=[win.WAIT_OBJECT_0])
    assert channel.read(1.0) == b"abc"
    assert "cancel" not in api.names()


def test_more_data_is_a_chunk_and_the_frame_is_read_whole():
    frame = encode_frame({"method": "getDeviceInfo", "code": 0, "data": {"device_id": "42"}})
    api = ScriptedWinApi()
    transport = FramedTransport(opened(api))
    first = ScriptedOverlapped(api, result=(10, win.ERROR_MORE_DATA), data=frame[:10])
    second = ScriptedOverlapped(api, result=(len(frame) - 10, win.ERROR_MORE_DATA),
                                data=frame[10:])
    api.script.update(ReadFile=[(first, win.ERROR_MORE_DATA), (second, win.ERROR_IO_PENDING)],
                      WaitForMultipleObjects=[win.WAIT_OBJECT_0])
    assert transport.receive(1.0)["data"] == {"device_id": "42"}
    assert api.names() == ["ReadFile", "GetOverlappedResult",  # done at once: no wait
                           "ReadFile", "WaitForMultipleObjects", "GetOverlappedResult"]


@pytest.mark.parametrize("where", ["ReadFile", "GetOverlappedResult"])
def test_broken_pipe_is_unavailable(where):
    api = ScriptedWinApi()
    channel = opened(api)
    broken = win_error(win.ERROR_BROKEN_PIPE)
    if where == "ReadFile":
        api.script.update(ReadFile=[broken])
    else:
        ov = ScriptedOverlapped(api, result=broken)
        api.script.update(ReadFile=[(ov, win.ERROR_IO_PENDING)],
                          WaitForMultipleObjects=[win.WAIT_OBJECT_0])
    with pytest.raises(SdkUnavailable, match="closed the pipe") as info:
        channel.read(1.0)
    assert not isinstance(info.value, SdkTimeout)
    channel.close()
    assert api.log[-1] == ("CloseHandle", HANDLE)


def test_interrupted_wait_still_cancels_and_awaits_the_read():
    api = ScriptedWinApi()
    channel = opened(api)
    ov = ScriptedOverlapped(api, result=(0, win.ERROR_OPERATION_ABORTED))
    api.script.update(ReadFile=[(ov, win.ERROR_IO_PENDING)],
                      WaitForMultipleObjects=[KeyboardInterrupt()])
    with pytest.raises(KeyboardInterrupt):
        channel.read(1.0)
    assert api.names()[-2:] == ["cancel", "GetOverlappedResult"]
    channel.close()
    assert api.log[-1] == ("CloseHandle", HANDLE)


def test_zero_byte_reads_are_waited_through_until_the_timeout():
    api = ScriptedWinApi()
    channel = opened(api)
    api.script.update(ReadFile=lambda *a: (ScriptedOverlapped(api, (0, 0), b""), 0))
    started = time.monotonic()
    with pytest.raises(SdkTimeout):
        channel.read(0.1)
    assert time.monotonic() - started < 0.5


# -- write ---------------------------------------------------------------------------------


def test_write_that_completes_at_once():
    api = ScriptedWinApi()
    channel = opened(api)
    ov = ScriptedOverlapped(api, result=(5, 0))
    api.script.update(WriteFile=[(ov, 0)])
    channel.write(b"hello", 1.0)
    assert api.log[0] == ("WriteFile", HANDLE, b"hello", True)
    assert api.names() == ["WriteFile", "GetOverlappedResult"]


def test_pending_write_timing_out_is_cancelled_then_awaited():
    api = ScriptedWinApi()
    channel = opened(api)
    ov = ScriptedOverlapped(api, result=(0, win.ERROR_OPERATION_ABORTED))
    api.script.update(WriteFile=[(ov, win.ERROR_IO_PENDING)],
                      WaitForMultipleObjects=[WAIT_TIMEOUT])
    with pytest.raises(SdkTimeout, match="did not take our request"):
        channel.write(b"hello", 0.2)
    assert api.names() == ["WriteFile", "WaitForMultipleObjects", "cancel",
                           "GetOverlappedResult"]


def test_short_write_is_unavailable():
    api = ScriptedWinApi()
    channel = opened(api)
    api.script.update(WriteFile=[(ScriptedOverlapped(api, result=(2, 0)), 0)])
    with pytest.raises(SdkUnavailable, match="wrote 2 of 5 bytes"):
        channel.write(b"hello", 1.0)


def test_failed_write_is_unavailable():
    api = ScriptedWinApi()
    channel = opened(api)
    api.script.update(WriteFile=[win_error(232)])  # ERROR_NO_DATA: the pipe is being closed
    with pytest.raises(SdkUnavailable, match="pipe write failed"):
        channel.write(b"hello", 1.0)


# -- close ---------------------------------------------------------------------------------


def test_close_always_closes_once_and_never_raises():
    api = ScriptedWinApi(CloseHandle=[win_error(6)])  # ERROR_INVALID_HANDLE
    channel = opened(api)
    channel.close()
    channel.close()
    assert api.log == [("CloseHandle", HANDLE)]
    with pytest.raises(SdkUnavailable, match="closed"):
        channel.read(1.0)
    with pytest.raises(SdkUnavailable, match="closed"):
        channel.write(b"x", 1.0)
    assert api.log == [("CloseHandle", HANDLE)]  # no call on a closed handle
