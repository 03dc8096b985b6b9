"""Each seat's power path in the store: round trip, sealed plug password, import, migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.models import CheckResult, PowerSettings, ReadingRecord, Verdict
from agent.secrets import Sealer, Secret, generate_key
from agent.store import SCHEMA_VERSION, Store
from tests.support.old_store import add_v1_server, make_old_store

BASE = {"uuid": "gpu-01", "ip": "192.168.1.11", "ipmi_host": "192.168.2.11",
        "ipmi_user": "admin"}
SHELLY = PowerSettings(path="http", plug_preset="shelly-gen2", plug_url="http://10.0.9.1",
                       plug_username="admin", plug_id="0")


def test_a_server_without_power_settings_is_an_ipmi_seat(store: Store) -> None:
    server = store.servers.add(ipmi_password=Secret("pw-1"), **BASE)  # type: ignore[arg-type]
    assert server.power == PowerSettings() and server.power_path == "ipmi"
    creds = store.servers.credentials(server_id=server.id)
    assert creds.power_path == "ipmi" and creds.plug_password is None


def test_plug_settings_round_trip_and_the_password_is_sealed(store: Store) -> None:
    server = store.servers.add(ipmi_password=Secret("pw-1"), power=SHELLY,  # type: ignore[arg-type]
                               plug_password=Secret("plug-secret-77"), **BASE)
    assert server.power.plug_preset == "shelly-gen2" and server.power.has_plug_password
    assert "plug-secret-77" not in repr(server)
    creds = store.servers.credentials(server_id=server.id)
    assert creds.plug_password is not None and creds.plug_password.reveal() == "plug-secret-77"
    assert b"plug-secret-77" not in store.path.read_bytes()


def test_a_template_plug_keeps_its_template_and_redfish_its_url(store: Store) -> None:
    template = {"on_url": "/on", "off_url": "/off", "status_url": "/s",
                "status_json_path": "relay.0"}
    plug = PowerSettings(path="http", plug_preset="template", plug_url="http://10.0.9.2",
                         plug_template=template)
    one = store.servers.add(ipmi_password=Secret("pw"), power=plug,  # type: ignore[arg-type]
                            **BASE)
    assert store.servers.get(server_id=one.id).power.plug_template == template
    redfish = PowerSettings(path="redfish", redfish_url="https://10.0.2.5:8443",
                            tls_verify=False)
    two = store.servers.add(ipmi_password=Secret("pw"), power=redfish,  # type: ignore[arg-type]
                            **{**BASE, "uuid": "gpu-02"})
    assert store.servers.get(server_id=two.id).power == redfish


def test_upsert_reports_a_power_or_plug_password_change_and_nothing_else(store: Store) -> None:
    first = store.servers.upsert(ipmi_password=Secret("pw"), power=SHELLY,  # type: ignore[arg-type]
                                 plug_password=Secret("a"), **BASE)
    assert first.created
    same = store.servers.upsert(ipmi_password=Secret("pw"), power=SHELLY,  # type: ignore[arg-type]
                                plug_password=Secret("a"), **BASE)
    assert not same.created and same.changed == frozenset()
    moved = store.servers.upsert(ipmi_password=Secret("pw"),  # type: ignore[arg-type]
                                 power=PowerSettings(path="redfish"), **BASE)
    assert moved.changed == {"power", "plug_password"}
    assert moved.server.power_path == "redfish" and not moved.server.power.has_plug_password


def test_update_replaces_the_power_settings_and_clears_the_plug_password(store: Store) -> None:
    server = store.servers.add(ipmi_password=Secret("pw"), power=SHELLY,  # type: ignore[arg-type]
                               plug_password=Secret("a"), **BASE)
    updated = store.servers.update(server_id=server.id, power=PowerSettings(),
                                   plug_password=None)
    assert updated.power == PowerSettings()


def test_a_reading_records_its_path_and_watts(store: Store) -> None:
    server = store.servers.add(ipmi_password=Secret("pw"), power=SHELLY,  # type: ignore[arg-type]
                               **BASE)
    reading = ReadingRecord(server_id=server.id, ts=1.0, power="on", path="http", watts=3.5)
    store.checks.record(results=[CheckResult(reading=reading, verdict=Verdict.OK)],
                        keep_per_server=5)
    row = store.status.get(server_id=server.id)
    assert row.reading is not None
    assert (row.reading.path, row.reading.watts) == ("http", 3.5)


def test_a_version_2_store_migrates_every_server_to_ipmi(tmp_path: Path) -> None:
    sealer = Sealer(generate_key())
    path = tmp_path / "old.db"
    make_old_store(path, 2, sealer)
    server_id = add_v1_server(path, sealer, uuid="pc-1", ip="10.0.0.1", ipmi_host="10.0.1.1",
                              ipmi_user="admin", password="pw123456")
    with Store.open(path, sealer=sealer) as store:
        assert store.schema_version() == SCHEMA_VERSION
        creds = store.servers.credentials(server_id=server_id)
        assert creds.power == PowerSettings() and creds.ipmi_password.reveal() == "pw123456"
    conn = sqlite3.connect(path)
    try:
        bad = "INSERT INTO servers (uuid, ip, ipmi_host, ipmi_user, ipmi_password_sealed," \
              " created_at, updated_at, power_path) VALUES ('x', '', '', '', '', 0, 0, 'smoke')"
        try:
            conn.execute(bad)
        except sqlite3.IntegrityError:
            pass
        else:
            raise AssertionError("the schema accepted an unknown power path")
    finally:
        conn.close()
