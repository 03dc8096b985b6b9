"""agent.monitor.loop / agent.monitor.rentals / agent.monitor.reader without BMCs: loop robustness, rentals, records."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import Settings, load_settings
from agent.errors import StoreBusy
from agent.metrics import Metrics
from agent.models import EventKind
from agent.monitor.crosscheck import BootObservation, DbcPathObservation, Reading
from agent.monitor.loop import Monitor
from agent.monitor.reader import Observation, reading_record
from agent.monitor.rentals import RentalsFile
from agent.store import Store
from baremetal.ipmi.client import BmcClient, BootFlags


def _settings(tmp_path: Path, **check: object) -> Settings:
    base = load_settings(None, environ={"BM_AGENT_NODE_NODE_DAT": str(tmp_path / "node.dat")})
    return dataclasses.replace(base, check=dataclasses.replace(base.check, **check))


@pytest.fixture
def bmc() -> Iterator[BmcClient]:
    client = BmcClient(max_workers=4)
    yield client
    client.close()


def _write(path: Path, data: object) -> None:
    path.write_text(json.dumps(data))
    now = time.time_ns()
    os.utime(path, ns=(now, now))


# --- rentals ---------------------------------------------------------------------------


def test_rentals_follow_the_prune_timer_rules(tmp_path: Path) -> None:
    path = tmp_path / "rentals.json"
    _write(path, {"current_block": 100, "machines": {
        "idle": {"status": "online"},
        "expired": {"status": "rented", "rent_end": 99},
        "live": {"status": "rented", "rent_end": 101},
        "open": {"status": "rented"},
        "verifying": {"status": "verify"},
        "odd": "not an object",
    }})
    rentals = RentalsFile(path)
    assert rentals.rented("idle") is False
    assert rentals.rented("expired") is False
    assert rentals.rented("live") is True
    assert rentals.rented("open") is True
    assert rentals.rented("verifying") is None
    assert rentals.rented("odd") is None
    assert rentals.rented("absent") is None
    assert rentals.rented(None) is None


def test_rentals_reload_on_change_and_keep_last_good(tmp_path: Path) -> None:
    path = tmp_path / "rentals.json"
    _write(path, {"machines": {"a": {"status": "online"}}})
    rentals = RentalsFile(path)
    assert rentals.rented("a") is False
    _write(path, {"machines": {"a": {"status": "rented"}}})
    assert rentals.rented("a") is True
    path.write_text("{not json")
    assert rentals.rented("a") is True  # malformed: last good content stays
    path.unlink()
    assert rentals.rented("a") is None  # gone: unknown


# --- checker record --------------------------------------------------------------------


def test_reading_record_carries_every_observed_field() -> None:
    flags = BootFlags(device="pxe", selector=1, valid=True, persistent=True, uefi=False)
    obs = Observation(
        uuid="u1", server_id=7, ts=123.0, latency_ms=4.5, boot=flags,
        reading=Reading(power="on", boot=BootObservation("pxe", True, True, False),
                        dbc_path=DbcPathObservation(True, "Chassis Power is on"),
                        dbc_power_status="Chassis Power is on"))
    record = reading_record(obs)
    assert (record.server_id, record.ts, record.power, record.boot_device) == (7, 123.0, "on",
                                                                               "pxe")
    assert (record.boot_valid, record.boot_persistent, record.boot_uefi) == (True, True, False)
    assert (record.dbc_path_ok, record.dbc_path_message) == (True, "Chassis Power is on")
    assert record.dbc_power_status == "Chassis Power is on"
    assert (record.error_class, record.latency_ms) == (None, 4.5)


# --- monitor ---------------------------------------------------------------------------


def test_empty_inventory_pass_is_cheap_and_recorded(tmp_path: Path, store: Store,
                                                    bmc: BmcClient) -> None:
    metrics = Metrics()
    monitor = Monitor(store=store, bmc=bmc, settings=_settings(tmp_path), client_node=None,
                      metrics=metrics)
    report = monitor.run_pass()
    assert report.results == [] and report.duration_s < 0.5
    assert monitor.last_pass is report
    assert metrics.passes.value(outcome="ok") == 1


def test_loop_survives_failing_passes_and_records_them(tmp_path: Path, store: Store,
                                                       bmc: BmcClient,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = Metrics()
    settings = _settings(tmp_path, interval_s=0.05, jitter_s=0.01, deadline_s=0.04)
    monitor = Monitor(store=store, bmc=bmc, settings=settings, client_node=None,
                      metrics=metrics)
    real = store.servers.all_credentials
    calls = {"n": 0}

    def flaky() -> list:  # type: ignore[type-arg]
        calls["n"] += 1
        if calls["n"] <= 2:
            raise StoreBusy("locked", path=str(store.path))
        if calls["n"] == 3:
            raise RuntimeError("a bug")
        return real()

    monkeypatch.setattr(store.servers, "all_credentials", flaky)
    monitor.start()
    try:
        deadline = time.monotonic() + 5
        while metrics.passes.value(outcome="ok") < 2:
            assert time.monotonic() < deadline, "the loop died or stalled"
            time.sleep(0.01)
    finally:
        monitor.stop(timeout_s=5)
    assert metrics.passes.value(outcome="failed") == 3
    assert metrics.check_errors.value(source="monitor", kind="StoreBusy") == 2
    assert metrics.check_errors.value(source="monitor", kind="RuntimeError") == 1
    events = store.events.page(kinds=[EventKind.SYSTEM], limit=50).items
    assert [e.action for e in events].count("pass_failed") == 3
    assert {e.detail["error"] for e in events} == {"StoreBusy", "RuntimeError"}


def test_stop_before_first_pass_returns_at_once(tmp_path: Path, store: Store,
                                                bmc: BmcClient) -> None:
    settings = _settings(tmp_path, interval_s=30.0, jitter_s=20.0)
    monitor = Monitor(store=store, bmc=bmc, settings=settings, client_node=None,
                      metrics=Metrics())
    monitor.start()
    started = time.monotonic()
    monitor.stop(timeout_s=5)
    assert time.monotonic() - started < 1.0
    assert monitor.last_pass is None
