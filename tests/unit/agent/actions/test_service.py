"""agent.actions.service without BMCs: validation, selection, label parsing, the boot read-back rule."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.actions.service import ActionReading, ActionResult, Actions, _boot_holds
from agent.config import load_settings
from agent.errors import ServerNotFound, ValidationError
from agent.labels import parse_selector
from agent.metrics import Metrics
from agent.models import EventKind, RegistrationState
from agent.secrets import Secret
from agent.store import Store
from baremetal.ipmi.client import BmcClient


@pytest.fixture
def actions(tmp_path: Path, store: Store) -> Iterator[Actions]:
    settings = load_settings(None, environ={"BM_AGENT_NODE_NODE_DAT": str(tmp_path / "n.dat")})
    bmc = BmcClient(max_workers=2)
    yield Actions(store=store, bmc=bmc, settings=settings, metrics=Metrics())
    bmc.close()


def _add(store: Store, uuid: str, **labels: str) -> None:
    store.servers.add(uuid=uuid, ip="127.0.0.9", ipmi_host="127.0.0.1", ipmi_user="admin",
                      ipmi_password=Secret("pw-" + uuid), labels=labels)


def test_parse_label() -> None:
    assert parse_selector("zone=vip") == {"zone": "vip"}
    assert parse_selector("zone=vip, row=3") == {"zone": "vip", "row": "3"}
    # One grammar (agent/labels.py): a bare word is tag=word, an empty value and an empty
    # part are what the import accepts; an empty key still is no label.
    assert parse_selector("zone") == {"tag": "zone"}
    assert parse_selector("zone=") == {"zone": ""}
    assert parse_selector("zone=vip,") == {"zone": "vip"}
    for bad in ("=vip", ",", ""):
        with pytest.raises(ValidationError):
            parse_selector(bad)


def test_select_by_ids_and_label_in_order_without_duplicates(store: Store,
                                                             actions: Actions) -> None:
    _add(store, "a", zone="vip")
    _add(store, "b", zone="std")
    _add(store, "c", zone="vip", row="2")
    server = store.servers.get_by_uuid(uuid="b")
    store.servers.set_registration(server_id=server.id, state=RegistrationState.REGISTERED,
                                   node_id="ab" * 32)
    assert actions.select(label="zone=vip") == ["a", "c"]
    assert actions.select(label="zone=vip,row=2") == ["c"]
    assert actions.select(uuids=["ab" * 32, "a"], label="zone=vip") == ["b", "a", "c"]
    assert actions.select(label="zone=none") == []
    with pytest.raises(ServerNotFound):
        actions.select(uuids=["a", "nope"])


def test_bad_requests_are_refused_before_anything_happens(store: Store,
                                                          actions: Actions) -> None:
    _add(store, "a")
    with pytest.raises(ValidationError):
        actions.power(uuids=["a"], action="cycle", actor="alice")
    with pytest.raises(ValidationError):
        actions.set_boot(uuids=["a"], device="floppy", persistent=False, uefi=False,
                         actor="alice")
    with pytest.raises(ValidationError):
        actions.power(uuids="a", action="on", actor="alice")
    assert store.events.latest_id() == 0
    assert store.intents.get(server_id=store.servers.get_by_uuid(uuid="a").id).power is None


def test_unknown_server_single_raises_batch_reports_and_both_audit(store: Store,
                                                                   actions: Actions) -> None:
    with pytest.raises(ServerNotFound):
        actions.power(uuids=["ghost"], action="on", actor="alice")
    results = actions.power(uuids=["ghost1", "ghost2"], action="off", actor="bob")
    assert [(r.uuid, r.code, r.ok) for r in results] == [("ghost1", "not_found", False),
                                                         ("ghost2", "not_found", False)]
    events = store.events.page(kinds=[EventKind.AUDIT]).items
    assert sorted((e.actor, e.server_uuid, e.result) for e in events) == [
        ("alice", "ghost", "not_found"), ("bob", "ghost1", "not_found"),
        ("bob", "ghost2", "not_found")]
    assert actions.power(uuids=[], action="on", actor="bob") == []


def test_boot_read_back_rule() -> None:
    def reading(device: str, valid: bool, persistent: bool = False,
                uefi: bool = False) -> ActionReading:
        return ActionReading(boot_device=device, boot_valid=valid, boot_persistent=persistent,
                             boot_uefi=uefi)

    assert _boot_holds(reading("pxe", True, True), "pxe", True, False)
    assert not _boot_holds(reading("pxe", True, False), "pxe", True, False)  # dropped persistent
    assert not _boot_holds(reading("pxe", True, True, True), "pxe", True, False)
    assert not _boot_holds(reading("default", False), "pxe", False, False)  # valid bit clear
    assert _boot_holds(reading("default", False), "none", False, False)
    assert not _boot_holds(ActionReading(error="timeout"), "none", False, False)


def test_result_to_dict_is_json_ready() -> None:
    result = ActionResult("a", "power_on", True, True, "verified", "ok",
                          ActionReading(power="on"))
    data = result.to_dict()
    assert data["reading"]["power"] == "on" and data["code"] == "verified"


def test_unusable_bmc_settings_are_reported_without_touching_intent(store: Store,
                                                                     actions: Actions) -> None:
    store.servers.add(uuid="long", ip="127.0.0.9", ipmi_host="127.0.0.1", ipmi_user="admin",
                      ipmi_password=Secret("p" * 25))  # IPMI 2.0 carries at most 20 bytes
    (result,) = actions.power(uuids=["long"], action="on", actor="alice")
    assert (result.ok, result.code) == (False, "bmc_settings_invalid")
    assert "p" * 25 not in result.message
    server = store.servers.get_by_uuid(uuid="long")
    assert store.intents.get(server_id=server.id).power is None
    (event,) = store.events.page(kinds=[EventKind.AUDIT]).items
    assert (event.result, event.detail["code"]) == ("failed", "bmc_settings_invalid")
