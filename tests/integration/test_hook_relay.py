"""The boot-hook relay end to end: the REAL bm-hook in agent mode, from 127.0.0.N, against
the real ``bm-agent serve`` + the emulator (bare-metal node + DeepLink LAN service) + a
simulated DeepLink connected from the same 127.0.0.N.

The agent holds the server key (registered through its own registry and outbox), the hook
holds the café token and its PC's seat key (enrolled and approved in the set-up: whoami and
deeplink must be signed by it since the seat-key fix). Refusals follow tests/contract/hook_relay.json: wrong source IP
(403 forbidden_source), bad token signature (403 bad_signature), a replayed request (409
replayed), a stale timestamp (401 stale_timestamp, with a Date header).
"""

import hashlib
import json
import re
import secrets
import time
from pathlib import Path

import pytest
import requests

from baremetal.emulator.deeplink_client import SimulatedDeepLink
from boot_hooks.errors import ExitCode
from boot_hooks.relay import DEEPLINK_PATH, WHOAMI_PATH, SeatSigner, TokenSigner, encode_body
from tests.support.agentproc import SourceAddressAdapter
from tests.support.emulator import start_emulator
from tests.support.hook_run import run_hook, write_hook_config, write_key
from tests.support.ports import free_port
from tests.support.seats import provision_seat

CONTRACT = json.loads((Path(__file__).parents[1] / "contract" / "hook_relay.json").read_text())
CODE = re.compile(r"[A-Za-z0-9]{6,16}")
DEVICE_ID = "721345678"
FIRST_CODE = "FirstBoot01"
PC_IP = "127.0.0.31"
UUID = "pc-31"
IPMI_PASSWORD = "relaypw31"
SEAT = {}  # the registered PC's approved seat key seed, set by the ``cafe`` fixture


def csv_for(*pcs):
    rows = ["uuid,ip,os,desc,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port"]
    rows += [f"{uuid},{ip},win10,seat,127.0.0.1,admin,{IPMI_PASSWORD},{free_port()}"
             for uuid, ip in pcs]
    return ("\n".join(rows) + "\n").encode()


def register(agent, *pcs):
    answer = agent.post("/api/v1/servers/import", params={"register": "true"},
                        data=csv_for(*pcs), headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200 and not answer.json()["errors"], answer.text

    def keys_fetched():
        servers = {s["uuid"]: s for s in agent.get("/api/v1/servers").json()["items"]}
        return all(servers[uuid]["has_node_key"] and servers[uuid]["node_id"]
                   for uuid, _ip in pcs) and servers
    servers = agent.wait_for(keys_fetched, 20, "registration and server keys")
    return {uuid: servers[uuid]["node_id"] for uuid, _ip in pcs}


@pytest.fixture(scope="module")
def cafe(module_agent_proc, module_spawn, tmp_path_factory):
    """One emulator, one agent, one registered PC with its DeepLink: shared by the module."""
    tmp = tmp_path_factory.mktemp("cafe")
    emu = start_emulator(module_spawn, tmp)
    agent = module_agent_proc(emulator=emu)
    node_ids = register(agent, (UUID, PC_IP))
    seat = provision_seat(agent, UUID, PC_IP)
    SEAT["seed"] = seat
    links = []

    def deeplink(source_ip, device_id=DEVICE_ID):
        link = SimulatedDeepLink((emu.deeplink_host, emu.deeplink_port), device_id=device_id,
                                 password=FIRST_CODE, source_ip=source_ip, reconnect=True)
        link.start()
        links.append(link)
        assert link.wait_until(lambda d: d.connected, 5)
        return link

    dl = deeplink(PC_IP)
    yield {"emu": emu, "agent": agent, "node_id": node_ids[UUID], "dl": dl, "tmp": tmp,
           "deeplink": deeplink, "seat": seat}
    for link in links:
        link.stop()


def hook_config(tmp_path, agent, *, source_ip=PC_IP, seed=None, name="hook", seat=None):
    """``seat``: the PC's seat key seed (None: none yet, the hook makes and enrolls one)."""
    agent_section = {"url": agent.url,
                     "token_key_file": write_key(tmp_path / f"{name}.token", seed or agent.hook_seed),
                     "seat_key_file": str(tmp_path / f"{name}.seat.key"),
                     "source_ip": source_ip}
    if seat:
        write_key(tmp_path / f"{name}.seat.key", seat)
    return write_hook_config(tmp_path / f"{name}.toml", {
        "agent": agent_section,
        "deadlines": {"node_s": 5, "deeplink_s": 10, "confirm_s": 8, "call_s": 2},
        "state": {"file": str(tmp_path / f"{name}.last-code")},
    })


def server_key(cafe):
    from baremetal.dbc.client import Client, NodeKeyAuth

    with Client(cafe["emu"].url, timeout_s=5) as client:
        listed = client.get_bare_metal(cafe["node_id"], NodeKeyAuth(cafe["emu"].manager_key))
    return listed.node_private_key


def test_hook_rotates_the_code_through_the_agent(cafe, spawn, tmp_path):
    agent, dl = cafe["agent"], cafe["dl"]
    before = dl.password
    run = run_hook(spawn, hook_config(tmp_path, agent, seat=cafe["seat"]))
    assert run.returncode == ExitCode.OK, run.log + agent.log()[-3000:]
    new_code = dl.password
    assert new_code != before and CODE.fullmatch(new_code)
    status = agent.get(f"/api/v1/servers/{UUID}/deeplink").json()
    assert status["freshness"] == "fresh"
    assert status["device_id"] == DEVICE_ID and status["last_result"] == "confirmed"
    assert status["last_rotated_at"] >= status["last_boot_seen_at"]
    events = agent.get("/api/v1/events", params={"kind": "deeplink", "server": UUID}).json()
    assert [e["result"] for e in events["items"]][:1] == ["confirmed"]
    # Neither side logs the code, the café token or the server key.
    secrets = [new_code, agent.hook_seed, server_key(cafe), cafe["emu"].manager_key,
               cafe["seat"]]
    for text in (run.log, agent.log()):
        for secret in secrets:
            assert secret not in text


def test_wrong_source_ip_is_refused(cafe, spawn, tmp_path):
    run = run_hook(spawn, hook_config(tmp_path, cafe["agent"], source_ip="127.0.0.32",
                                      seat=cafe["seat"]))
    assert run.returncode == ExitCode.AUTH_REFUSED, run.log
    assert "forbidden_source" in run.log


def test_bad_token_signature_is_refused(cafe, spawn, tmp_path):
    # A fresh PC (no seat key yet): its enrollment is what the café token signs.
    other = hashlib.sha256(b"another cafe's token").hexdigest()
    run = run_hook(spawn, hook_config(tmp_path, cafe["agent"], seed=other))
    assert run.returncode == ExitCode.AUTH_REFUSED, run.log
    assert "bad_signature" in run.log


def signed(agent, method, target, body=b"", *, seed=None, timestamp=None, nonce=None,
           seat=None):
    """Headers signed like bm-hook: by ``seat`` (a seat key seed), else by ``seed`` as the
    café token; with neither, by the registered PC's approved seat key (module ``SEAT``)."""
    if seed is None and seat is None:
        seat = SEAT["seed"]
    signer = SeatSigner(seat) if seat else TokenSigner(seed)
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = signer.headers(method, target, body, stamp, nonce or secrets.token_hex(16))
    if body:
        headers["Content-Type"] = "application/json"
    return headers


def send(agent, method, target, headers, body=b"", source_ip=PC_IP):
    with requests.Session() as sess:
        sess.trust_env = False
        sess.mount("http://", SourceAddressAdapter(source_ip))
        return sess.request(method, agent.url + target, headers=headers, data=body or None,
                            timeout=30)


def test_replayed_whoami_is_refused(cafe):
    agent = cafe["agent"]
    target = f"{WHOAMI_PATH}?ip={PC_IP}&mac="
    headers = signed(agent, "GET", target)
    first = send(agent, "GET", target, headers)
    assert first.status_code == 200, first.text
    assert first.json()["node_id"] == cafe["node_id"]
    assert first.json()["node_version"]
    again = send(agent, "GET", target, headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "replayed"


def test_replayed_deeplink_post_is_refused_and_not_pushed_twice(cafe):
    agent, dl = cafe["agent"], cafe["dl"]
    body = encode_body({"node_id": cafe["node_id"], "device_password": "Replay0Code1"})
    headers = signed(agent, "POST", DEEPLINK_PATH, body)
    first = send(agent, "POST", DEEPLINK_PATH, headers, body)
    assert first.status_code == 200, first.text
    answer = first.json()
    # Changed on purpose (seat-key fix): the relay never returns the device_id; staff see
    # it in the DeepLink status.
    assert set(answer) == {"status", "rotated_at"}
    assert answer["status"] == "confirmed"
    assert agent.get(f"/api/v1/servers/{UUID}/deeplink").json()["device_id"] == DEVICE_ID
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", answer["rotated_at"])
    reports = dl.reports
    again = send(agent, "POST", DEEPLINK_PATH, headers, body)
    assert again.status_code == 409
    assert again.json() == {"error": {"code": "replayed", "message": "nonce already used"}}
    time.sleep(0.3)
    assert dl.reports == reports  # nothing was pushed to DeepLink again


def test_stale_timestamp_is_refused_with_the_agents_date(cafe):
    agent = cafe["agent"]
    target = f"{WHOAMI_PATH}?ip={PC_IP}&mac="
    window = CONTRACT["signing"]["window_s"]
    answer = send(agent, "GET", target, signed(agent, "GET", target,
                                               timestamp=int(time.time()) - window - 60))
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "stale_timestamp"
    assert answer.headers["Date"]


def test_signature_is_checked_before_the_timestamp(cafe):
    agent = cafe["agent"]
    target = f"{WHOAMI_PATH}?ip={PC_IP}&mac="
    other = hashlib.sha256(b"not the token").hexdigest()
    answer = send(agent, "GET", target, signed(agent, "GET", target, seed=other,
                                               timestamp=int(time.time()) - 10_000))
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "bad_signature"


def test_node_id_of_another_pc_is_forbidden_source(cafe):
    agent = cafe["agent"]
    body = encode_body({"node_id": cafe["node_id"], "device_password": "Other0Code1"})
    answer = send(agent, "POST", DEEPLINK_PATH, signed(agent, "POST", DEEPLINK_PATH, body),
                  body, source_ip="127.0.0.33")
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden_source"


def test_a_forwarded_for_header_cannot_borrow_the_pcs_address(cafe):
    """From 127.0.0.1 (which uvicorn trusts for proxy headers by default) with
    X-Forwarded-For naming the PC: the relay does not take the header's word."""
    agent = cafe["agent"]
    target = f"{WHOAMI_PATH}?ip={PC_IP}&mac="
    headers = {**signed(agent, "GET", target), "X-Forwarded-For": PC_IP}
    answer = send(agent, "GET", target, headers, source_ip="127.0.0.1")
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden_source"


@pytest.mark.parametrize(("body", "why"), [
    (b"not json", "body is not JSON"),
    (encode_body({"node_id": "ab" * 32, "device_password": "short"}), "device_password"),
    (encode_body({"node_id": "xyz", "device_password": "Good0Code1"}), "node_id"),
])
def test_bad_body_is_400(cafe, body, why):
    agent = cafe["agent"]
    answer = send(agent, "POST", DEEPLINK_PATH, signed(agent, "POST", DEEPLINK_PATH, body), body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_request"
    assert why in answer.json()["error"]["message"]


def test_a_boot_reported_after_the_rotation_makes_the_code_stale(cafe):
    agent = cafe["agent"]
    body = encode_body({"node_id": cafe["node_id"], "device_password": "Fresh0Code9"})
    assert send(agent, "POST", DEEPLINK_PATH, signed(agent, "POST", DEEPLINK_PATH, body),
                body).status_code == 200
    assert agent.get(f"/api/v1/servers/{UUID}/deeplink").json()["freshness"] == "fresh"
    time.sleep(0.05)
    target = f"{WHOAMI_PATH}?ip={PC_IP}&mac="
    assert send(agent, "GET", target, signed(agent, "GET", target)).status_code == 200
    status = agent.get(f"/api/v1/servers/{UUID}/deeplink").json()
    assert status["freshness"] == "stale"
    listing = agent.get("/api/v1/deeplink", params={"stale": "true"}).json()
    assert UUID in [item["uuid"] for item in listing["items"]] and listing["stale"] >= 1


def test_duplicate_device_codes_are_flagged(cafe, spawn, tmp_path):
    agent = cafe["agent"]
    twins = (("pc-41", "127.0.0.41"), ("pc-42", "127.0.0.42"))
    register(agent, *twins)
    for uuid, ip in twins:
        cafe["deeplink"](ip, device_id="555000555")  # a cloned image kept DeepLink's identity
        seat = provision_seat(agent, uuid, ip)
        run = run_hook(spawn, hook_config(tmp_path, agent, source_ip=ip, name=uuid, seat=seat))
        assert run.returncode == ExitCode.OK, run.log
    listing = agent.get("/api/v1/deeplink").json()
    assert sorted(listing["duplicates"]["555000555"]) == ["pc-41", "pc-42"]
    one = agent.get("/api/v1/servers/pc-41/deeplink").json()
    assert one["duplicate_with"] == ["pc-42"]
    assert agent.get(f"/api/v1/servers/{UUID}/deeplink").json()["duplicate_with"] == []


def test_a_power_cycle_seen_by_the_monitor_makes_the_code_stale(cafe, fake_bmc):
    agent = cafe["agent"]
    bmc = fake_bmc(initial_power="on")
    row = (f"uuid,ip,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port\n"
           f"pc-51,127.0.0.51,127.0.0.1,{bmc.user},{bmc.password},{bmc.port}\n").encode()
    assert agent.post("/api/v1/servers/import", params={"register": "true"}, data=row,
                      headers={"Content-Type": "text/csv"}).status_code == 200
    node_id = agent.wait_for(lambda: agent.server("pc-51")["has_node_key"]
                             and agent.server("pc-51")["node_id"], 20, "pc-51 registered")
    cafe["deeplink"]("127.0.0.51", device_id="515151515")
    seat = provision_seat(agent, "pc-51", "127.0.0.51")
    body = encode_body({"node_id": node_id, "device_password": "Cycle0Code1"})
    answer = send(agent, "POST", DEEPLINK_PATH,
                  signed(agent, "POST", DEEPLINK_PATH, body, seat=seat),
                  body, source_ip="127.0.0.51")
    assert answer.status_code == 200, answer.text

    def power_read(state):
        return lambda: (agent.server("pc-51")["reading"] or {}).get("power") == state
    agent.wait_for(power_read("on"), 10, "a reading with power on")
    assert agent.get("/api/v1/servers/pc-51/deeplink").json()["freshness"] == "fresh"
    bmc.set_power("off")  # behind the agent's back: the PC was switched off...
    agent.wait_for(power_read("off"), 10, "a reading with power off")
    bmc.set_power("on")   # ...and on again: it booted, and nothing rotated its code
    agent.wait_for(power_read("on"), 10, "a reading with power on again")
    status = agent.wait_for(
        lambda: (s := agent.get("/api/v1/servers/pc-51/deeplink").json())["freshness"]
        == "stale" and s, 10, "the boot noticed")
    assert status["last_boot_seen_at"] > status["last_rotated_at"]
