"""Secrets are write-only: no API answer and no agent log line ever carries one.

A café with known secrets: IPMI passwords (right, wrong, changed later), the server keys the
agent fetched from the node when it registered the servers, the node's manager key, staff
passwords, the café hook token, and DeepLink codes rotated through the hook relay. The agent
logs at DEBUG. Then every GET endpoint of the OpenAPI schema (for every server) and the
dashboard's JSON reads are called, and every answer and the whole agent log are searched
for each secret.
"""

import re
import time

import pytest
import requests

from baremetal.dbc.client import Client, NodeKeyAuth
from baremetal.emulator.deeplink_client import SimulatedDeepLink
from boot_hooks.relay import DEEPLINK_PATH, SeatSigner, encode_body
from tests.support.agentproc import USERS, SourceAddressAdapter
from tests.support.bmc import start_fake_bmc
from tests.support.emulator import start_emulator
from tests.support.ports import free_port
from tests.support.seats import new_seat_seed, provision_seat

PASSWORDS = {"pc-s1": "Sk3yOne9x", "pc-s2": "Sk3yTwo7q", "pc-s3": "Sk3yThree5"}
NEW_PASSWORD = "Sk3yNew4z"
CODES = ("Dl0codeAa11", "Dl0codeBb22")
SEAT_SEED = new_seat_seed("pc-s1")


@pytest.fixture(scope="module")
def cafe(module_agent_proc, module_spawn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secrets")
    emu = start_emulator(module_spawn, tmp)
    bmc = start_fake_bmc(tmp / "bmc", password=PASSWORDS["pc-s1"])
    agent = module_agent_proc(emulator=emu, config={"log.level": "DEBUG"})
    link = None
    try:
        link = _exercise(agent, emu, bmc)
        yield {"agent": agent, "emu": emu, "secrets": _secrets(agent, emu)}
    finally:
        if link is not None:
            link.stop()
        bmc.stop()


def _exercise(agent, emu, bmc):
    """Import, register, check, act, change a password, rotate DeepLink codes."""
    rows = ["uuid,ip,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port,labels",
            f"pc-s1,127.0.0.81,127.0.0.1,{bmc.user},{PASSWORDS['pc-s1']},{bmc.port},zone=a",
            f"pc-s2,127.0.0.82,127.0.0.1,{bmc.user},{PASSWORDS['pc-s2']},{bmc.port},zone=a",
            f"pc-s3,127.0.0.83,127.0.0.1,admin,{PASSWORDS['pc-s3']},{free_port()},zone=b"]
    answer = agent.post("/api/v1/servers/import", params={"register": "true"},
                        data=("\n".join(rows) + "\n").encode(),
                        headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200 and not answer.json()["errors"], answer.text
    agent.wait_for(lambda: all(s["has_node_key"] for s in agent.get(
        "/api/v1/servers").json()["items"]), 20, "server keys fetched")
    agent.wait_for(lambda: (agent.server("pc-s2")["verdict"] or {}).get("verdict")
                   == "auth_failed", 20, "a wrong-password verdict")
    assert agent.post("/api/v1/servers/pc-s1/power", user="oper",
                      json={"action": "on"}).status_code == 200
    with agent.session("oper") as sess:
        assert sess.patch(agent.url + "/api/v1/servers/pc-s3", timeout=10,
                          json={"ipmi_password": NEW_PASSWORD}).status_code == 200
    assert agent.post("/api/v1/users", json={"name": "extra", "password": "Extra-pass-93",
                                             "role": "viewer"}).status_code == 201
    assert requests.post(agent.url + "/api/v1/auth/login", timeout=10, json={
        "name": "view", "password": USERS["view"][1]}).status_code == 200
    assert requests.post(agent.url + "/api/v1/auth/login", timeout=10, json={
        "name": "view", "password": "Wrong-pass-11"}).status_code == 401
    return _rotate(agent, emu)


def _rotate(agent, emu):
    link = SimulatedDeepLink((emu.deeplink_host, emu.deeplink_port), device_id="818181818",
                             password="Dl0codeOld0", source_ip="127.0.0.81", reconnect=True)
    link.start()
    assert link.wait_until(lambda d: d.connected, 5)
    node_id = agent.server("pc-s1")["node_id"]
    # Since the seat-key fix the PC publishes with its own approved seat key (set-up).
    signer = SeatSigner(provision_seat(agent, "pc-s1", "127.0.0.81", SEAT_SEED))
    with requests.Session() as sess:
        sess.trust_env = False
        sess.mount("http://", SourceAddressAdapter("127.0.0.81"))
        for index, code in enumerate(CODES):
            body = encode_body({"node_id": node_id, "device_password": code})
            headers = signer.headers("POST", DEEPLINK_PATH, body, int(time.time()),
                                     f"{index:032x}")
            answer = sess.post(agent.url + DEEPLINK_PATH, data=body, timeout=30,
                               headers={**headers, "Content-Type": "application/json"})
            assert answer.status_code == 200, answer.text
    return link


def _secrets(agent, emu):
    with Client(emu.url, timeout_s=5) as client:
        manager = NodeKeyAuth(emu.manager_key)
        keys = [client.get_bare_metal(agent.server(uuid)["node_id"], manager).node_private_key
                for uuid in PASSWORDS]
    assert all(re.fullmatch(r"[0-9a-f]{64}", k) for k in keys)
    return {
        **{f"ipmi password {u}": pw for u, pw in PASSWORDS.items()},
        "changed ipmi password": NEW_PASSWORD,
        **{f"server key {i}": k for i, k in enumerate(keys)},
        "manager key": emu.manager_key,
        **{f"staff password {u}": pw for u, (_r, pw) in USERS.items()},
        "new user's password": "Extra-pass-93",
        "wrong login password": "Wrong-pass-11",
        "hook token": agent.hook_seed,
        "seat key": SEAT_SEED,
        **{f"deeplink code {i}": c for i, c in enumerate(CODES)},
    }


def get_paths(agent):
    """Every GET path of the API schema, with {uuid} filled for every server."""
    spec = requests.get(agent.url + "/openapi.json", timeout=10).json()
    uuids = [s["uuid"] for s in agent.get("/api/v1/servers").json()["items"]]
    paths = ["/openapi.json", "/docs", "/ui/api/grid", "/ui/api/events"]
    for path, methods in spec["paths"].items():
        if "get" not in methods or path == "/api/v1/hook/whoami":
            continue
        if "{uuid}" in path:
            paths += [path.replace("{uuid}", u) for u in uuids]
            paths.append(f"/ui/api/servers/{uuids[0]}") if path.endswith("{uuid}") else None
        else:
            paths.append(path)
    return sorted(set(paths))


def test_every_get_answer_is_free_of_secrets(cafe):
    agent, secrets = cafe["agent"], cafe["secrets"]
    paths = get_paths(agent)
    assert len(paths) >= 15, paths
    for user in ("admin", "view"):
        for path in paths:
            for query in ({}, {"history": 1440, "limit": 200}):
                answer = agent.get(path, user=user, params=query)
                allowed = (200,) if user == "admin" else (200, 403)  # viewers: no /users
                assert answer.status_code in allowed, (path, answer.status_code)
                for name, secret in secrets.items():
                    assert secret not in answer.text, f"{name} leaked in GET {path}"


def test_the_agent_log_is_free_of_secrets(cafe):
    log = cafe["agent"].log()
    assert "DEBUG" in log and len(log) > 1000  # it did log, verbosely
    for name, secret in cafe["secrets"].items():
        assert secret not in log, f"{name} leaked into the agent log"


def test_answers_of_writes_are_free_of_secrets(cafe):
    agent, secrets = cafe["agent"], cafe["secrets"]
    answers = [
        agent.post("/api/v1/servers/import", data=(
            "uuid,ip,ipmi_hostname,ipmi_username,ipmi_password\n"
            f"pc-s9,127.0.0.89,127.0.0.1,admin,{PASSWORDS['pc-s1']}\n"
            f"pc-s8,bad-ip,127.0.0.1,admin,{PASSWORDS['pc-s2']}\n").encode()),
        agent.post("/api/v1/servers", user="oper", json={
            "uuid": "pc-s7", "ip": "127.0.0.87", "ipmi_hostname": "127.0.0.1",
            "ipmi_username": "admin", "ipmi_password": PASSWORDS["pc-s3"]}),
        agent.post("/api/v1/servers", user="oper", json={
            "uuid": "pc-s6", "ip": "127.0.0.86", "ipmi_hostname": "127.0.0.1",
            "ipmi_username": "admin", "ipmi_password": PASSWORDS["pc-s3"] + " $(reboot)"}),
        agent.post("/api/v1/users", json={"name": "x", "password": "short",
                                          "role": "viewer"}),
        requests.post(agent.url + "/api/v1/auth/login", timeout=10,
                      json={"name": "view", "password": USERS["view"][1], "extra": "field"}),
    ]
    for answer in answers:
        for name, secret in secrets.items():
            assert secret not in answer.text, f"{name} in {answer.request.url}"
    assert "short" not in answers[3].text
