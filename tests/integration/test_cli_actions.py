"""``bm-agent check --once``, ``power`` and ``bootdev`` as subprocesses against ipmi_sim BMCs,
with ``ipmitool`` as the independent judge of what happened."""

from __future__ import annotations

import pytest

from tests.integration.cli_env import ADMIN, AgentDir, bmc_row, init_agent
from tests.support.bmc import run_ipmitool
from tests.support.ports import free_port

pytestmark = pytest.mark.ipmisim


class _Dead:
    host, user, password = "127.0.0.1", "admin", "nobody12"

    def __init__(self) -> None:
        self.port = free_port()


@pytest.fixture
def cafe(emulator, ipmi_sim, tmp_path) -> tuple[AgentDir, dict]:
    bmcs = {"ok": ipmi_sim(initial_power="on"), "vip": ipmi_sim(initial_power="off"),
            "no15": ipmi_sim(initial_power="on", ipmi15=False), "dead": _Dead()}
    agent = init_agent(tmp_path / "agent", emulator)
    csv = agent.write_csv("servers.csv", [
        bmc_row("PC-OK", "127.0.0.11", bmcs["ok"]),
        bmc_row("PC-VIP", "127.0.0.12", bmcs["vip"], labels="zone=vip"),
        bmc_row("PC-NO15", "127.0.0.13", bmcs["no15"]),
        bmc_row("PC-DEAD", "127.0.0.14", bmcs["dead"]),
        bmc_row("PC-BADPW", "127.0.0.15", bmcs["ok"], password="wrongpass1"),
    ])
    assert agent.cli("servers", "import", str(csv)).code == 0
    assert agent.cli("register").code == 0
    return agent, bmcs


@pytest.mark.slow
def test_check_once_prints_one_object_per_server_with_real_verdicts(cafe) -> None:
    agent, _bmcs = cafe
    result = agent.cli("--json", "check", "--once")
    assert result.code == 0, result.err
    checks = {c["uuid"]: c for c in result.json()}
    assert set(checks) == {"PC-OK", "PC-VIP", "PC-NO15", "PC-DEAD", "PC-BADPW"}
    for check in checks.values():
        assert {"uuid", "node_id", "verdict", "power", "bootdev", "detail"} <= set(check)
        assert len(check["node_id"]) == 64
    assert checks["PC-OK"]["verdict"] == "ok" and checks["PC-OK"]["power"] == "on"
    assert checks["PC-NO15"]["verdict"] == "dbc_path_broken"
    assert checks["PC-DEAD"]["verdict"] == "unreachable" and checks["PC-DEAD"]["power"] is None
    assert checks["PC-BADPW"]["verdict"] == "auth_failed"
    assert "wrongpass1" not in result.out + result.err
    table = agent.cli("check", "--once", lang="zh_CN")
    assert "DBC 通路故障" in table.out and "无法连接" in table.out and "已检查 5 台服务器" in table.out


@pytest.mark.slow
def test_power_and_bootdev_are_confirmed_by_ipmitool(cafe) -> None:
    agent, bmcs = cafe
    off = agent.cli("--json", "power", "off", "PC-OK")
    assert off.code == 0, off.err
    [result] = off.json()["results"]
    assert result["verified"] and result["reading"]["power"] == "off"
    assert "Chassis Power is off" in run_ipmitool(bmcs["ok"], "chassis", "power", "status").stdout

    on = agent.cli("power", "on", "--label", "zone=vip", "--user", ADMIN)
    assert on.code == 0, on.err
    assert "Chassis Power is on" in run_ipmitool(bmcs["vip"], "chassis", "power", "status").stdout

    boot = agent.cli("--json", "bootdev", "pxe", "PC-OK")
    assert boot.code == 0, boot.err
    param = run_ipmitool(bmcs["ok"], "chassis", "bootparam", "get", "5").stdout
    assert "Boot Device Selector : Force PXE" in param

    audit = agent.cli("--json", "events", "--kind", "audit", "--limit", "50").json()["events"]
    actors = {(e["action"], e["server_uuid"]): e["actor"] for e in audit}
    # init mapped this OS login to its admin ([auth] os_users): issue 13 item 7, not cli:<login>
    assert actors[("power_off", "PC-OK")] == ADMIN
    assert actors[("power_on", "PC-VIP")] == ADMIN
    assert actors[("bootdev", "PC-OK")] == ADMIN


def test_action_exit_codes(cafe) -> None:
    agent, _bmcs = cafe
    dead = agent.cli("power", "on", "PC-DEAD")
    assert dead.code == 6, dead.out + dead.err
    partial = agent.cli("--json", "power", "on", "PC-DEAD", "PC-OK", "--yes")  # two seats
    assert partial.code == 5
    codes = {r["uuid"]: r["code"] for r in partial.json()["results"]}
    assert codes["PC-OK"] == "verified" and codes["PC-DEAD"].startswith("ipmi_")
    assert agent.cli("power", "on").code == 2
    assert agent.cli("power", "on", "PC-NOPE").code == 3
    assert agent.cli("power", "on", "--label", "zone=nowhere").code == 3
    assert agent.cli("bootdev", "floppy", "PC-OK").code == 2
    assert agent.cli("power", "on", "PC-OK", "--user", "ghost").code == 3
    zh = agent.cli("power", "on", "PC-NOPE", lang="zh_CN")
    assert zh.err.strip() == "错误：未找到服务器 PC-NOPE"  # issue 13 item 9: no English type
    en = agent.cli("power", "on", "PC-NOPE", lang=None, env={"LANG": "en_US.UTF-8"})
    assert en.err.strip() == "ServerNotFound: server PC-NOPE not found"
