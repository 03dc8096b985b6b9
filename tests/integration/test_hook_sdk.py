"""bm-hook's DeepLink SDK client over a real Unix socket, against the fake SDK server.

Both channels under the shared framing are exercised: ``UnixSocketChannel``, and
``PipeChannel`` (the Windows overlapped-I/O code path) through
``tests.support.winapi_socket.SocketWinApi``, a ``_winapi`` stand-in whose pipe handles
are Unix socket connections, since a Windows named pipe cannot exist on Linux. Only the
real ``_winapi`` calls themselves are left untested here.

The recovery cases run the deeplink step (``read_local_deeplink``) against the fake's
busy, unanswered and appear-late modes.
"""

import logging
import os
import shutil
import socket
import tempfile
import threading
import time

import pytest

from boot_hooks.retry import Deadline
from boot_hooks.sdk import DeepLinkSdk, SdkReplyError, open_channel, open_sdk, read_local_deeplink
from boot_hooks.sdk_pipe_win import PipeChannel
from boot_hooks.sdk_transport import (
    FramedTransport,
    SdkBusy,
    SdkTimeout,
    SdkUnavailable,
    UnixSocketChannel,
)
from tests.support.hook_sdk_fake import FakeDeepLinkSdk
from tests.support.winapi_socket import SocketWinApi


@pytest.fixture
def sock_dir():
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer.
    path = tempfile.mkdtemp(prefix="bmh-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def unix_sdk(path, timeout=2.0):
    return DeepLinkSdk(FramedTransport(UnixSocketChannel.open(path, timeout)), timeout)


def pipe_sdk(path, api, timeout=2.0):
    return DeepLinkSdk(FramedTransport(PipeChannel.open(path, timeout, api=api)), timeout)


@pytest.fixture(params=["unix", "pipe"])
def connect(request):
    opened = []
    api = SocketWinApi()

    def _connect(path, timeout=2.0):
        sdk = unix_sdk(path, timeout) if request.param == "unix" else pipe_sdk(path, api, timeout)
        opened.append(sdk)
        return sdk

    yield _connect
    for thing in opened:
        thing.close()
    assert not api.handles and not api.pending  # every pipe handle closed, nothing in flight


def test_read_and_rotate(sock_dir, connect):
    with FakeDeepLinkSdk(f"{sock_dir}/sdk", device_id="987654321", password="OldCode11") as fake:
        sdk = connect(fake.path)
        sdk.authenticate("SiChuanWangYu001")
        assert sdk.server_state() == 3
        info = sdk.device_info()
        assert (info.device_id, info.password) == ("987654321", "OldCode11")
        sdk.set_password("NewCode22x")
        assert fake.passwords_set == ["NewCode22x"]
        assert sdk.wait_password("NewCode22x", Deadline(2)).password == "NewCode22x"
        assert fake.channel_ids == ["SiChuanWangYu001"]
        assert fake.calls[:4] == ["auth", "getServerConnState", "getDeviceInfo",
                                  "setDevicePassword"]
        # The deviceInfoChanged notification that followed the reply was noted, not lost.
        assert sdk.last_notified is not None and sdk.last_notified.password == "NewCode22x"
        assert "NewCode22x" not in repr(sdk.last_notified)


def test_notifications_between_request_and_reply_are_skipped(sock_dir, connect):
    with FakeDeepLinkSdk(f"{sock_dir}/sdk", notify_before_reply=True) as fake:
        sdk = connect(fake.path)
        sdk.authenticate("x")
        assert sdk.device_info().device_id == fake.device_id


def test_wait_online_polls_until_onlined(sock_dir, connect):
    with FakeDeepLinkSdk(f"{sock_dir}/sdk", states=[0, 1, 2, 3]) as fake:
        sdk = connect(fake.path)
        assert sdk.wait_online(Deadline(5)) == 3
        assert fake.calls.count("getServerConnState") == 4


def test_wait_online_returns_the_last_state_at_the_deadline(sock_dir, connect):
    with FakeDeepLinkSdk(f"{sock_dir}/sdk", states=[1]) as fake:
        sdk = connect(fake.path)
        started = time.monotonic()
        assert sdk.wait_online(Deadline(0.5)) == 1
        assert time.monotonic() - started < 1.5


def test_refused_password_is_a_reply_error(sock_dir, connect):
    with FakeDeepLinkSdk(f"{sock_dir}/sdk", refuse_set=True) as fake:
        sdk = connect(fake.path)
        with pytest.raises(SdkReplyError) as info:
            sdk.set_password("Abc123xyz")
        assert "code 4" in str(info.value)
        assert "Abc123xyz" not in str(info.value)


@pytest.fixture
def silent_server(sock_dir):
    """Accepts connections and reads, but never answers."""
    path = f"{sock_dir}/silent"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    conns = []

    def accept():
        try:
            while True:
                conn, _ = server.accept()
                conns.append(conn)
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    yield path
    server.close()
    for conn in conns:
        conn.close()


def test_silent_sdk_times_out_within_the_call_timeout(silent_server, connect):
    sdk = connect(silent_server, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(SdkTimeout):
        sdk.authenticate("x")
    assert time.monotonic() - started < 1.0


def test_pipe_timeout_cancels_the_read_and_leaves_nothing_pending(silent_server):
    # Replaces "refuses to write while a read is pending": the old synchronous pipe kept a
    # reader thread blocked on the handle after a timeout. Now the read is cancelled and
    # finished, so the handle is idle, the next request goes out, and close() closes it.
    api = SocketWinApi()
    sdk = pipe_sdk(silent_server, api, timeout=0.2)
    threads = threading.active_count()
    with pytest.raises(SdkTimeout):
        sdk.authenticate("x")
    assert api.cancels == 1 and not api.pending
    with pytest.raises(SdkTimeout):  # written and waited for again: not "busy"
        sdk.authenticate("x")
    assert api.calls.count("WriteFile") == 2 and api.cancels == 2 and not api.pending
    assert threading.active_count() == threads  # no reader thread, ever
    sdk.close()
    assert not api.handles


def test_closed_connection_is_unavailable(sock_dir, connect):
    fake = FakeDeepLinkSdk(f"{sock_dir}/sdk").start()
    sdk = connect(fake.path)
    sdk.authenticate("x")
    fake.stop()
    with pytest.raises(SdkUnavailable):
        sdk.device_info()


def test_garbage_frame_is_unavailable(sock_dir):
    path = f"{sock_dir}/garbage"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def answer():
        conn, _ = server.accept()
        conn.recv(4096)
        conn.sendall(b"\xff\xff\xff\x7f")  # a 2 GiB header
        time.sleep(0.5)
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    sdk = unix_sdk(path)
    with pytest.raises(SdkUnavailable, match="byte frame"):
        sdk.authenticate("x")
    sdk.close()
    server.close()


def test_open_sdk_waits_for_deeplink_to_start(sock_dir):
    path = f"{sock_dir}/late"
    fake = FakeDeepLinkSdk(path)
    timer = threading.Timer(0.5, fake.start)
    timer.start()
    try:
        started = time.monotonic()
        sdk = open_sdk("unix", path, Deadline(5), 2.0)
        assert 0.4 < time.monotonic() - started < 3
        assert sdk.device_info().device_id == fake.device_id
        sdk.close()
    finally:
        timer.join()
        fake.stop()


def test_open_sdk_gives_up_at_the_deadline(sock_dir):
    started = time.monotonic()
    with pytest.raises(SdkUnavailable):
        open_sdk("unix", f"{sock_dir}/never", Deadline(0.6), 1.0)
    assert time.monotonic() - started < 1.5


def test_pipe_open_of_a_missing_path_is_unavailable(sock_dir):
    # Was NamedPipeTransport.open() (plain open()); the channel now says "not there yet"
    # at once (the caller retries), and neither waits nor calls it busy.
    api = SocketWinApi()
    started = time.monotonic()
    with pytest.raises(SdkUnavailable, match="not there yet") as info:
        PipeChannel.open(f"{sock_dir}/no-such-pipe", 2.0, api=api)
    assert not isinstance(info.value, SdkBusy)
    assert time.monotonic() - started < 0.5
    assert api.calls == ["CreateFile"] and not api.handles


# -- recovery: busy, unanswered, appearing late ------------------------------------------


@pytest.fixture(params=["unix", "pipe"])
def channel(request):
    """(kind, opener, api): the deeplink step over either channel; api is the pipe's stand-in."""
    if request.param == "unix":
        yield "unix", open_channel, None
        return
    api = SocketWinApi()
    yield "pipe", lambda kind, path, timeout_s: PipeChannel.open(path, timeout_s, api=api), api
    assert not api.handles and not api.pending


def hold_busy(fake, seconds):
    """Another client takes the fake's only slot, and leaves after ``seconds`` (a Timer)."""
    holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    holder.connect(fake.path)
    wait_for(lambda: fake.connections == 1)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    with pytest.raises(BlockingIOError):  # the fake is busy: its backlog is full
        probe.connect(fake.path)
    probe.close()
    timer = threading.Timer(seconds, holder.close)
    timer.start()
    return timer


def wait_for(condition, timeout=2.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_busy_sdk_is_waited_for_until_free(sock_dir, channel, caplog):
    kind, opener, api = channel
    caplog.set_level(logging.INFO, logger="boot_hooks")
    with FakeDeepLinkSdk(f"{sock_dir}/sdk", busy=True) as fake:
        holder = hold_busy(fake, 0.5)
        started = time.monotonic()
        local = read_local_deeplink(kind, fake.path, "chan", Deadline(5), 1.0, opener)
        elapsed = time.monotonic() - started
        local.sdk.close()
        holder.join()
    assert 0.4 < elapsed < 2.5
    assert local.info.device_id == fake.device_id and fake.connections == 2
    assert fake.calls[:1] == ["auth"] and fake.channel_ids == ["chan"]
    assert any("busy; waiting" in r.getMessage() for r in caplog.records)
    assert not any("reopening" in r.getMessage() for r in caplog.records)
    if api is not None:
        assert "WaitNamedPipe" in api.calls


def test_busy_until_the_deadline_is_sdk_busy(sock_dir, channel):
    kind, opener, _ = channel
    with FakeDeepLinkSdk(f"{sock_dir}/sdk", busy=True) as fake:
        holder = hold_busy(fake, 3.0)
        started = time.monotonic()
        try:
            with pytest.raises(SdkBusy, match="stayed busy"):
                read_local_deeplink(kind, fake.path, "chan", Deadline(0.6), 1.0, opener)
            assert 0.55 < time.monotonic() - started < 1.5
        finally:
            holder.cancel()
            holder.function()  # the other client leaves
    assert fake.calls == []


@pytest.mark.parametrize("unanswered", [1, 2])
def test_unanswered_call_succeeds_after_a_reopen(sock_dir, channel, caplog, unanswered):
    kind, opener, api = channel
    caplog.set_level(logging.INFO, logger="boot_hooks")
    with FakeDeepLinkSdk(f"{sock_dir}/sdk", unanswered=unanswered, password="Pw0Secret9") as fake:
        started = time.monotonic()
        local = read_local_deeplink(kind, fake.path, "chan", Deadline(10), 0.3, opener)
        elapsed = time.monotonic() - started
        local.sdk.close()
    assert local.state == 3 and local.info.device_id == fake.device_id
    assert fake.unanswered_calls == ["auth"] * unanswered
    assert fake.connections == unanswered + 1
    assert fake.calls[:3] == ["auth", "getServerConnState", "getDeviceInfo"]
    reopens = [r for r in caplog.records if "reopening the SDK" in r.getMessage()]
    assert len(reopens) == unanswered  # one line per reopen
    assert all(r.levelno == logging.WARNING for r in reopens)
    assert not any("Pw0Secret9" in r.getMessage() for r in caplog.records)
    assert elapsed < 0.3 * unanswered + 2.0
    if api is not None:
        assert api.cancels == unanswered


def test_unanswered_until_the_deadline_is_sdk_timeout_and_leaks_nothing(sock_dir, channel):
    kind, opener, api = channel
    fds, threads = len(os.listdir("/proc/self/fd")), threading.active_count()
    fake = FakeDeepLinkSdk(f"{sock_dir}/sdk", unanswered=1000).start()
    started = time.monotonic()
    with pytest.raises(SdkTimeout):
        read_local_deeplink(kind, fake.path, "chan", Deadline(1.0), 0.25, opener)
    elapsed = time.monotonic() - started
    connections = fake.connections
    fake.stop()
    assert 0.9 < elapsed < 1.6
    assert connections >= 2  # it did reopen
    assert fake.calls == [] and set(fake.unanswered_calls) == {"auth"}
    assert len(os.listdir("/proc/self/fd")) == fds
    assert threading.active_count() == threads
    if api is not None:
        assert not api.handles and not api.pending
        assert api.calls.count("CreateFile") == api.calls.count("CloseHandle") == connections


def test_sdk_appearing_late_is_waited_for(sock_dir, channel, caplog):
    kind, opener, _ = channel
    caplog.set_level(logging.INFO, logger="boot_hooks")
    with FakeDeepLinkSdk(f"{sock_dir}/sdk", appear_after_s=0.6) as fake:
        started = time.monotonic()
        local = read_local_deeplink(kind, fake.path, "chan", Deadline(5), 1.0, opener)
        elapsed = time.monotonic() - started
        local.sdk.close()
    assert 0.5 < elapsed < 3.5
    assert local.info.device_id == fake.device_id and fake.connections == 1
    assert sum("not there yet" in r.getMessage() for r in caplog.records) == 1
