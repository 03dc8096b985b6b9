"""Hostile values: shell metacharacters and 200-character strings in uuid, desc, IPMI password.

They must never reach a shell, never break JSON, and be either rejected with a clear error
or stored exactly. The shell proof is a canary: every hostile password tries to create a
file (``$(touch C)``, ``;touch C``, ``> C``...), and after the emulator's power path (the
node's ipmitool call) and the agent's DBC-path probe ran with them, the file must not
exist. ``ipmitool`` is wrapped by a recorder (first in PATH / ``--ipmitool``) that writes
the argv it got, then runs the real ipmitool: the argv must be the node's blank-split
command line, metacharacters passed literally.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.secrets import Sealer, Secret, create_key_file
from agent.store import Store
from baremetal import signing
from baremetal.dbc.models import NewServer
from baremetal.errors import InvalidInput
from baremetal.ipmi.ipmitool import dbc_argv
from tests.support.agentconfig import write_agent_config
from tests.support.emulator import bm_post, register_servers, signed_fields, start_emulator
from tests.support.ports import free_port
from tests.support.procs import REPO_ROOT

REAL_IPMITOOL = shutil.which("ipmitool")
LONG = "x" * 200


def shell_tricks(canary: str) -> list[str]:
    """Passwords that create ``canary`` if any shell ever interprets them."""
    return [f"$(touch {canary})", f";touch {canary};", f"`touch {canary}`", f"|touch {canary}",
            f"&&touch {canary}", f"$(touch${{IFS}}{canary})", f">{canary}",
            f"x'$(touch {canary})'"]


def make_recorder(bin_dir: Path) -> Path:
    """An ``ipmitool`` that records its argv (one JSON list per line), then runs the real one."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "ipmitool"
    path.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "with open(os.environ['BM_TEST_IPMITOOL_RECORD'], 'a') as out:\n"
        "    out.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "real = os.environ.get('BM_TEST_REAL_IPMITOOL')\n"
        "if real:\n"
        "    os.execv(real, [real, *sys.argv[1:]])\n"
        "print('Error: no ipmitool here')\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def recorded(path: Path) -> list[list[str]]:
    """Every recorded argv but the version probe the emulator makes at start."""
    if not path.exists():
        return []
    return [argv for line in path.read_text().splitlines() if (argv := json.loads(line)) != ["-V"]]


def recorder_env(record: Path) -> dict[str, str]:
    env = {"BM_TEST_IPMITOOL_RECORD": str(record)}
    if REAL_IPMITOOL:
        env["BM_TEST_REAL_IPMITOOL"] = REAL_IPMITOOL
    return env


# --- the emulator's power path (the node's ipmitool call) ---------------------------------


def _renter() -> tuple[str, str]:
    pair = signing.new_node_keypair()
    return signing.public_key_to_ss58(bytes.fromhex(pair.node_id)), pair.private_key


def _power_status(emu: Any, node_id: str, wallet: str, key: str) -> dict[str, Any]:
    nonce = signing.make_nonce()
    reply = bm_post(emu.client_url, "/bare_metal/power", {
        "peer_nodes_list": [node_id], "additional": {"command": "status"},
        "wallet": wallet, "nonce": nonce, "sign": signing.sign(key, nonce)})
    return reply.json()


def test_emulator_power_path_never_runs_a_shell(spawn, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    record = tmp_path / "argv.jsonl"
    recorder = make_recorder(tmp_path / "bin")
    emu = start_emulator(spawn, tmp_path, deeplink=False, env=recorder_env(record),
                         extra_args=["--ipmitool", str(recorder), "--ipmitool-timeout-s", "2"])
    items = [{"uuid": f"h{i}", "ip": "127.0.0.9", "os": "win10", "desc": f"$(touch {canary})",
              "ipmi_hostname": "127.0.0.1", "ipmi_port": free_port(), "ipmi_username": "admin",
              "ipmi_password": password} for i, password in enumerate(shell_tricks(canary))]
    items.append({**items[0], "uuid": "hh", "ipmi_hostname": f"127.0.0.1;touch {canary}",
                  "ipmi_username": f"admin&touch {canary}", "ipmi_password": "pw"})
    ids = register_servers(emu, items)
    wallet, key = _renter()
    emu.set_rentals({"machines": {nid: {"status": "rented", "renter": wallet}
                                  for nid in ids.values()}})
    with ThreadPoolExecutor(len(ids)) as pool:
        answers = list(pool.map(lambda nid: _power_status(emu, nid, wallet, key), ids.values()))
    assert all(isinstance(a["errcode"], int) for a in answers)  # each one a JSON answer
    assert not canary.exists()
    expected = sorted(dbc_argv(i["ipmi_hostname"], i["ipmi_port"], i["ipmi_username"],
                               i["ipmi_password"], "power", "status")[1:] for i in items)
    assert sorted(recorded(record)) == expected
    for item in items[:-1]:
        assert item["ipmi_password"] not in emu.log()


# --- the agent's DBC-path probe -------------------------------------------------------


def _agent_dir(work: Path, servers: list[tuple[str, Any]]) -> Path:
    """Config, key and a store holding ``servers`` (uuid, fake BMC) with their passwords."""
    pair = signing.new_node_keypair()
    (work / "node.dat").write_text(
        f"node_id={pair.node_id}\nnode_private_key={pair.private_key}\n")
    config = write_agent_config(work, {
        "node.url": f"http://127.0.0.1:{free_port()}", "node.node_dat": "node.dat",
        "store.path": "agent.db", "secrets.key_file": "secrets.key",
        "check.dbc_path_probe": True, "check.deadline_s": 1.5, "check.interval_s": 30.0})
    create_key_file(work / "secrets.key")
    # Straight into the store: the importer and the API refuse these passwords (they are
    # not shell-safe); a store from elsewhere (an old version, a restored backup) may not.
    with Store.open(work / "agent.db", sealer=Sealer.from_key_file(work / "secrets.key")) as s:
        for uuid, bmc in servers:
            s.servers.add(uuid=uuid, ip="10.0.0.1", ipmi_host=bmc.host, ipmi_port=bmc.port,
                          ipmi_user=bmc.user, ipmi_password=Secret(bmc.password))
    return config


def test_agent_dbc_path_probe_never_runs_a_shell(fake_bmc, tmp_path: Path) -> None:
    work = tmp_path / "cwd"  # the agent's working directory: where "C" would appear
    work.mkdir()
    record = tmp_path / "argv.jsonl"
    bin_dir = tmp_path / "bin"
    make_recorder(bin_dir)
    bmcs = [fake_bmc(password=password, initial_power="on")
            for password in shell_tricks("C")]  # all within IPMI's 20 bytes
    safe = fake_bmc(password="safe-pw.1", initial_power="on")
    config = _agent_dir(work, [(f"pc-{i}", bmc) for i, bmc in enumerate([*bmcs, safe])])
    env = {k: v for k, v in os.environ.items() if not k.startswith("BM_AGENT_")}
    env.update(PYTHONPATH=str(REPO_ROOT), LANG="C.UTF-8",
               PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", **recorder_env(record))
    done = subprocess.run([sys.executable, "-m", "agent", "--config", str(config), "--json",
                           "check", "--once"], capture_output=True, text=True, timeout=120,
                          env=env, cwd=work, check=False)
    assert done.returncode == 0, done.stderr
    results = {r["uuid"]: r for r in json.loads(done.stdout)}
    assert {r["power"] for r in results.values()} == {"on"}  # IPMI 2.0 logged in: probe ran
    assert not (work / "C").exists() and not (REPO_ROOT / "C").exists()
    # Since the café LAN review (issue 10) the probe refuses a stored value that is not one
    # plain shell word: the node would not run the intended command with it. Only the
    # safe server's probe runs, with the node's blank-split argv.
    assert sorted(recorded(record)) == [
        dbc_argv(safe.host, safe.port, safe.user, safe.password, "power", "status")[1:]]
    assert all(results[f"pc-{i}"]["dbc_path_ok"] is False for i in range(len(bmcs)))
    with Store.open(work / "agent.db", sealer=Sealer.from_key_file(work / "secrets.key")) as s:
        for i in range(len(bmcs)):
            server = s.servers.get_by_uuid(uuid=f"pc-{i}")
            message = s.checks.history(server_id=server.id, limit=1)[0].dbc_path_message
            assert "not run" in message and "ipmi_password" in message, message
    for bmc in bmcs:
        if len(bmc.password) >= 8:
            assert bmc.password not in done.stdout + done.stderr


# --- through the agent's API: rejected with a clear error, or stored exactly ----------------


HOSTILE_ROWS = [
    ("uuid", "$(touch C)", "bad_uuid"), ("uuid", "pc;touch C", "bad_uuid"),
    ("uuid", LONG, "bad_uuid"), ("ipmi_password", ";touch C", "unsafe_characters"),
    ("ipmi_password", "$(touch C)", "unsafe_characters"), ("ipmi_password", LONG, "too_long"),
    ("desc", 'say "hi"', "unsafe_characters"), ("desc", "back\\slash", "unsafe_characters"),
    ("desc", "x" * 300, "too_long"),
]
# (the importer trims surrounding blanks of every cell, on purpose: none here)
SAFE_DESCS = ["$(touch C); rm -rf / `id` | & > < * ? ' ~ # !", "d" * 200, " ".join(["三楼 A 区"] * 20)]


def _row(**fields: Any) -> dict[str, Any]:
    row = {"uuid": "pc-1", "ip": "10.0.0.1", "ipmi_hostname": "10.1.0.1",
           "ipmi_username": "admin", "ipmi_password": "pw-123"}
    row.update(fields)
    return row


def test_api_rejects_hostile_values_clearly_and_stores_nothing(agent_proc) -> None:
    agent = agent_proc()
    for field, value, code in HOSTILE_ROWS:
        answer = agent.post("/api/v1/servers", json=_row(**{field: value}))
        assert answer.status_code == 422, (field, answer.text)
        body = answer.json()  # always a JSON document
        assert field in answer.text and code in answer.text, answer.text
        if field == "ipmi_password":
            assert value not in answer.text
        assert isinstance(body, dict)
    assert agent.get("/api/v1/servers").json()["count"] == 0


def test_api_stores_metacharacters_and_long_text_exactly_and_the_node_lists_them(
        agent_proc, emulator) -> None:
    agent = agent_proc(emulator)
    for index, desc in enumerate(SAFE_DESCS):
        answer = agent.post("/api/v1/servers", json=_row(uuid=f"pc-{index}", desc=desc))
        assert answer.status_code == 201, answer.text
        assert agent.server(f"pc-{index}")["desc"] == desc
    assert agent.post("/api/v1/register").status_code == 200
    agent.wait_for(lambda: all(agent.server(f"pc-{i}")["state"] == "registered"
                               for i in range(len(SAFE_DESCS))), what="registration")
    listed = bm_post(emulator.url, "/bare_metal", {
        "peer_nodes_list": [], "additional": {}, **signed_fields(emulator.manager_key)})
    by_uuid = {s["uuid"]: s for s in listed.json()["message"]["bare_metal_nodes"]}
    assert [by_uuid[f"pc-{i}"]["description"] for i in range(len(SAFE_DESCS))] == SAFE_DESCS


def test_client_refuses_json_breaking_text_before_sending() -> None:
    base = {"uuid": "pc-1", "ip": "10.0.0.1", "ipmi_hostname": "h", "ipmi_username": "u",
            "ipmi_password": "p"}
    for name in ("desc", "ipmi_password", "os", "ipmi_username"):
        for bad in ('a"b', "a\\b", "a\nb"):
            with pytest.raises(InvalidInput) as info:
                NewServer(**{**base, name: bad})
            assert bad not in str(info.value)
    with pytest.raises(InvalidInput):
        NewServer(uuid="$(touch C)", ip="10.0.0.1", ipmi_hostname="h", ipmi_username="u",
                  ipmi_password="p")


# --- the store itself: whatever it is given comes back byte for byte --------------------

_any_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=200)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("hostile-store")
    create_key_file(path / "secrets.key")
    with Store.open(path / "agent.db", sealer=Sealer.from_key_file(path / "secrets.key")) as s:
        yield s


@settings(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(uuid=st.one_of(_any_text.filter(bool), st.just(LONG), st.just("$(touch C)")),
       desc=st.one_of(_any_text, st.just(SAFE_DESCS[0])),
       password=st.one_of(_any_text, st.just(LONG), st.sampled_from(shell_tricks("C"))),
       labels=st.dictionaries(_any_text, _any_text, max_size=3))
def test_store_round_trips_any_text_exactly(store: Store, uuid: str, desc: str, password: str,
                                            labels: dict[str, str]) -> None:
    existing = {s.uuid: s for s in store.servers.find()}
    if uuid in existing:
        store.servers.remove(server_id=existing[uuid].id)
    added = store.servers.add(uuid=uuid, ip="10.0.0.1", ipmi_host="h", ipmi_user="u",
                              ipmi_password=Secret(password), desc=desc, labels=labels)
    got = store.servers.get_by_uuid(uuid=uuid)
    assert (got.uuid, got.desc, dict(got.labels)) == (uuid, desc, labels)
    assert store.servers.credentials(server_id=added.id).ipmi_password.reveal() == password
    sealed_row = json.dumps([got.uuid, got.desc])  # and it is still plain JSON material
    assert json.loads(sealed_row) == [uuid, desc]
