"""Outbox claim/complete/fail with backoff and leases, on a real SQLite file."""

from __future__ import annotations

import threading

import pytest

from agent.errors import LeaseLost, OutboxItemNotFound, ValidationError
from agent.models import OutboxState, RegistrationState
from agent.secrets import Secret
from agent.store import Store, backoff_delay
from tests.support.clock import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock(5000.0)


@pytest.fixture
def store_clock(clock: Clock) -> Clock:
    return clock


def test_backoff_grows_caps_and_jitters() -> None:
    assert backoff_delay(1, rng=lambda: 0.5) == 5.0
    assert backoff_delay(3, rng=lambda: 0.5) == 20.0
    assert backoff_delay(50, rng=lambda: 0.5) == 900.0
    assert backoff_delay(1, rng=lambda: 0.0) == pytest.approx(4.0)
    assert backoff_delay(1, rng=lambda: 1.0) == pytest.approx(6.0)
    assert backoff_delay(0, rng=lambda: 0.5) == 5.0


def test_claim_complete_happy_path(store: Store) -> None:
    item = store.outbox.enqueue(op="add", payload={"uuids": ["a", "b"]}, key="batch-1")
    assert item.state == OutboxState.PENDING and item.attempts == 0
    claimed = store.outbox.claim(limit=10)
    assert [c.id for c in claimed] == [item.id]
    assert claimed[0].state == OutboxState.CLAIMED and claimed[0].attempts == 1
    assert claimed[0].claim_token and claimed[0].payload == {"uuids": ["a", "b"]}
    assert store.outbox.claim(limit=10) == []
    done = store.outbox.complete(item_id=item.id, claim_token=claimed[0].claim_token)
    assert done.state == OutboxState.DONE and done.claim_token is None
    with pytest.raises(LeaseLost):
        store.outbox.complete(item_id=item.id, claim_token=claimed[0].claim_token)
    assert store.outbox.find(key="batch-1")[0].state == OutboxState.DONE


def test_fail_reschedules_with_backoff_then_dead(store: Store, clock: Clock) -> None:
    item = store.outbox.enqueue(op="add", payload={})
    claim = store.outbox.claim()[0]
    failed = store.outbox.fail(item_id=item.id, claim_token=claim.claim_token or "",
                               error="NodeUnreachable: connection refused")
    assert failed.state == OutboxState.PENDING and failed.last_error.startswith("NodeUnreach")
    assert 4.0 <= failed.next_attempt_at - clock.now <= 6.0
    assert store.outbox.claim() == []  # not due yet
    clock.now = failed.next_attempt_at
    claim2 = store.outbox.claim()[0]
    assert claim2.attempts == 2
    again = store.outbox.fail(item_id=item.id, claim_token=claim2.claim_token or "", error="x")
    assert 8.0 <= again.next_attempt_at - clock.now <= 12.0
    clock.now = again.next_attempt_at
    claim3 = store.outbox.claim()[0]
    dead = store.outbox.fail(item_id=item.id, claim_token=claim3.claim_token or "",
                             error="invalid uuid", retry=False)
    assert dead.state == OutboxState.DEAD
    clock.now += 10_000
    assert store.outbox.claim() == []
    assert store.outbox.retry(item_id=item.id).state == OutboxState.PENDING
    assert store.outbox.claim()[0].attempts == 4


def test_expired_lease_is_reclaimed_and_old_claimer_loses(store: Store, clock: Clock) -> None:
    item = store.outbox.enqueue(op="delete", payload={"node_id": "x"})
    first = store.outbox.claim(lease_s=30)[0]
    clock.now += 31
    second = store.outbox.claim(lease_s=30)[0]
    assert second.id == item.id and second.claim_token != first.claim_token
    with pytest.raises(LeaseLost):
        store.outbox.complete(item_id=item.id, claim_token=first.claim_token or "")
    with pytest.raises(LeaseLost):
        store.outbox.fail(item_id=item.id, claim_token=first.claim_token or "", error="x")
    store.outbox.complete(item_id=item.id, claim_token=second.claim_token or "")


def test_release_claims_at_startup(store: Store) -> None:
    store.outbox.enqueue(op="add", payload={})
    store.outbox.claim(lease_s=3600)
    assert store.outbox.release_claims() == 1
    assert store.outbox.claim()[0].attempts == 2


def test_claim_order_limit_and_op_filter(store: Store, clock: Clock) -> None:
    ids = [store.outbox.enqueue(op=op, payload={"n": n}).id
           for n, op in enumerate(["add", "modify", "add", "delete"])]
    later = store.outbox.enqueue(op="add", payload={}, delay_s=60)
    assert [c.id for c in store.outbox.claim(limit=2, ops=["add"], lease_s=600)] == [ids[0], ids[2]]
    assert [c.id for c in store.outbox.claim(limit=5, lease_s=600)] == [ids[1], ids[3]]
    assert store.outbox.next_due_at() == clock.now + 60
    clock.now += 60
    assert [c.id for c in store.outbox.claim(limit=5)] == [later.id]
    counts = store.outbox.counts()
    assert counts[OutboxState.CLAIMED] == 5 and counts[OutboxState.PENDING] == 0


def test_complete_with_local_change_is_atomic(store: Store) -> None:
    server = store.servers.add(uuid="a", ip="10.0.0.1", ipmi_host="h", ipmi_user="u",
                               ipmi_password=Secret("p"))
    item = store.outbox.enqueue(op="add", payload={"uuid": "a"})
    claim = store.outbox.claim()[0]
    with pytest.raises(RuntimeError), store.transaction():
        store.servers.set_registration(server_id=server.id, state=RegistrationState.REGISTERED,
                                       node_id="f" * 64)
        store.outbox.complete(item_id=item.id, claim_token=claim.claim_token or "")
        raise RuntimeError("crash between the two")
    assert store.servers.get(server_id=server.id).state == RegistrationState.PENDING
    assert store.outbox.get(item_id=item.id).state == OutboxState.CLAIMED


def test_concurrent_claimers_never_share_an_item(store: Store) -> None:
    for n in range(60):
        store.outbox.enqueue(op="add", payload={"n": n})
    seen: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            items = store.outbox.claim(limit=3)
            if not items:
                return
            for item in items:
                store.outbox.complete(item_id=item.id, claim_token=item.claim_token or "")
            with lock:
                seen.extend(i.id for i in items)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(seen) == list(range(1, 61))
    assert store.outbox.counts()[OutboxState.DONE] == 60


def test_validation_and_housekeeping(store: Store, clock: Clock) -> None:
    with pytest.raises(ValidationError):
        store.outbox.enqueue(op="", payload={})
    with pytest.raises(ValidationError):
        store.outbox.enqueue(op="add", payload={"pw": Secret("x")})
    with pytest.raises(OutboxItemNotFound):
        store.outbox.get(item_id=5)
    item = store.outbox.enqueue(op="add", payload={})
    claim = store.outbox.claim()[0]
    with pytest.raises(ValidationError):
        store.outbox.retry(item_id=item.id)
    store.outbox.complete(item_id=item.id, claim_token=claim.claim_token or "")
    clock.now += 100
    assert store.outbox.prune_done(older_than=clock.now - 50) == 1
    assert store.outbox.find() == []
