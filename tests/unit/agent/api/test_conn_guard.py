"""The connection guard of ``bm-agent serve`` without sockets: caps, header deadline, logs."""

import asyncio
import errno
import logging
import resource

import pytest
import uvicorn
from uvicorn.server import ServerState

from agent.api.conn_guard import (
    ConnectionLimits,
    LogThrottle,
    check_uvicorn,
    guarded_protocol,
    install_accept_error_throttle,
    raise_open_files_limit,
)
from tests.support.clock import Clock


class FakeTransport(asyncio.Transport):
    def __init__(self, ip: str) -> None:
        super().__init__()
        self.peer = (ip, 40000)
        self.closed = self.aborted = False
        self.written = b""

    def get_extra_info(self, name, default=None):
        return {"peername": self.peer, "sockname": ("127.0.0.1", 8700)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def write(self, data) -> None:
        self.written += bytes(data)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def app(scope, receive, send):
    await receive()  # waits for a body that never comes


@pytest.fixture
def loop():
    created = asyncio.new_event_loop()
    yield created
    for task in asyncio.all_tasks(created):
        task.cancel()
    created.run_until_complete(asyncio.sleep(0))
    created.close()


def protocol_class(per_ip=2, header_timeout_s=0.05):
    limits = ConnectionLimits(per_ip=per_ip, header_timeout_s=header_timeout_s)
    return guarded_protocol(limits), limits


def connect(cls, loop, ip):
    config = uvicorn.Config(app, log_config=None)
    proto = cls(config=config, server_state=ServerState(), app_state={}, _loop=loop)
    transport = FakeTransport(ip)
    proto.connection_made(transport)
    return proto, transport


def test_connections_past_the_per_address_cap_are_closed_at_once(loop, caplog):
    cls, limits = protocol_class(per_ip=2)
    caplog.set_level(logging.WARNING, "agent.api.conn_guard")
    kept = [connect(cls, loop, "10.0.0.9") for _ in range(2)]
    refused = [connect(cls, loop, "10.0.0.9") for _ in range(50)]
    other = connect(cls, loop, "10.0.0.10")
    assert [t.aborted for _p, t in kept] == [False, False] and not other[1].aborted
    assert all(t.aborted for _p, t in refused)
    assert limits.refused == 50 and limits.open_by_ip == {"10.0.0.9": 2, "10.0.0.10": 1}
    assert len(caplog.records) == 1  # the first refusal is logged, the next 49 only counted
    for proto, _t in refused:
        proto.connection_lost(None)  # nothing was counted for them
    kept[0][0].connection_lost(None)
    assert limits.open_by_ip == {"10.0.0.9": 1, "10.0.0.10": 1}
    assert not connect(cls, loop, "10.0.0.9")[1].aborted


def test_headers_not_complete_within_the_deadline_close_the_connection(loop):
    cls, limits = protocol_class(header_timeout_s=0.05)
    slow, slow_transport = connect(cls, loop, "10.0.0.9")
    quick, quick_transport = connect(cls, loop, "10.0.0.10")
    slow.data_received(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")
    quick.data_received(b"POST /api/v1/hook/deeplink HTTP/1.1\r\nHost: a\r\n"
                        b"Content-Length: 100\r\n\r\n")  # headers done; the body may take time
    loop.run_until_complete(asyncio.sleep(0.15))
    assert slow_transport.closed and limits.timed_out == 1
    assert not quick_transport.is_closing()


def test_log_throttle_reports_the_first_then_a_count_per_interval():
    clock = Clock(100.0)
    throttle = LogThrottle(every_s=10, clock=clock)
    assert [throttle.hit() for _ in range(5)] == [1, 0, 0, 0, 0]
    clock.now += 10
    assert throttle.hit() == 5


def test_accept_resource_errors_are_logged_once_per_interval(loop, caplog):
    clock = Clock(100.0)
    install_accept_error_throttle(loop, LogThrottle(every_s=10, clock=clock))
    caplog.set_level(logging.ERROR)
    emfile = OSError(errno.EMFILE, "Too many open files")
    for _ in range(2048):
        loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                     "exception": emfile})
    clock.now += 10
    loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                 "exception": emfile})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "2048 time(s)" in lines[1] and "Too many open files" in lines[1]
    assert all(r.exc_info is None for r in caplog.records)
    loop.call_exception_handler({"message": "something else", "exception": ValueError("x")})
    assert len(caplog.records) == 3  # other errors keep asyncio's default handling


def test_open_files_limit_is_raised_toward_the_wish_within_the_hard_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    before, after = raise_open_files_limit(soft)  # nothing to do
    assert before == after == soft
    if hard != resource.RLIM_INFINITY:
        assert raise_open_files_limit(hard * 2)[1] <= hard


def test_installed_uvicorn_is_supported():
    assert check_uvicorn() is None
