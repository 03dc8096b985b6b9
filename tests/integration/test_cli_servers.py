"""``bm-agent servers import|list|show|rm``, ``register`` and ``events`` as real subprocesses,
against the node emulator and ipmi_sim BMCs on loopback."""

from __future__ import annotations

import pytest

from baremetal.dbc.auth import NodeKeyAuth
from baremetal.dbc.client import Client
from tests.integration.cli_env import ADMIN, AgentDir, bmc_row, init_agent

pytestmark = pytest.mark.ipmisim


@pytest.fixture
def cafe(emulator, ipmi_sim, tmp_path) -> tuple[AgentDir, list]:
    bmcs = [ipmi_sim(initial_power="on"), ipmi_sim(initial_power="on")]
    return init_agent(tmp_path / "agent", emulator), bmcs


def _node_uuids(agent: AgentDir) -> set[str]:
    with Client(agent.emulator.url, timeout_s=10) as client:
        return {s.uuid for s in client.list_bare_metal(NodeKeyAuth(agent.emulator.manager_key))}


def test_import_reports_every_row_and_partial_exit(cafe) -> None:
    agent, bmcs = cafe
    csv = agent.write_csv("servers.csv", [
        bmc_row("PC-1", "127.0.0.11", bmcs[0]),
        bmc_row("PC-2", "127.0.0.12", bmcs[1]),
        bmc_row("PC-3", "not-an-ip", bmcs[1]),
        bmc_row("PC-4", "127.0.0.14", bmcs[1], port=70000),
    ])
    first = agent.cli("servers", "import", str(csv))
    assert first.code == 5, first.err  # partial: good rows imported, bad rows reported
    assert "line 4 (PC-3)" in first.out and "bad ip" in first.out
    assert "line 5 (PC-4)" in first.out and "bad IPMI port" in first.out
    assert "2 added, 0 changed, 0 unchanged, 2 rejected" in first.out
    again = agent.cli("--json", "servers", "import", str(csv)).json()
    assert again["created"] == [] and sorted(again["unchanged"]) == ["PC-1", "PC-2"]
    assert [(e["line"], e["field"], e["code"]) for e in again["errors"]] == [
        (4, "ip", "bad_ip"), (5, "ipmi_port", "bad_port")]
    zh = agent.cli("servers", "import", str(csv), lang="zh_CN")
    assert "新增 0 台，修改 0 台，未变 2 台，拒绝 2 行" in zh.out
    only_bad = agent.write_csv("bad.csv", [bmc_row("PC-9", "999.1.1.1", bmcs[0])])
    assert agent.cli("servers", "import", str(only_bad)).code == 2
    missing = agent.cli("servers", "import", str(agent.path / "nope.csv"))
    assert missing.code == 2 and "cannot read" in missing.err
    assert {s["uuid"] for s in agent.cli("--json", "servers", "list").json()} == {"PC-1", "PC-2"}


def test_register_list_show_rm_mirror_the_node(cafe) -> None:
    agent, bmcs = cafe
    csv = agent.write_csv("servers.csv", [bmc_row("PC-1", "127.0.0.11", bmcs[0]),
                                           bmc_row("PC-2", "127.0.0.12", bmcs[1],
                                                   labels="zone=vip;row=B")])
    assert agent.cli("servers", "import", str(csv)).code == 0
    result = agent.cli("--json", "register")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["queued"] == 2 and doc["done"] == 2 and doc["deferred"] == 0
    node_ids = {s["uuid"]: s["node_id"] for s in doc["servers"]}
    assert all(len(n) == 64 for n in node_ids.values())
    assert _node_uuids(agent) == {"PC-1", "PC-2"}
    assert agent.cli("--json", "register").json()["queued"] == 0  # nothing registered twice

    listed = agent.cli("--json", "servers", "list", "--label", "zone=vip").json()
    assert [(s["uuid"], s["state"], s["labels"]) for s in listed] == [
        ("PC-2", "registered", {"zone": "vip", "row": "B"})]
    assert all("ipmi_password" not in s for s in listed)
    table = agent.cli("servers", "list", lang="zh_CN").out
    assert "已登记" in table and "PC-1 电竞主机" in table
    shown = agent.cli("--json", "servers", "show", node_ids["PC-2"]).json()  # by node_id
    assert shown["uuid"] == "PC-2" and shown["events"]
    assert agent.cli("servers", "show", "PC-404").code == 3

    removed = agent.cli("servers", "rm", "PC-1")
    assert removed.code == 0, removed.err
    assert _node_uuids(agent) == {"PC-2"}
    assert [s["uuid"] for s in agent.cli("--json", "servers", "list").json()] == ["PC-2"]
    audit = agent.cli("--json", "events", "--kind", "audit", "--limit", "50").json()["events"]
    assert {"import", "register", "delete"} <= {e["action"] for e in audit}


def test_register_while_the_node_is_down_waits_in_the_outbox(cafe) -> None:
    agent, bmcs = cafe
    csv = agent.write_csv("servers.csv", [bmc_row("PC-1", "127.0.0.11", bmcs[0])])
    assert agent.cli("servers", "import", str(csv)).code == 0
    agent.emulator.proc.stop()
    down = agent.cli("register")
    assert down.code == 6, down.out + down.err
    assert "wait for the DBC node" in down.err
    zh = agent.cli("register", lang="zh_CN")
    assert zh.code == 6 and "正在等待 DBC 节点" in zh.err


def test_events_paging_and_filters(cafe) -> None:
    agent, bmcs = cafe
    csv = agent.write_csv("servers.csv", [bmc_row("PC-1", "127.0.0.11", bmcs[0])])
    for _ in range(3):
        agent.cli("servers", "import", str(csv))
    page = agent.cli("--json", "events", "--limit", "2", "--action", "import").json()
    assert len(page["events"]) == 2 and page["next_before_id"] is not None
    older = agent.cli("--json", "events", "--limit", "2", "--action", "import",
                      "--before", str(page["next_before_id"])).json()
    assert len(older["events"]) == 1
    # issue 13 item 7: the staff account init mapped this OS login to, not cli:<login>
    assert all(e["actor"] == ADMIN for e in page["events"] + older["events"])
    text = agent.cli("events", "--server", "PC-1").out
    assert "PC-1" not in text or "Time" in text  # a table for people, even when empty
