"""bm-hook's DeepLink SDK client over a real Unix socket, against the fake SDK server.

Both transports are exercised: ``UnixSocketTransport`` and ``NamedPipeTransport`` (the
Windows pipe code path; here its file object is the socket's raw file, since a Windows
named pipe cannot exist on Linux; only ``open()`` of the pipe path is left untested).
"""

import shutil
import socket
import tempfile
import threading
import time

import pytest

from boot_hooks.retry import Deadline
from boot_hooks.sdk import DeepLinkSdk, SdkReplyError, open_sdk
from boot_hooks.sdk_transport import (
    NamedPipeTransport,
    SdkTimeout,
    SdkUnavailable,
    UnixSocketTransport,
)
from tests.support.hook_sdk_fake import FakeDeepLinkSdk


@pytest.fixture
def sock_dir():
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer.
    path = tempfile.mkdtemp(prefix="bmh-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def unix_sdk(path, timeout=2.0):
    return DeepLinkSdk(UnixSocketTransport.connect(path, timeout), timeout)


def pipe_like_sdk(path, timeout=2.0):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    return DeepLinkSdk(NamedPipeTransport(sock.makefile("rwb", buffering=0)), timeout), sock


@pytest.fixture(params=["unix", "pipe"])
def connect(request):
    opened = []

    def _connect(path, timeout=2.0):
        if request.param == "unix":
            sdk = unix_sdk(path, timeout)
        else:
            sdk, sock = pipe_like_sdk(path, timeout)
            opened.append(sock)
        opened.append(sdk)
        return sdk

    yield _connect
    for thing in opened:
        thing.close()


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


def test_pipe_transport_refuses_to_write_while_a_read_is_pending(silent_server):
    sdk, sock = pipe_like_sdk(silent_server, timeout=0.2)
    with pytest.raises(SdkTimeout):
        sdk.authenticate("x")
    with pytest.raises(SdkUnavailable, match="busy"):
        sdk.authenticate("x")
    sock.close()


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
    with pytest.raises(SdkUnavailable, match="cannot open DeepLink SDK pipe"):
        NamedPipeTransport.open(f"{sock_dir}/no-such-pipe")
