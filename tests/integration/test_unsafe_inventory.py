"""Security issue 10 (café LAN review), through the real bm-agent, its CLI and the emulator.

- The shell injection as found: ``ipmi_hostname = fe80::1%;cd;touch x_$(id -u);`` (and
  ``::1%`id`|nc ...``) is refused by CSV import, JSON import, POST and PATCH, nothing stored.
- A store written by an older version that holds such a value: the start-up re-check marks
  the server failed (state_detail and an event name the field), ``register`` never sends
  it, the emulator node never sees it; once staff fix the field it registers.
- Bad files (a CSV field over 128 KiB, ``[`` * 100000) are a clean file error: the API
  answers its per-row report, the CLI exits 2; bidi characters are refused as row errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.config import Settings
from agent.models import RegistrationState
from agent.registry.inventory import parse_inventory
from agent.registry.outbox import OP_MODIFY
from agent.secrets import Sealer, Secret
from agent.store import Store
from tests.integration.cli_env import CSV_HEADER, init_agent
from tests.integration.registry_driver import (
    inventory_csv,
    make_registry,
    node_servers,
    open_store,
)
from tests.support.agentproc import AgentProc

INJECTED_HOSTS = ["fe80::1%;cd;touch x_$(id -u);", "::1%`id`|nc 127.0.0.1 9"]
UNSAFE_PASSWORD = "`id`|nc"  # an old version's rule let none of these through: a backup may
BIG_FIELD = "x" * (128 * 1024 + 1)
DEEP_JSON = b"[" * 100000


def _row(**fields: Any) -> dict[str, Any]:
    return {"uuid": "pc-1", "ip": "10.0.0.1", "ipmi_hostname": "10.1.0.1",
            "ipmi_username": "admin", "ipmi_password": "pw-123", **fields}


def _csv(*rows: dict[str, Any]) -> bytes:
    names = CSV_HEADER.strip().split(",")
    lines = [",".join(json.dumps(r.get(n, "")) if "," in str(r.get(n, "")) else
                      str(r.get(n, "")) for n in names) for r in rows]
    return (CSV_HEADER + "".join(line + "\n" for line in lines)).encode()


def _import(agent: AgentProc, body: bytes, filename: str) -> dict[str, Any]:
    answer = agent.post("/api/v1/servers/import", data=body, params={"filename": filename},
                        user="oper")
    assert answer.status_code == 200, answer.text  # a per-row report, never a 5xx
    return answer.json()


# --- refused at the door --------------------------------------------------------------


@pytest.mark.parametrize("host", INJECTED_HOSTS)
def test_injected_scope_id_is_refused_by_csv_json_post_and_patch(agent_proc, host) -> None:
    agent = agent_proc()
    for body, name in ((_csv(_row(ipmi_hostname=host)), "servers.csv"),
                       (json.dumps([_row(ipmi_hostname=host)]).encode(), "servers.json")):
        report = _import(agent, body, name)
        assert report["created"] == [] and len(report["errors"]) == 1, report
        error = report["errors"][0]
        assert (error["field"], error["code"]) == ("ipmi_hostname", "unsafe_characters")
    answer = agent.post("/api/v1/servers", json=_row(ipmi_hostname=host), user="oper")
    assert answer.status_code == 422 and "ipmi_hostname" in answer.text, answer.text
    assert agent.get("/api/v1/servers").json()["count"] == 0
    assert agent.post("/api/v1/servers", json=_row(), user="oper").status_code == 201
    with agent.session("oper") as sess:
        patched = sess.patch(agent.url + "/api/v1/servers/pc-1", json={"ipmi_hostname": host},
                             timeout=30)
    assert patched.status_code == 422 and "ipmi_hostname" in patched.text, patched.text
    assert agent.server("pc-1")["ipmi_host"] == "10.1.0.1"


def test_bad_files_are_file_errors_and_bidi_is_a_row_error(agent_proc) -> None:
    agent = agent_proc()
    report = _import(agent, _csv(_row(desc=BIG_FIELD)), "big.csv")
    assert [(e["field"], e["code"]) for e in report["errors"]] == [("file", "bad_csv")]
    report = _import(agent, DEEP_JSON, "deep.json")
    assert [(e["field"], e["code"]) for e in report["errors"]] == [("file", "bad_json")]
    assert "nested too deeply" in report["errors"][0]["message"]
    report = _import(agent, json.dumps([_row(desc="seat \u202e21"),
                                        _row(uuid="pc-2", labels="zone=vip\u2066")]).encode(),
                     "bidi.json")
    assert [(e["field"], e["code"], e["detail"]) for e in report["errors"]] == [
        ("desc", "hidden_character", "U+202E"), ("labels", "hidden_character", "U+2066")]
    assert "\u202e" not in json.dumps(report, ensure_ascii=False)
    assert agent.post("/api/v1/servers", json=_row(), user="oper").status_code == 201
    with agent.session("oper") as sess:
        for change in ({"desc": "a\u202eb"}, {"os": "\u200fwin"}, {"labels": {"zone": "\u2067x"}}):
            answer = sess.patch(agent.url + "/api/v1/servers/pc-1", json=change, timeout=30)
            assert answer.status_code == 422 and "hidden_character" in answer.text, answer.text
    assert agent.get("/api/v1/servers").json()["count"] == 1


def test_cli_import_of_bad_files_exits_2_with_a_clear_message(emulator, tmp_path: Path) -> None:
    agent = init_agent(tmp_path / "agent", emulator)
    big = agent.path / "big.csv"
    big.write_bytes(_csv(_row(desc=BIG_FIELD)))
    result = agent.cli("servers", "import", str(big))
    assert result.code == 2, (result.out, result.err)
    assert "not a readable CSV file" in result.out + result.err
    assert "Traceback" not in result.err
    deep = agent.path / "deep.json"
    deep.write_bytes(DEEP_JSON)
    result = agent.cli("servers", "import", str(deep))
    assert result.code == 2 and "nested too deeply" in result.out + result.err, result.err
    injected = agent.path / "injected.csv"
    injected.write_bytes(_csv(_row(ipmi_hostname=INJECTED_HOSTS[0])))
    result = agent.cli("--json", "servers", "import", str(injected))
    assert result.code == 2, result.err
    assert [(e["field"], e["code"]) for e in result.json()["errors"]] == [
        ("ipmi_hostname", "unsafe_characters")]
    assert agent.cli("--json", "servers", "list").json() == []


# --- stored by an older version: re-checked at start-up, never sent ----------------------


def _seed_unsafe(settings: Settings) -> None:
    """Write straight into the store, bypassing validation, as an old version could have."""
    with Store.open(settings.store.path,
                    sealer=Sealer.from_key_file(settings.secrets.key_file)) as store:
        store.servers.add(uuid="pc-host", ip="10.0.0.11", ipmi_host=INJECTED_HOSTS[0],
                          ipmi_user="admin", ipmi_password=Secret("pw-123"))
        store.servers.add(uuid="pc-pass", ip="10.0.0.12", ipmi_host="10.1.0.12",
                          ipmi_user="admin", ipmi_password=Secret(UNSAFE_PASSWORD))
        store.servers.add(uuid="pc-good", ip="10.0.0.13", ipmi_host="10.1.0.13",
                          ipmi_user="admin", ipmi_password=Secret("pw-123"))


def _events(agent: AgentProc, uuid: str) -> list[dict[str, Any]]:
    answer = agent.get("/api/v1/events", params={"server": uuid, "limit": 50})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def test_stored_unsafe_values_are_refused_at_start_and_never_reach_the_node(
        agent_proc, emulator) -> None:
    agent = agent_proc(emulator, before_start=_seed_unsafe)
    for uuid, field in (("pc-host", "ipmi_hostname"), ("pc-pass", "ipmi_password")):
        server = agent.wait_for(lambda u=uuid: (s := agent.server(u))["state"] == "failed" and s,
                                what=f"{uuid} marked at start-up")
        assert field in server["state_detail"] and "not safe" in server["state_detail"]
        assert any(e["action"] == "recheck" and e["result"] == "refused"
                   and e["detail"]["field"] == field for e in _events(agent, uuid))
    assert agent.server("pc-good")["state"] == "pending"
    assert agent.post("/api/v1/register", user="oper").status_code == 200
    agent.wait_for(lambda: agent.server("pc-good")["state"] == "registered", what="register")
    on_node = {s.uuid: s for s in node_servers(emulator.url, emulator.manager_key)}
    assert set(on_node) == {"pc-good"}
    for uuid, field in (("pc-host", "ipmi_hostname"), ("pc-pass", "ipmi_password")):
        server = agent.server(uuid)
        assert server["state"] == "failed" and field in server["state_detail"]
        refused = [e for e in _events(agent, uuid) if e["action"] == "register"]
        assert refused and refused[0]["result"] == "refused", refused
        assert refused[0]["detail"]["field"] == field
    log = agent.log()
    assert "pc-host" in log and "ipmi_hostname" in log and "pc-pass" in log
    everything = log + json.dumps([_events(agent, u) for u in ("pc-host", "pc-pass")])
    assert UNSAFE_PASSWORD not in everything + json.dumps(agent.server("pc-pass"))
    # Staff fix the field: the server goes back to pending and registers with safe values.
    with agent.session("oper") as sess:
        fixed = sess.patch(agent.url + "/api/v1/servers/pc-host",
                           json={"ipmi_hostname": "fe80::1%eth0"}, timeout=30)
        assert fixed.status_code == 200, fixed.text
        assert fixed.json()["state"] == "pending"
        # Another field alone is refused while the stored password is still unsafe.
        other = sess.patch(agent.url + "/api/v1/servers/pc-pass", json={"desc": "x"},
                           timeout=30)
        assert other.status_code == 422 and "ipmi_password" in other.text, other.text
        assert UNSAFE_PASSWORD not in other.text
    assert agent.post("/api/v1/register", user="oper").status_code == 200
    agent.wait_for(lambda: agent.server("pc-host")["state"] == "registered", what="fixed one")
    on_node = {s.uuid: s for s in node_servers(emulator.url, emulator.manager_key)}
    assert set(on_node) == {"pc-good", "pc-host"}
    assert on_node["pc-host"].ipmi_hostname == "fe80::1%eth0"


def test_a_modify_with_an_unsafe_stored_value_is_refused_and_the_node_keeps_its_copy(
        emulator, tmp_path: Path) -> None:
    with open_store(tmp_path / "agent.db", tmp_path / "secrets.key") as store:
        registry = make_registry(store, emulator.url, emulator.manager_key)
        registry.import_servers(parse_inventory(inventory_csv(2)), actor="alice")
        registry.register_pending(actor="alice")
        registry.process_outbox()
        first = store.servers.get_by_uuid(uuid="pc-001")
        assert first.state == RegistrationState.REGISTERED
        # An old version (or a restored backup) left an unsafe value; a change is queued.
        store.servers.update(server_id=first.id, ipmi_host=INJECTED_HOSTS[1])
        registry.update_server("pc-002", {"desc": "seat two"}, actor="alice")
        store.outbox.enqueue(op=OP_MODIFY, key="pc-001", payload={"uuid": "pc-001"})
        run = registry.process_outbox()
        assert (run.failed, run.done) == (1, 1), run
        refused = store.servers.get_by_uuid(uuid="pc-001")
        assert refused.state == RegistrationState.FAILED
        assert "ipmi_hostname" in refused.state_detail
        assert "The node still holds the value" in refused.state_detail
        on_node = {s.uuid: s for s in node_servers(emulator.url, emulator.manager_key)}
        assert on_node["pc-001"].ipmi_hostname == "10.1.0.11"
        assert on_node["pc-002"].description == "seat two"
        # The start-up re-check finds it too, and says the node still holds the old copy.
        found = registry.recheck_stored_values()
        assert [(e.server, e.field) for e in found] == [("pc-001", "ipmi_hostname")]
        # Fixing it sends the safe value with a modify.
        registry.update_server("pc-001", {"ipmi_hostname": "10.1.0.99"}, actor="alice")
        registry.process_outbox()
        assert store.servers.get_by_uuid(uuid="pc-001").state == RegistrationState.REGISTERED
        on_node = {s.uuid: s for s in node_servers(emulator.url, emulator.manager_key)}
        assert on_node["pc-001"].ipmi_hostname == "10.1.0.99"


def test_a_key_fetch_for_a_server_with_an_unsafe_stored_value_is_refused_too(
        emulator, tmp_path: Path) -> None:
    with open_store(tmp_path / "agent.db", tmp_path / "secrets.key") as store:
        registry = make_registry(store, emulator.url, emulator.manager_key)
        registry.import_servers(parse_inventory(inventory_csv(1)), actor="alice")
        registry.register_pending(actor="alice")
        registry.process_outbox()
        server = store.servers.get_by_uuid(uuid="pc-001")
        store.servers.set_registration(server_id=server.id, state=RegistrationState.PENDING,
                                       node_private_key=None)  # node_id kept, key not yet
        store.servers.update(server_id=server.id, ipmi_password=Secret(UNSAFE_PASSWORD))
        assert registry.register_pending(actor="alice") == 1
        run = registry.process_outbox()
        assert (run.failed, run.done) == (1, 0), run
        refused = store.servers.get_by_uuid(uuid="pc-001")
        assert refused.state == RegistrationState.FAILED and not refused.has_node_key
        assert "ipmi_password" in refused.state_detail
        assert UNSAFE_PASSWORD not in refused.state_detail
