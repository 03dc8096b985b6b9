"""Security issue 10, finding 13: outbox claims name their owner; a gone owner's claims are
taken over at once, a live owner's keep their lease.

The owner check runs against real processes (this one, its parent, a finished child);
the store part runs on a real SQLite file.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from agent.models import OutboxState
from agent.store.claim_owner import (
    ClaimOwner,
    current_owner,
    owner_gone,
    parse_owner,
    process_started,
)

LEASE_S = 300.0


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not psutil.pid_exists(child.pid)  # reaped: no process has this PID now
    return child.pid


def _token(host: str, pid: int, started: float) -> str:
    return ClaimOwner(host=host, pid=pid, started=started).new_token()


def test_token_names_host_pid_and_start_time() -> None:
    here = current_owner()
    token = here.new_token()
    owner = parse_owner(token)
    assert owner is not None and owner.same_process(here)
    assert (owner.host, owner.pid) == (here.host, os.getpid())
    assert parse_owner("0123456789abcdef0123456789abcdef") is None  # legacy token
    assert parse_owner(None) is None and parse_owner("h:x:1.0:r") is None
    assert parse_owner("my:host:42:17.50:abcd") == ClaimOwner("my:host", 42, 17.5)


def test_alive_owner_keeps_its_lease() -> None:
    here = current_owner()
    assert not owner_gone(here.new_token(), here)
    parent = psutil.Process(os.getppid())
    other_live = _token(here.host, parent.pid, parent.create_time())
    assert not owner_gone(other_live, here)


def test_dead_pid_is_gone() -> None:
    here = current_owner()
    assert owner_gone(_token(here.host, _dead_pid(), 1000.0), here)


def test_recycled_pid_with_another_start_time_is_gone() -> None:
    here = current_owner()
    parent = psutil.Process(os.getppid())
    recycled = _token(here.host, parent.pid, parent.create_time() - 120.0)
    assert owner_gone(recycled, here)
    assert owner_gone(_token(here.host, 4242, 50.0), here, started_of=lambda pid: 51.0)


def test_other_hosts_and_legacy_claims_are_not_judged() -> None:
    here = current_owner()
    assert not owner_gone(_token("other-host", _dead_pid(), 1000.0), here)
    assert not owner_gone("0123456789abcdef0123456789abcdef", here)
    assert not owner_gone(None, here)


def test_unreadable_start_time_keeps_the_lease() -> None:
    here = current_owner()
    assert not owner_gone(_token(here.host, 4242, 50.0), here, started_of=lambda pid: -1.0)


def test_zombie_and_missing_processes_have_no_start_time() -> None:
    assert process_started(_dead_pid()) is None
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # not reaped until wait()
    try:
        deadline = time.monotonic() + 10
        while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert process_started(zombie.pid) is None
    finally:
        zombie.wait()
    assert process_started(os.getpid()) == pytest.approx(current_owner().started, abs=0.05)


# -- the outbox ---------------------------------------------------------------------------


def _hand_claims_to(db: Path, tokens: dict[int, str]) -> None:
    """Rewrite claim tokens as if other processes had claimed the items."""
    with sqlite3.connect(db) as conn:
        for item_id, token in tokens.items():
            conn.execute("UPDATE outbox SET claim_token = ? WHERE id = ?", (token, item_id))


def test_claim_takes_over_gone_owners_at_once_and_leaves_live_ones(store, tmp_path) -> None:
    here = current_owner()
    parent = psutil.Process(os.getppid())
    ids = [store.outbox.enqueue(op="add", payload={"n": n}).id for n in range(5)]
    assert len(store.outbox.claim(limit=5, lease_s=LEASE_S)) == 5
    _hand_claims_to(tmp_path / "agent.db", {
        ids[0]: _token(here.host, _dead_pid(), 1000.0),                       # killed
        ids[1]: _token(here.host, parent.pid, parent.create_time() - 60.0),   # PID recycled
        ids[2]: _token(here.host, parent.pid, parent.create_time()),          # alive
        ids[3]: _token("other-host", _dead_pid(), 1000.0),                    # cannot tell
        # ids[4]: this very process, alive
    })
    taken = store.outbox.claim(limit=10, lease_s=LEASE_S)
    assert [i.id for i in taken] == [ids[0], ids[1]]
    assert all(i.attempts == 2 and parse_owner(i.claim_token) == parse_owner(here.new_token())
               for i in taken)
    assert store.outbox.claim(limit=10, lease_s=LEASE_S) == []  # now ours, and we are alive


def test_release_at_startup_spares_other_live_processes(store, tmp_path) -> None:
    here = current_owner()
    parent = psutil.Process(os.getppid())
    ids = [store.outbox.enqueue(op="add", payload={"n": n}).id for n in range(5)]
    store.outbox.claim(limit=5, lease_s=LEASE_S)
    _hand_claims_to(tmp_path / "agent.db", {
        ids[0]: _token(here.host, _dead_pid(), 1000.0),
        ids[1]: "0123456789abcdef0123456789abcdef",                          # legacy
        ids[2]: _token(here.host, parent.pid, parent.create_time()),          # alive
        ids[3]: _token("other-host", _dead_pid(), 1000.0),
    })
    assert store.outbox.release_claims() == 3  # dead, legacy and our own
    states = {i.id: i.state for i in store.outbox.find()}
    assert [states[i] for i in ids] == [OutboxState.PENDING, OutboxState.PENDING,
                                        OutboxState.CLAIMED, OutboxState.CLAIMED,
                                        OutboxState.PENDING]
