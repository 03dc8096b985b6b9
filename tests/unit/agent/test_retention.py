"""Housekeeping's retention: old events, sampled refusals, nonces and readings are pruned."""

from pathlib import Path

from agent.config import load_settings
from agent.models import CheckResult, EventKind, ReadingRecord, Verdict
from agent.retention import DAY_S, prune_old_records
from agent.secrets import Sealer, Secret, generate_key
from agent.store import Store
from tests.support.clock import Clock

NOW = 2_000_000_000.0


def settings(tmp_path: Path, **env: str):
    base = {"BM_AGENT_NODE_NODE_DAT": str(tmp_path / "node.dat"),
            "BM_AGENT_STORE_READINGS_PER_SERVER": "10"}
    return load_settings(None, environ={**base, **env})


def add_events(store: Store, clock: Clock, age_days: float) -> None:
    clock.now = NOW - age_days * DAY_S
    store.events.append(actor="admin", kind=EventKind.AUDIT, action="power_on", result="ok")
    store.events.append(actor="@monitor", kind=EventKind.VERDICT, action="verdict", result="ok")
    store.events.append(actor="@hook", kind=EventKind.DEEPLINK, action="rotate",
                        result="confirmed")
    store.events.append(actor="@hook", kind=EventKind.DEEPLINK, action="rotate",
                        result="forbidden_source", detail={"sampled": True, "repeats": 41})


def kept(store: Store) -> list[tuple[str, str, int]]:
    # (the monitor's own verdict events of the readings below are a day younger than any)
    return sorted((str(e.kind), e.result, round((NOW - e.ts) / DAY_S))
                  for e in store.events.page(limit=500).items if NOW - e.ts > DAY_S / 2)


def test_default_retention_prunes_by_age_and_keeps_audit(tmp_path: Path) -> None:
    clock = Clock(NOW)
    with Store.open(tmp_path / "agent.db", sealer=Sealer(generate_key()), clock=clock) as store:
        for age in (1, 8, 91):
            add_events(store, clock, age)
        store.nonces.remember(nonce="a" * 32, ts=NOW - 12 * 60)  # older than 2 x 300 s + 60
        store.nonces.remember(nonce="b" * 32, ts=NOW - 60)
        server_id = store.servers.add(uuid="pc-1", ip="10.0.0.1", ipmi_host="10.1.0.1",
                                      ipmi_user="admin", ipmi_password=Secret("pw")).id
        for n in range(30):
            reading = ReadingRecord(server_id=server_id, ts=NOW - 30 + n, power="on",
                                    boot_device="disk", boot_valid=True, latency_ms=1.0)
            store.checks.record(results=[CheckResult(reading, Verdict.OK)], keep_per_server=50)
        clock.now = NOW
        counts = prune_old_records(store, settings(tmp_path), now=NOW)
        assert (counts.refusals, counts.events, counts.nonces, counts.readings) == (2, 2, 1, 20)
        assert kept(store) == [
            ("audit", "ok", 1), ("audit", "ok", 8), ("audit", "ok", 91),
            ("deeplink", "confirmed", 1), ("deeplink", "confirmed", 8),
            ("deeplink", "forbidden_source", 1), ("verdict", "ok", 1), ("verdict", "ok", 8)]
        assert store.nonces.count() == 1
        assert [r.ts for r in store.checks.history(server_id=server_id, limit=100)][-1] == NOW - 10


def test_retention_days_are_configurable(tmp_path: Path) -> None:
    clock = Clock(NOW)
    with Store.open(tmp_path / "agent.db", clock=clock) as store:
        for age in (1, 3, 8):
            add_events(store, clock, age)
        chosen = settings(tmp_path, BM_AGENT_RETENTION_EVENTS_DAYS="5",
                          BM_AGENT_RETENTION_REFUSALS_DAYS="2")
        prune_old_records(store, chosen, now=NOW)
        assert [k for k in kept(store) if k[0] != "audit"] == [
            ("deeplink", "confirmed", 1), ("deeplink", "confirmed", 3),
            ("deeplink", "forbidden_source", 1), ("verdict", "ok", 1), ("verdict", "ok", 3)]
