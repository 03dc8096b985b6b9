"""One label grammar for import, the real ``bm-agent`` CLI and the real API (issue 11, item 3).

The same selectors go through ``GET /api/v1/servers?label=`` and ``bm-agent servers list
--label`` against one running agent whose inventory was imported with mixed spellings
(``Zone=VIP;Row=A``, ``zone=vip,row=B``, a bare word): every path selects the same servers.
Regression: ``bm-agent power off --label Zone=vip`` selected nothing (exit 3, case kept)
while the API's ``{"label": "Zone=vip"}`` selected the servers.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from tests.support.ports import free_port
from tests.support.procs import REPO_ROOT

# uuid -> labels exactly as typed in the imported CSV
INVENTORY = {
    "pc-1": "Zone=VIP;Row=A",
    "pc-2": "zone=vip,row=B",
    "pc-3": "zone=std; row=A",
    "pc-4": "gamer",
}
CASES = [
    ("Zone=VIP", {"pc-1", "pc-2"}),
    ("zone=vip", {"pc-1", "pc-2"}),
    ("zone=vip,row=A", {"pc-1"}),
    ("row=A;zone=vip", {"pc-1"}),
    (" ROW = a ; Zone = Vip ", {"pc-1"}),
    ("row=a", {"pc-1", "pc-3"}),
    ("gamer", {"pc-4"}),
    ("tag=GAMER", {"pc-4"}),
    ("zone=vip,floor=2", set()),  # a pair no server carries: nothing
    ("zone=gold", set()),
]


@pytest.fixture(scope="module")
def agent(module_agent_proc):
    proc = module_agent_proc(config={"actions.verify_deadline_s": 1.0})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["uuid", "ip", "os", "desc", "ipmi_hostname", "ipmi_username",
                     "ipmi_password", "ipmi_port", "labels"])
    dead_port = free_port()  # no BMC answers there: actions fail fast, selection still shows
    for index, (uuid, labels) in enumerate(INVENTORY.items()):
        writer.writerow([uuid, f"127.0.0.{81 + index}", "win10", "seat", "127.0.0.1", "admin",
                         "pw1", dead_port, labels])
    imported = proc.post("/api/v1/servers/import", data=out.getvalue().encode(),
                         headers={"Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    return proc


def _cli(agent, *args):
    return subprocess.run([sys.executable, "-m", "agent", "--config", str(agent.config_path),
                           "--json", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def test_import_stores_keys_lower_case_and_values_as_typed(agent):
    found = {s["uuid"]: s["labels"] for s in agent.get("/api/v1/servers").json()["items"]}
    assert found == {"pc-1": {"zone": "VIP", "row": "A"}, "pc-2": {"zone": "vip", "row": "B"},
                     "pc-3": {"zone": "std", "row": "A"}, "pc-4": {"tag": "gamer"}}


@pytest.mark.parametrize(("selector", "expected"), CASES)
def test_api_and_cli_select_the_same_servers(agent, selector, expected):
    answer = agent.get("/api/v1/servers", params={"label": selector})
    assert answer.status_code == 200, answer.text
    assert {s["uuid"] for s in answer.json()["items"]} == expected
    listed = _cli(agent, "servers", "list", "--label", selector)
    assert listed.returncode == 0, listed.stderr
    assert {s["uuid"] for s in json.loads(listed.stdout)} == expected


def test_bad_selector_is_refused_the_same_way(agent):
    answer = agent.get("/api/v1/servers", params={"label": "=vip"})
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "validation_error"
    listed = _cli(agent, "servers", "list", "--label", "=vip")
    assert listed.returncode == 2, listed.stderr


def test_power_by_label_selects_the_same_servers_from_cli_and_api(agent):
    """The discrepancy as found: ``--label Zone=vip`` selected nothing on the CLI."""
    cli = _cli(agent, "--user", "oper", "power", "off", "--label", "Zone=vip", "--yes")
    assert cli.returncode != 3, cli.stdout + cli.stderr  # 3: "label matches nothing"
    by_cli = {r["uuid"] for r in json.loads(cli.stdout)["results"]}
    api = agent.post("/api/v1/actions/power", user="oper",
                     json={"action": "off", "label": "Zone=vip"})
    assert api.status_code == 200, api.text
    by_api = {r["uuid"] for r in api.json()["results"]}
    assert by_cli == by_api == {"pc-1", "pc-2"}
