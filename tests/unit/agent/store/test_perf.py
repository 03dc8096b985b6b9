"""The load the store must carry cheaply: 500 servers, one pass per 60 s, 50 API reads/s.

Numbers are printed (run with ``-s``); the assertions are loose ceilings (10x what the
2-core CI box measures) so that only a real regression fails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.models import CheckResult, ReadingRecord, Verdict
from agent.secrets import Sealer, Secret, generate_key
from agent.store import Store

SERVERS = 500


def make_store(tmp_path: Path, history: int) -> tuple[Store, list[int]]:
    store = Store.open(tmp_path / "agent.db", sealer=Sealer(generate_key()))
    with store.transaction():
        ids = [store.servers.add(uuid=f"gpu-{i:03d}", ip=f"10.0.{i // 250}.{i % 250 + 1}",
                                 ipmi_host=f"10.1.{i // 250}.{i % 250 + 1}", ipmi_user="admin",
                                 ipmi_password=Secret("pw"),
                                 labels={"row": "ABCDEFGHIJ"[i % 10]}).id
               for i in range(SERVERS)]
    conn = store._db.connection()  # bulk history, as if the agent had run for a while
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO readings (server_id, ts, power) VALUES (?, ?, 'on')",
                     ((sid, float(k)) for k in range(history) for sid in ids))
    conn.execute("COMMIT")
    return store, ids


def one_pass(ids: list[int], ts: float) -> list[CheckResult]:
    return [CheckResult(ReadingRecord(server_id=sid, ts=ts, power="on", boot_device="disk",
                                      boot_valid=True, latency_ms=3.0), Verdict.OK)
            for sid in ids]


@pytest.fixture
def loaded(tmp_path: Path) -> Iterator[tuple[Store, list[int]]]:
    store, ids = make_store(tmp_path, history=100)
    yield store, ids
    store.close()


def measure_load(store: Store, ids: list[int], keep: int) -> dict[str, float]:
    started = time.perf_counter()
    store.checks.record(results=one_pass(ids, 1e9), keep_per_server=keep)
    pass_s = time.perf_counter() - started
    latencies: list[float] = []
    lock = threading.Lock()

    def api_reader() -> None:
        for _ in range(25):
            begin = time.perf_counter()
            rows = store.status.find()
            store.checks.history(server_id=ids[len(rows) // 2], limit=50)
            with lock:
                latencies.append(time.perf_counter() - begin)

    readers = [threading.Thread(target=api_reader) for _ in range(4)]
    started = time.perf_counter()
    for reader in readers:
        reader.start()
    store.checks.record(results=one_pass(ids, 1e9 + 60), keep_per_server=keep)  # meanwhile
    for reader in readers:
        reader.join(timeout=60)
    wall = time.perf_counter() - started
    latencies.sort()
    return {"pass_s": pass_s, "reads": len(latencies), "reads_wall_s": wall,
            "read_p50_ms": latencies[len(latencies) // 2] * 1000,
            "read_max_ms": latencies[-1] * 1000}


def test_pass_write_and_api_reads_are_cheap(loaded: tuple[Store, list[int]]) -> None:
    store, ids = loaded
    numbers = measure_load(store, ids, keep=100)
    print(f"\n500 servers x 100 readings: {numbers}")
    assert numbers["reads"] == 100
    assert numbers["pass_s"] < 1.0  # measured ~0.06 s
    assert numbers["read_p50_ms"] < 50  # measured < 1 ms (cache hit)
    assert store.checks.reading_count() == SERVERS * 100


@pytest.mark.slow
def test_full_day_of_history(tmp_path: Path) -> None:
    store, ids = make_store(tmp_path, history=1440)
    numbers = measure_load(store, ids, keep=1440)
    print(f"\n500 servers x 1440 readings: {numbers}")
    assert numbers["pass_s"] < 2.0  # measured ~0.1 s
    assert numbers["read_p50_ms"] < 50
    store.close()
