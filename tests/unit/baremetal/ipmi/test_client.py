"""BmcClient machinery (locks, deadlines, worker bound, session cache, hook) with a stub Link.

The wire behaviour is covered against real peers in tests/integration/test_ipmi_*.py; here a
stub session stands in so timing and thread properties can be checked exactly and fast.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest

from baremetal.errors import IpmiTimeout, IpmiUnreachable
from baremetal.ipmi.client import BmcAddress, BmcClient, PowerState


def addr(n: int) -> BmcAddress:
    return BmcAddress(host=f"10.0.0.{n}", username="ops", password="pw")


class StubWorld:
    """Records logins, logouts and concurrency; per-host delays and failures."""

    def __init__(self) -> None:
        self.delay: dict[str, float] = defaultdict(float)
        self.fail_once: set[str] = set()
        self.timer_code = 0
        self.logins: list[str] = []
        self.logouts: list[str] = []
        self.active: dict[str, int] = defaultdict(int)
        self.max_active: dict[str, int] = defaultdict(int)
        self.requests: list[tuple[str, int, bytes]] = []
        self.lock = threading.Lock()

    def open(self, address: BmcAddress, end: float) -> StubLink:
        with self.lock:
            self.logins.append(address.host)
        return StubLink(self, address)


class StubLink:
    def __init__(self, world: StubWorld, address: BmcAddress) -> None:
        self.world, self.addr, self.suite, self.broken = world, address, 17, False

    def exchange(self, what: str, netfn: int, cmd: int, data: bytes) -> tuple[int, bytes]:
        world, host = self.world, self.addr.host
        with world.lock:
            world.active[host] += 1
            world.max_active[host] = max(world.max_active[host], world.active[host])
            world.requests.append((host, cmd, bytes(data)))
        try:
            time.sleep(world.delay[host])
            if host in world.fail_once:
                world.fail_once.discard(host)
                self.broken = True
                raise IpmiUnreachable(self.addr.label, "stub session lost")
            if cmd == 8 and data[0] == 3:
                return world.timer_code, b""
            return 0, bytes([1, 0, 0]) if cmd == 1 else b""
        finally:
            with world.lock:
                world.active[host] -= 1

    def usable(self) -> bool:
        return not self.broken

    def logout(self) -> None:
        self.broken = True
        self.world.logouts.append(self.addr.host)


@pytest.fixture
def world() -> StubWorld:
    return StubWorld()


@pytest.fixture
def make_client(world):
    clients: list[BmcClient] = []

    def _make(**kwargs) -> BmcClient:
        client = BmcClient(link_factory=world.open, **kwargs)
        clients.append(client)
        return client

    yield _make
    for client in clients:
        client.close()


def _parallel(n: int, fn) -> list:
    results: list = [None] * n

    def run(i: int) -> None:
        try:
            results[i] = fn(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_calls_to_one_bmc_are_serialised_and_bmcs_run_in_parallel(world, make_client):
    client = make_client()
    for n in range(4):
        world.delay[f"10.0.0.{n}"] = 0.05
    started = time.monotonic()
    results = _parallel(16, lambda i: client.read_power(addr(i % 4), 5.0))
    elapsed = time.monotonic() - started
    assert results == [PowerState.ON] * 16
    assert all(world.max_active[f"10.0.0.{n}"] == 1 for n in range(4))
    # 4 calls of 50 ms per BMC in sequence, the 4 BMCs side by side: ~0.2 s, not 0.8 s.
    assert elapsed < 0.6
    assert sorted(world.logins) == [f"10.0.0.{n}" for n in range(4)]  # one session each


def test_deadline_and_a_stuck_bmc_does_not_delay_others(world, make_client):
    client = make_client()
    world.delay["10.0.0.1"] = 1.5
    started = time.monotonic()
    with pytest.raises(IpmiTimeout, match=r"within 0\.2 s"):
        client.read_power(addr(1), 0.2)
    assert time.monotonic() - started < 0.4
    started = time.monotonic()
    with pytest.raises(IpmiTimeout, match="earlier call"):
        client.read_power(addr(1), 0.2)  # the stuck worker still holds this BMC
    assert time.monotonic() - started < 0.4
    started = time.monotonic()
    assert client.read_power(addr(2), 1.0) is PowerState.ON
    assert time.monotonic() - started < 0.1


def test_worker_threads_are_bounded(world, make_client):
    client = make_client(max_workers=2)
    world.delay["10.0.0.1"] = world.delay["10.0.0.2"] = 1.0
    before = threading.active_count()
    for n in (1, 2):
        with pytest.raises(IpmiTimeout):
            client.read_power(addr(n), 0.1)
    with pytest.raises(IpmiTimeout, match="all 2 IPMI workers are busy"):
        client.read_power(addr(3), 0.1)
    assert threading.active_count() - before <= 2
    time.sleep(1.0)
    assert client.read_power(addr(3), 1.0) is PowerState.ON  # workers came back


def test_a_worker_stuck_too_long_releases_its_bmc(world, make_client):
    client = make_client(stuck_after_s=0.3)
    world.delay["10.0.0.1"] = 1.0
    with pytest.raises(IpmiTimeout):
        client.read_power(addr(1), 0.4)
    with pytest.raises(IpmiTimeout):
        client.read_power(addr(1), 0.1)  # stuck for 0.5 s now: the BMC gets a fresh slot
    world.delay["10.0.0.1"] = 0.0
    assert client.read_power(addr(1), 1.0) is PowerState.ON
    assert world.logins.count("10.0.0.1") == 2


def test_session_errors_and_timeouts_drop_the_session(world, make_client):
    client = make_client()
    client.read_power(addr(1), 1.0)
    world.fail_once.add("10.0.0.1")
    with pytest.raises(IpmiUnreachable):
        client.read_power(addr(1), 1.0)
    client.read_power(addr(1), 1.0)
    assert world.logins.count("10.0.0.1") == 2


def test_idle_sessions_are_renewed(world, make_client):
    client = make_client(idle_relogin_s=0.1)
    client.read_power(addr(1), 1.0)
    client.read_power(addr(1), 1.0)
    time.sleep(0.15)
    client.read_power(addr(1), 1.0)
    assert world.logins.count("10.0.0.1") == 2
    assert world.logouts == ["10.0.0.1"]


def test_changed_credentials_open_a_new_session(world, make_client):
    client = make_client()
    client.read_power(addr(1), 1.0)
    client.read_power(BmcAddress(host="10.0.0.1", username="ops", password="new"), 1.0)
    assert world.logins.count("10.0.0.1") == 2


def test_hook_reports_every_call_and_cannot_break_it(world, make_client):
    seen: list[tuple[str, str, float, str | None]] = []

    def hook(address, op, seconds, kind):
        seen.append((address.label, op, seconds, kind))
        raise RuntimeError("metrics backend down")

    client = make_client(on_call=hook)
    world.delay["10.0.0.2"] = 0.5
    client.read_power(addr(1), 1.0)
    client.set_power(addr(1), "soft", 1.0)
    with pytest.raises(IpmiTimeout):
        client.read_power(addr(2), 0.1)
    assert [(label, op, kind) for label, op, _s, kind in seen] == [
        ("10.0.0.1:623", "read_power", None),
        ("10.0.0.1:623", "set_power_soft", None),
        ("10.0.0.2:623", "read_power", "timeout"),
    ]
    assert 0.09 < seen[2][2] < 0.3


def test_set_boot_survives_a_refused_timer_parameter(world, make_client):
    client = make_client()
    assert client.set_boot(addr(1), "pxe", persistent=True, deadline_s=1.0) is True
    world.timer_code = 0x80
    assert client.set_boot(addr(1), "disk", deadline_s=1.0) is False
    writes = [data for _h, cmd, data in world.requests if cmd == 8]
    assert writes == [b"\x03\x08", bytes([5, 0xC0, 0x04, 0, 0, 0]),
                      b"\x03\x08", bytes([5, 0x80, 0x08, 0, 0, 0])]


def test_forget_and_close_log_out(world, make_client):
    client = make_client()
    client.read_power(addr(1), 1.0)
    client.read_power(addr(2), 1.0)
    assert client.cipher_suite(addr(1)) == 17
    client.forget(addr(1))
    assert world.logouts == ["10.0.0.1"]
    assert client.cipher_suite(addr(1)) is None
    client.close()
    assert world.logouts == ["10.0.0.1", "10.0.0.2"]
    with pytest.raises(RuntimeError, match="closed"):
        client.read_power(addr(2), 1.0)


def test_bad_arguments_are_refused_before_any_traffic(world, make_client):
    client = make_client()
    with pytest.raises(ValueError):
        client.set_power(addr(1), "explode", 1.0)
    with pytest.raises(ValueError):
        client.set_boot(addr(1), "usb", deadline_s=1.0)
    assert world.logins == []
