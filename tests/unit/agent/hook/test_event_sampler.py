"""Sampled events: a refusal flood becomes one row per key a minute, carrying the count."""


import pytest

from agent.hook.event_sampler import EventSampler
from agent.models import EventKind
from agent.store import Store
from tests.support.clock import Clock


@pytest.fixture
def store_sealer() -> None:
    """These tests run on a store that seals nothing."""
    return None


def refuse(sampler: EventSampler, uuid: str = "pc-1", code: str = "forbidden_source") -> bool:
    return sampler.record((uuid, "rotate", code), actor="@hook", kind=EventKind.DEEPLINK,
                          action="rotate", server_uuid=uuid, result=code,
                          detail={"source_ip": "127.0.0.9"})


def rows(store: Store):
    return list(reversed(store.events.page(limit=500).items))


def test_a_flood_of_one_refusal_is_one_row_then_one_summary(store):
    clock = Clock()
    sampler = EventSampler(store, window_s=60, clock=clock)
    written = [refuse(sampler) for _ in range(500)]
    assert written.count(True) == 1
    assert len(rows(store)) == 1
    assert rows(store)[0].detail == {"source_ip": "127.0.0.9", "sampled": True, "repeats": 0}
    assert sampler.flush_due() == 0  # the window has not passed yet
    clock.now += 60
    assert sampler.flush_due() == 1
    summary = rows(store)[-1]
    assert (summary.result, summary.server_uuid) == ("forbidden_source", "pc-1")
    assert summary.detail["repeats"] == 499 and summary.detail["sampled"] is True
    clock.now += 60
    assert sampler.flush_due() == 0  # nothing pending: the idle key is forgotten
    assert refuse(sampler) is True and rows(store)[-1].detail["repeats"] == 0


def test_the_next_event_after_the_window_carries_the_count(store):
    clock = Clock()
    sampler = EventSampler(store, window_s=60, clock=clock)
    for _ in range(5):
        refuse(sampler)
    clock.now += 61
    assert refuse(sampler) is True
    assert [r.detail["repeats"] for r in rows(store)] == [0, 4]


def test_keys_are_sampled_apart(store):
    sampler = EventSampler(store, window_s=60, clock=Clock())
    for _ in range(3):
        refuse(sampler, "pc-1")
        refuse(sampler, "pc-2")
        refuse(sampler, "pc-1", "not_confirmed")
    assert sorted((r.server_uuid, r.result) for r in rows(store)) == [
        ("pc-1", "forbidden_source"), ("pc-1", "not_confirmed"), ("pc-2", "forbidden_source")]


def test_memory_is_bounded_by_an_overflow_key(store):
    clock = Clock()
    sampler = EventSampler(store, window_s=60, max_keys=3, clock=clock)
    for n in range(100):
        refuse(sampler, f"pc-{n}")
    assert len(rows(store)) == 4  # three keys, then one overflow row for the other 97
    clock.now += 60
    assert sampler.flush_due() == 1
    assert rows(store)[-1].detail["repeats"] == 96
