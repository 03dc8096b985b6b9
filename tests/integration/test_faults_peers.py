"""Faulty peers around the running service: a BMC that dies mid-pass, a node that is down,
a client node slower than any deadline, a client node answering invalid JSON.

Each runs the real ``bm-agent serve`` (``agent_proc``) and watches it from outside: the
API, ``/metrics`` and the node. The in-process rules (a dead or frozen BMC costs one
deadline, a refused password is auth_failed, the outbox backs off) are pinned in
test_monitor_deadlines.py, test_monitor_verdicts.py and test_registry_outbox.py; here the
point is that the whole service lives through them and heals when the peer does.
"""

from __future__ import annotations

import re
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_client_peer import Answer, ScriptedPeer
from tests.support.agentproc import AgentProc
from tests.support.emulator import start_emulator
from tests.support.ports import free_port

FAST = {"check.interval_s": 1.0, "check.deadline_s": 0.5, "check.jitter_s": 0.05}


def metric(agent: AgentProc, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    text = agent.get("/metrics", user="view").text
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(\{{(.*)\}})? (\S+)", line)
        if match and all(f'{k}="{v}"' in (match.group(2) or "") for k, v in labels.items()):
            total += float(match.group(3))
    return total


def verdict(agent: AgentProc, uuid: str) -> str | None:
    found = agent.server(uuid)["verdict"]
    return found["verdict"] if found else None


def add(agent: AgentProc, uuid: str, bmc: Any, **extra: Any) -> None:
    row = {"uuid": uuid, "ip": "10.0.0.1", "ipmi_hostname": bmc.host, "ipmi_port": bmc.port,
           "ipmi_username": bmc.user, "ipmi_password": bmc.password, **extra}
    answer = agent.post("/api/v1/servers", json=row)
    assert answer.status_code == 201, answer.text


# --- a BMC dies in the middle of a pass, then is replaced --------------------------------


@pytest.mark.slow
def test_bmc_killed_mid_pass_is_unreachable_others_unaffected_and_replacement_heals(
        agent_proc, fake_bmc) -> None:
    healthy = [fake_bmc(initial_power="on") for _ in range(2)]
    doomed = fake_bmc(initial_power="on", slow=0.3)  # a call is in flight most of the time
    agent = agent_proc(config=FAST)
    for index, bmc in enumerate([*healthy, doomed]):
        add(agent, f"pc-{index}", bmc)
    agent.wait_for(lambda: all(verdict(agent, f"pc-{i}") == "ok" for i in range(3)),
                   what="three ok verdicts")
    passes = metric(agent, "bm_agent_check_passes_total")
    doomed.proc.kill9()
    agent.wait_for(lambda: verdict(agent, "pc-2") == "unreachable", timeout=10,
                   what="the dead BMC to read unreachable")
    assert verdict(agent, "pc-0") == verdict(agent, "pc-1") == "ok"
    assert agent.server("pc-2")["verdict"]["reasons"][0] in ("ipmi_timeout", "ipmi_unreachable")
    assert metric(agent, "bm_agent_check_passes_total") > passes
    assert metric(agent, "bm_agent_check_pass_last_duration_seconds") < 2 * 0.5 + 0.5
    replacement = fake_bmc(initial_power="on")
    with agent.session("oper") as session:
        answer = session.patch(f"{agent.url}/api/v1/servers/pc-2",
                               json={"ipmi_port": replacement.port}, timeout=30)
    assert answer.status_code == 200, answer.text
    agent.wait_for(lambda: verdict(agent, "pc-2") == "ok", timeout=10, what="recovery")
    assert agent.proc.alive()


# --- the bare-metal node is down when the agent starts, then comes back ----------------


@pytest.mark.slow
def test_node_down_at_start_then_up_registers_every_server_once(agent_proc, spawn, tmp_path
                                                                 ) -> None:
    port = free_port()
    data_dir = tmp_path / "node-data"
    (tmp_path / "e1").mkdir()
    (tmp_path / "e2").mkdir()
    listen = ["--listen", f"127.0.0.1:{port}"]  # the same port after the restart
    first = start_emulator(spawn, tmp_path / "e1", client=False, deeplink=False,
                           data_dir=data_dir, extra_args=listen)
    first.proc.stop()  # it made its identity (dat/node.dat); now the node is down
    agent = agent_proc(node_url=f"http://127.0.0.1:{port}",
                       node_dat=data_dir / "dat" / "node.dat", config=FAST)
    rows = "\n".join(["uuid,ip,ipmi_hostname,ipmi_username,ipmi_password"] + [
        f"pc-{i},10.0.0.{i + 1},127.0.0.1,admin,pw-{i}" for i in range(10)]) + "\n"
    answer = agent.post("/api/v1/servers/import", data=rows.encode(),
                        params={"filename": "s.csv", "register": "true"})
    assert answer.status_code == 200, answer.text
    time.sleep(1.5)
    assert agent.get("/healthz").status_code == 200
    assert agent.get("/api/v1/outbox").json()["counts"]["pending"] > 0
    assert {s["state"] for s in agent.get("/api/v1/servers").json()["items"]} == {"pending"}
    node = start_emulator(spawn, tmp_path / "e2", client=False, deeplink=False,
                          data_dir=data_dir, extra_args=listen)
    agent.wait_for(lambda: {s["state"] for s in agent.get("/api/v1/servers").json()["items"]}
                   == {"registered"}, timeout=30, what="registration after the node came up")
    from tests.integration.registry_driver import node_servers

    listed = node_servers(f"http://127.0.0.1:{port}", node.manager_key,
                          [f"pc-{i}" for i in range(10)])
    assert sorted(s.uuid for s in listed) == sorted(f"pc-{i}" for i in range(10))


# --- the client node: slower than any deadline, or answering invalid JSON ----------------


def _ipmitool_stub(tmp_path: Path) -> Path:
    stub = tmp_path / "ipmitool-stub"
    stub.write_text(f"#!{sys.executable}\nimport sys\n"
                    "print('ipmitool version 1.8.19' if sys.argv[1:] == ['-V'] "
                    "else 'Chassis Power is on')\n")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    return stub


def _dbc_status(agent: AgentProc) -> str | None:
    return (agent.server("pc-1")["reading"] or {}).get("dbc_power_status")


def _registered(agent: AgentProc, emulator: Any, bmc: Any) -> str:
    add(agent, "pc-1", bmc)
    assert agent.post("/api/v1/register").status_code == 200
    agent.wait_for(lambda: agent.server("pc-1")["state"] == "registered", what="registration")
    return agent.server("pc-1")["node_id"]


@pytest.mark.slow
def test_client_node_slower_than_the_deadline_costs_one_deadline_and_heals(
        agent_proc, fake_bmc, spawn, tmp_path) -> None:
    # The node's own relay timer is 30 s (docs/protocol.md §2.6); here 5 s, longer than any
    # deadline we use.
    emulator = start_emulator(spawn, tmp_path, deeplink=False,
                              env={"BM_EMULATOR_RELAY_TIMEOUT_S": "5"},
                              extra_args=["--ipmitool", str(_ipmitool_stub(tmp_path))])
    bmc = fake_bmc(initial_power="on")
    agent = agent_proc(emulator, config={**FAST, "check.interval_s": 2.0,
                                         "node.client_url": emulator.client_url})
    node_id = _registered(agent, emulator, bmc)
    agent.wait_for(lambda: _dbc_status(agent) == "Chassis Power is on",
                   what="DBC's power status through the client node")
    emulator.set_rentals({"machines": {mid: {"offline": True}
                                       for mid in (node_id, emulator.manager_id)}})
    agent.wait_for(lambda: metric(agent, "bm_agent_check_errors_total", source="client_node")
                   >= 2, timeout=15, what="client node timeouts")
    assert verdict(agent, "pc-1") == "ok"  # IPMI still answers: DBC's view is just missing
    assert _dbc_status(agent) is None
    assert metric(agent, "bm_agent_check_pass_last_duration_seconds") < 3 * 0.5 + 0.5
    assert metric(agent, "bm_agent_check_pass_overruns_total") == 0
    emulator.set_rentals({"machines": {}})
    agent.wait_for(lambda: _dbc_status(agent) == "Chassis Power is on", timeout=15,
                   what="the client node to heal")


def test_client_node_answering_invalid_json_is_noted_not_fatal(agent_proc, emulator,
                                                               fake_bmc) -> None:
    peer = ScriptedPeer()
    try:
        bmc = fake_bmc(initial_power="on")
        agent = agent_proc(emulator, config={**FAST, "node.client_url": peer.url})
        node_id = _registered(agent, emulator, bmc)
        # What the real node sends when a stored description holds a quote (docs/protocol.md §2.5).
        peer.default = Answer(body=(
            '{"errcode":0, "message":{"bare_metal_nodes":[{"node_id":"' + node_id + '",'
            '"uuid":"pc-1","description":"say "hi"","power_status":"Chassis Power is on"}]}}'
            '\r\n').encode())
        agent.wait_for(lambda: metric(agent, "bm_agent_check_errors_total",
                                      source="client_node", kind="DecodeError") >= 2,
                       timeout=15, what="decode errors from the client node")
        assert verdict(agent, "pc-1") == "ok" and agent.proc.alive()
        assert agent.get("/healthz").status_code == 200
        assert bmc.password not in agent.log()
    finally:
        peer.close()
