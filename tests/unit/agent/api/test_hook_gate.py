"""The hook relay's gate: its own bounded pool, one call per seat, a cap per address, 429 at once."""

import threading
import time
from collections.abc import Callable

import anyio
import pytest

from agent.api.hook_gate import HookBusy, HookGate, publish_seat


def blocker() -> tuple[threading.Event, Callable[[], str]]:
    release = threading.Event()

    def call() -> str:
        assert release.wait(10)
        return "done"
    return release, call


def test_calls_beyond_a_seat_an_address_or_the_pool_are_refused_at_once() -> None:
    gate = HookGate(threads=3, per_source_ip=2)
    refusals: list[str] = []

    async def main() -> list[str]:
        release, call = blocker()
        results: list[str] = []

        async def hold(ip: str, seat: str) -> None:
            results.append(await gate.run(call, source_ip=ip, seat=seat, action="deeplink"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(hold, "10.0.0.1", "seat-a")
            tg.start_soon(hold, "10.0.0.1", "seat-b")
            tg.start_soon(hold, "10.0.0.2", "seat-c")
            await anyio.sleep(0.2)
            assert gate.running == 3
            for ip, seat in (("10.0.0.3", "seat-a"),    # the seat is taken
                             ("10.0.0.1", "seat-d"),    # the address has 2 in flight
                             ("10.0.0.4", "seat-e")):   # the pool is full
                started = time.monotonic()
                with pytest.raises(HookBusy) as info:
                    await gate.run(lambda: "never", source_ip=ip, seat=seat, action="deeplink")
                assert time.monotonic() - started < 0.1
                assert (info.value.status, info.value.code) == (429, "busy")
                assert info.value.retry_after_s > 0
                refusals.append(info.value.detail)
            release.set()
        return results

    assert anyio.run(main) == ["done"] * 3
    assert "already in progress" in refusals[0] and "per source address" in refusals[1]
    assert "busy with other servers" in refusals[2]
    assert gate.running == 0


def test_a_failing_call_frees_its_slots() -> None:
    gate = HookGate(threads=1, per_source_ip=1)

    def boom() -> str:
        raise RuntimeError("node down")

    async def main() -> str:
        with pytest.raises(RuntimeError):
            await gate.run(boom, source_ip="10.0.0.1", seat="s", action="deeplink")
        return await gate.run(lambda: "ok", source_ip="10.0.0.1", seat="s", action="deeplink")

    assert anyio.run(main) == "ok"


def test_the_relay_runs_outside_anyios_default_pool() -> None:
    gate = HookGate(threads=4, per_source_ip=4)

    async def main() -> float:
        release, call = blocker()
        default = anyio.to_thread.current_default_thread_limiter()
        async with anyio.create_task_group() as tg:
            for n in range(4):
                tg.start_soon(lambda n=n: gate.run(call, source_ip=f"10.0.0.{n}", seat=None,
                                                    action="deeplink"))
            await anyio.sleep(0.2)
            borrowed = default.borrowed_tokens
            release.set()
        return borrowed

    assert anyio.run(main) == 0


@pytest.mark.parametrize(("body", "seat"), [
    (b'{"node_id": "' + b"ab" * 32 + b'"}', "ab" * 32),
    (b'{"node_id": "xyz"}', None),
    (b"[1, 2]", None),
    (b"\xff\xfe", None),
    (b"[" * 100_000, None),
])
def test_publish_seat_is_a_safe_peek(body: bytes, seat: str | None) -> None:
    assert publish_seat(body) == seat
