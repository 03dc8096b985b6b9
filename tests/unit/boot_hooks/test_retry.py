"""Deadlines and backoff with an injected clock (no real sleeping)."""

import pytest

from boot_hooks.retry import Backoff, Deadline, retry_until
from tests.support.clock import Clock


def test_deadline_counts_down_and_caps():
    clock = Clock(100.0)
    deadline = Deadline(5, clock=clock)
    assert deadline.remaining() == 5 and not deadline.expired()
    clock.now += 4
    assert deadline.cap(3) == pytest.approx(1)
    clock.now += 2
    assert deadline.remaining() == 0 and deadline.expired()
    assert deadline.cap(3) == 0.01


def test_backoff_grows_with_jitter_and_is_capped():
    backoff = Backoff(first_s=0.1, max_s=1.0)
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling


def test_retry_until_returns_after_transient_errors():
    clock = Clock(100.0)
    outcomes = iter([KeyError("a"), KeyError("b"), "ok"])
    seen = []

    def attempt():
        value = next(outcomes)
        if isinstance(value, Exception):
            raise value
        return value

    result = retry_until(Deadline(10, clock=clock), attempt, (KeyError,),
                         on_retry=lambda exc, n: seen.append(n), sleep=clock.sleep)
    assert result == "ok"
    assert seen == [1, 2]
    assert len(clock.sleeps) == 2


def test_retry_until_gives_up_at_the_deadline_with_the_last_error():
    clock = Clock(100.0)
    calls = []

    def attempt():
        calls.append(clock.now)
        raise KeyError(len(calls))

    with pytest.raises(KeyError):
        retry_until(Deadline(3, clock=clock), attempt, (KeyError,), sleep=clock.sleep)
    assert clock.now - 100.0 <= 3.0 + 1e-9
    assert len(calls) >= 5


def test_other_errors_are_not_retried():
    calls = []

    def attempt():
        calls.append(1)
        raise ValueError("no")

    with pytest.raises(ValueError):
        retry_until(Deadline(10), attempt, (KeyError,))
    assert calls == [1]
