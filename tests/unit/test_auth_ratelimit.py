"""Login rate limiter: per name and per IP, sliding window, bounded memory."""

from __future__ import annotations

import pytest

from agent.errors import RateLimited
from agent.ratelimit import LoginRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def fail(limiter: LoginRateLimiter, name: str, ip: str, times: int) -> None:
    for _ in range(times):
        limiter.check(name=name, source_ip=ip)
        limiter.record_failure(name=name, source_ip=ip)


def test_five_failures_lock_the_name_with_retry_after(clock: Clock) -> None:
    limiter = LoginRateLimiter(max_failures=5, ip_max_failures=100, window_s=300, clock=clock)
    fail(limiter, "alice", "10.0.0.1", 4)
    clock.now += 10
    fail(limiter, "alice", "10.0.0.1", 1)
    with pytest.raises(RateLimited) as info:
        limiter.check(name="ALICE", source_ip="10.0.0.2")  # names fold case; any IP
    assert info.value.retry_after_s == 290
    limiter.check(name="bob", source_ip="10.0.0.1")  # others are not affected
    clock.now += 290
    limiter.check(name="alice", source_ip="10.0.0.1")  # the first four left the window
    fail(limiter, "alice", "10.0.0.1", 4)  # with the one at t=110 that makes five again
    with pytest.raises(RateLimited) as info:
        limiter.check(name="alice", source_ip="10.0.0.1")
    assert info.value.retry_after_s == 10


def test_ip_limit_catches_spraying_over_names(clock: Clock) -> None:
    limiter = LoginRateLimiter(max_failures=5, ip_max_failures=8, window_s=300, clock=clock)
    for n in range(8):
        fail(limiter, f"user{n}", "10.6.6.6", 1)
    with pytest.raises(RateLimited):
        limiter.check(name="someone-new", source_ip="10.6.6.6")
    limiter.check(name="someone-new", source_ip="10.0.0.7")


def test_success_clears_the_name_only(clock: Clock) -> None:
    limiter = LoginRateLimiter(max_failures=3, ip_max_failures=4, window_s=60, clock=clock)
    fail(limiter, "carol", "10.0.0.3", 2)
    limiter.record_success(name="carol", source_ip="10.0.0.3")
    fail(limiter, "carol", "10.0.0.3", 2)  # name counter restarted: not locked
    with pytest.raises(RateLimited):  # but the IP saw 4 failures
        limiter.check(name="dave", source_ip="10.0.0.3")


def test_memory_is_bounded(clock: Clock) -> None:
    limiter = LoginRateLimiter(max_failures=5, ip_max_failures=10**6, window_s=300,
                               clock=clock, max_keys=100)
    for n in range(1000):
        limiter.record_failure(name=f"u{n}", source_ip=f"10.0.{n // 250}.{n % 250}")
    assert limiter.tracked_keys() == 100
