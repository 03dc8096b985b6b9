"""Security issue 10, finding 2: a renter takes over another PC's DeepLink code.

As found: the café-wide hook token is on every PC image (readable by a local admin) and the
source IP was the only tie to a seat, so an IP alias (+ gratuitous ARP) on seat B's address
published B's ``device_password`` (``200 {"status": "confirmed", "device_id": ...}``).

Here: the real ``bm-agent serve`` + the emulator (node + DeepLink LAN service) + simulated
DeepLinks; 127.0.0.2 is seat A, 127.0.0.3 seat B (binding the client socket to B's address
is what the IP alias gives the attacker). Both seats have enrolled and approved seat keys.
The attacker holds the café token, A's seat key (their own PC) and B's address.
"""

import json
import os
import stat
import subprocess
import sys
import time

import pytest
import requests

from baremetal.emulator.deeplink_client import SimulatedDeepLink
from boot_hooks.errors import ExitCode
from boot_hooks.relay import DEEPLINK_PATH, ENROLL_PATH, WHOAMI_PATH, SeatSigner, encode_body
from tests.support.agentproc import USERS
from tests.support.emulator import start_emulator
from tests.support.hook_run import run_hook, write_hook_config, write_key
from tests.support.ports import free_port
from tests.support.procs import REPO_ROOT
from tests.support.seats import (
    approve_seat,
    enroll_seat,
    hook_request,
    new_seat_seed,
    provision_seat,
    seat_public,
)

A_IP, B_IP, C_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"
A_MAC, B_MAC, C_MAC = "02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c"
ATTACKER_MAC = "02:00:00:00:00:ee"
DEVICE = {"seat-a": "100000001", "seat-b": "100000002", "seat-c": "100000003"}
FIRST_CODE = "FirstBoot01"
ARP_HEADER = "IP address       HW type     Flags       HW address            Mask     Device\n"


def arp_text(*entries):
    return ARP_HEADER + "".join(f"{ip:<17}0x1         0x2         {mac}     *        eth0\n"
                                for ip, mac in entries)


def register(agent, *pcs):
    rows = ["uuid,ip,os,desc,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port,mac,labels"]
    rows += [f"{uuid},{ip},win10,seat,127.0.0.1,admin,seatpw1,{free_port()},{mac},row=S"
             for uuid, ip, mac in pcs]
    answer = agent.post("/api/v1/servers/import", params={"register": "true"},
                        data=("\n".join(rows) + "\n").encode(),
                        headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200 and not answer.json()["errors"], answer.text

    def registered():
        servers = {s["uuid"]: s for s in agent.get("/api/v1/servers").json()["items"]}
        return all(servers[u]["has_node_key"] and servers[u]["node_id"] for u, _i, _m in pcs) \
            and servers
    servers = agent.wait_for(registered, 20, "registration and server keys")
    return {uuid: servers[uuid]["node_id"] for uuid, _ip, _mac in pcs}


@pytest.fixture(scope="module")
def cafe(module_agent_proc, module_spawn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seats")
    arp = tmp / "arp"
    arp.write_text(arp_text((A_IP, A_MAC), (B_IP, B_MAC)))
    emu = start_emulator(module_spawn, tmp)
    agent = module_agent_proc(emulator=emu, config={"hook.neighbour_table": str(arp)})
    node_ids = register(agent, ("seat-a", A_IP, A_MAC), ("seat-b", B_IP, B_MAC),
                        ("seat-c", C_IP, C_MAC))
    links = {}

    def deeplink(uuid, ip, device_id):
        if uuid in links:
            links[uuid].stop()
        link = SimulatedDeepLink((emu.deeplink_host, emu.deeplink_port), device_id=device_id,
                                 password=FIRST_CODE, source_ip=ip, reconnect=True)
        link.start()
        links[uuid] = link
        assert link.wait_until(lambda d: d.connected, 5)
        return link

    for uuid, ip in (("seat-a", A_IP), ("seat-b", B_IP), ("seat-c", C_IP)):
        deeplink(uuid, ip, DEVICE[uuid])
    seats = {"seat-a": provision_seat(agent, "seat-a", A_IP),
             "seat-b": provision_seat(agent, "seat-b", B_IP)}
    yield {"emu": emu, "agent": agent, "node_ids": node_ids, "links": links, "seats": seats,
           "arp": arp, "deeplink": deeplink, "tmp": tmp}
    for link in links.values():
        link.stop()


def publish(cafe, uuid, code, *, source_ip, seat=None, token=None, device_id=None):
    payload = {"node_id": cafe["node_ids"][uuid], "device_password": code}
    if device_id:
        payload["device_id"] = device_id
    body = encode_body(payload)
    return hook_request(cafe["agent"], "POST", DEEPLINK_PATH, body, source_ip=source_ip,
                        seat=seat, token=token)


def error_code(answer):
    return answer.json()["error"]["code"]


def events(agent, uuid, action=None):
    params = {"server": uuid, "limit": 50}
    if action:
        params["action"] = action
    return agent.get("/api/v1/events", params=params).json()["items"]


def test_seat_b_publishes_with_its_own_key_and_the_answer_has_no_device_id(cafe):
    b = cafe["links"]["seat-b"]
    answer = publish(cafe, "seat-b", "Seat0B0Own1", source_ip=B_IP, seat=cafe["seats"]["seat-b"])
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"status", "rotated_at"}  # (d): never the device_id
    assert DEVICE["seat-b"] not in answer.text and "device_id" not in answer.text
    assert b.password == "Seat0B0Own1"


def test_cafe_token_from_b_address_cannot_publish_b_code(cafe):
    """The attack as found: IP alias on B's address + the café token from the image."""
    agent, b = cafe["agent"], cafe["links"]["seat-b"]
    before, reports = b.password, b.reports
    answer = publish(cafe, "seat-b", "Stolen0Code1", source_ip=B_IP,
                     token=agent.hook_seed)
    assert answer.status_code == 403, answer.text
    assert error_code(answer) == "seat_not_enrolled"
    target = f"{WHOAMI_PATH}?ip={B_IP}&mac="
    who = hook_request(agent, "GET", target, source_ip=B_IP, token=agent.hook_seed)
    assert who.status_code == 403 and error_code(who) == "seat_not_enrolled"
    time.sleep(0.3)
    assert (b.password, b.reports) == (before, reports)  # B's code on the node unchanged
    assert any(e["result"] == "token_refused" for e in events(agent, "seat-b", "seat"))


@pytest.mark.parametrize("source_ip", [B_IP, A_IP])
def test_seat_a_key_cannot_publish_b_code(cafe, source_ip):
    b = cafe["links"]["seat-b"]
    before = b.password
    answer = publish(cafe, "seat-b", "Stolen0Code2", source_ip=source_ip,
                     seat=cafe["seats"]["seat-a"])
    assert answer.status_code == 403, answer.text
    assert error_code(answer) == "forbidden_source"
    time.sleep(0.3)
    assert b.password == before


def test_a_fresh_key_enrolled_from_b_address_stays_pending(cafe):
    """A re-enrollment (or a rogue one) never replaces B's approved key by itself."""
    agent, b = cafe["agent"], cafe["links"]["seat-b"]
    rogue = new_seat_seed()
    answer = enroll_seat(agent, rogue, B_IP)
    assert answer.status_code == 202 and answer.json() == {"status": "pending"}
    refused = publish(cafe, "seat-b", "Stolen0Code3", source_ip=B_IP, seat=rogue)
    assert refused.status_code == 403 and error_code(refused) == "seat_pending"
    assert b.password != "Stolen0Code3"
    assert any(e["result"] == "reenroll" for e in events(agent, "seat-b", "enroll"))
    # B's approved key still works while the new one waits.
    ok = publish(cafe, "seat-b", "Seat0B0Own2", source_ip=B_IP, seat=cafe["seats"]["seat-b"])
    assert ok.status_code == 200, ok.text
    # Staff reject the rogue key: it is refused for good, B's key stays approved.
    rejected = agent.post("/api/v1/seats/reject", user="oper", json={"uuids": ["seat-b"]})
    assert rejected.status_code == 200 and rejected.json()["done"] == 1
    again = publish(cafe, "seat-b", "Stolen0Code4", source_ip=B_IP, seat=rogue)
    assert again.status_code == 403 and error_code(again) == "seat_rejected"
    audit = agent.get("/api/v1/audit").json()["items"]
    assert any(e["action"] == "seat_reject" and e["server_uuid"] == "seat-b" for e in audit)


def test_neighbour_table_mac_mismatch_is_refused(cafe):
    """IP alias + gratuitous ARP: the agent's ARP entry for B's address names another NIC."""
    agent, b, arp = cafe["agent"], cafe["links"]["seat-b"], cafe["arp"]
    arp.write_text(arp_text((A_IP, A_MAC), (B_IP, ATTACKER_MAC)))
    try:
        answer = publish(cafe, "seat-b", "Stolen0Code5", source_ip=B_IP,
                         seat=cafe["seats"]["seat-b"])
        assert answer.status_code == 403, answer.text
        assert error_code(answer) == "forbidden_source"
        assert b.password != "Stolen0Code5"
        found = [e for e in events(agent, "seat-b", "neighbour_mac")]
        assert found and found[0]["detail"]["neighbour_mac"] == ATTACKER_MAC
    finally:
        arp.write_text(arp_text((A_IP, A_MAC), (B_IP, B_MAC)))
    ok = publish(cafe, "seat-b", "Seat0B0Own3", source_ip=B_IP, seat=cafe["seats"]["seat-b"])
    assert ok.status_code == 200, ok.text


def test_device_id_change_is_refused_until_staff_approve(cafe):
    """(c) A's DeepLink identity changes: refused (409) and B's... A's code untouched."""
    agent, seat = cafe["agent"], cafe["seats"]["seat-a"]
    first = publish(cafe, "seat-a", "Seat0A0Own1", source_ip=A_IP, seat=seat)
    assert first.status_code == 200, first.text  # pins 100000001
    link = cafe["deeplink"]("seat-a", A_IP, "999999999")
    refused = publish(cafe, "seat-a", "Seat0A0New1", source_ip=A_IP, seat=seat)
    assert refused.status_code == 409, refused.text
    assert error_code(refused) == "device_id_changed"
    assert "999999999" not in refused.text
    time.sleep(0.3)
    assert link.password == FIRST_CODE  # the new code never reached DeepLink
    listing = agent.get("/api/v1/seats").json()
    assert {"uuid": "seat-a", "pinned_device_id": DEVICE["seat-a"],
            "pending_device_id": "999999999"}.items() <= listing["device_id_changes"][0].items()
    assert any(e["result"] == "device_id_changed" for e in events(agent, "seat-a", "rotate"))
    viewer = agent.post("/api/v1/seats/device-id/approve", user="view",
                        json={"uuids": ["seat-a"]})
    assert viewer.status_code == 403
    approved = agent.post("/api/v1/seats/device-id/approve", user="oper",
                          json={"uuids": ["seat-a"]})
    assert approved.status_code == 200 and approved.json()["ok"], approved.text
    ok = publish(cafe, "seat-a", "Seat0A0New2", source_ip=A_IP, seat=seat)
    assert ok.status_code == 200, ok.text
    assert link.password == "Seat0A0New2"
    audit = agent.get("/api/v1/audit").json()["items"]
    assert any(e["action"] == "device_id_approve" and e["detail"]["new"] == "999999999"
               for e in audit)


def test_body_device_id_other_than_the_pin_is_refused(cafe):
    seat = cafe["seats"]["seat-b"]
    assert publish(cafe, "seat-b", "Seat0B0Own4", source_ip=B_IP, seat=seat).status_code == 200
    answer = publish(cafe, "seat-b", "Seat0B0Own5", source_ip=B_IP, seat=seat,
                     device_id="123123123")
    assert answer.status_code == 409 and error_code(answer) == "device_id_changed"


@pytest.mark.parametrize("path", [DEEPLINK_PATH, ENROLL_PATH])
def test_deeply_nested_signed_body_is_400(cafe, path):
    """Issue 10: ``{"a":`` x 100000 made json.loads raise RecursionError (a 500)."""
    body = b'{"a":' * 100_000
    seat = cafe["seats"]["seat-b"] if path == DEEPLINK_PATH else None
    answer = hook_request(cafe["agent"], "POST", path, body, source_ip=B_IP, seat=seat)
    assert answer.status_code == 400, answer.text[:300]
    assert error_code(answer) == "bad_request"
    assert "nested" in answer.json()["error"]["message"]


def test_hook_end_to_end_fresh_pc_waits_for_approval_then_publishes(cafe, spawn, tmp_path):
    """(e) First boot: makes its key, enrolls, exit 7; staff approve (API); next run: done."""
    agent, link = cafe["agent"], cafe["links"]["seat-c"]
    key_dir = tmp_path / "per-machine-disk" / "bm-hook"
    config = write_hook_config(tmp_path / "hook.toml", {
        "agent": {"url": agent.url, "token_key_file": write_key(tmp_path / "tok", agent.hook_seed),
                  "seat_key_file": str(key_dir / "seat.key"), "source_ip": C_IP},
        "deadlines": {"node_s": 5, "deeplink_s": 10, "confirm_s": 8, "call_s": 2},
        "state": {"file": str(tmp_path / "state" / "last-code")},
    })
    first = run_hook(spawn, config)
    assert first.returncode == ExitCode.AWAITING_APPROVAL, first.log
    assert "waits for staff approval in the dashboard" in first.log
    assert stat.S_IMODE(os.stat(key_dir / "seat.key").st_mode) == 0o600
    seed = (key_dir / "seat.key").read_text().strip().split("=")[1]
    fingerprint = SeatSigner(seed).fingerprint
    assert fingerprint in first.log and seed not in first.log
    pending = agent.get("/api/v1/seats", params={"state": "pending"}).json()["items"]
    mine = [s for s in pending if s["uuid"] == "seat-c"]
    assert mine and mine[0]["fingerprint"] == fingerprint
    assert mine[0]["public_key"] == seat_public(seed)
    again = run_hook(spawn, config)  # not approved yet: still waiting, no new enrollment
    assert again.returncode == ExitCode.AWAITING_APPROVAL, again.log
    assert link.password == FIRST_CODE
    assert approve_seat(agent, "seat-c")["ok"]
    done = run_hook(spawn, config)
    assert done.returncode == ExitCode.OK, done.log + agent.log()[-2000:]
    assert link.password != FIRST_CODE
    assert seed not in agent.log() and seed not in done.log


def test_staff_list_and_approve_by_label_from_the_cli(cafe):
    """``bm-agent seats list|approve --label`` on the agent's store (while it runs)."""
    agent = cafe["agent"]
    seed = new_seat_seed()
    assert enroll_seat(agent, seed, A_IP).status_code == 202  # A re-enrolls (disk wiped)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "agent", "--config", str(agent.config_path),
                               "--json", *args], capture_output=True, text=True, timeout=120,
                              cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    listed = cli("seats", "list", "--state", "pending")
    assert listed.returncode == 0, listed.stderr
    assert "seat-a" in [s["uuid"] for s in json.loads(listed.stdout)["items"]]
    approved = cli("--user", "oper", "seats", "approve", "--label", "row=S")
    result = json.loads(approved.stdout)
    assert [r["uuid"] for r in result["results"] if r["ok"]] == ["seat-a"]
    assert approved.returncode == 5  # partial: the other seats of the row had nothing pending
    ok = publish(cafe, "seat-a", "Seat0A0Cli1", source_ip=A_IP, seat=seed)
    assert ok.status_code == 200, ok.text
    old = publish(cafe, "seat-a", "Seat0A0Old1", source_ip=A_IP, seat=cafe["seats"]["seat-a"])
    assert old.status_code == 403 and error_code(old) == "seat_rejected"  # retired
    cafe["seats"]["seat-a"] = seed


def test_dashboard_seats_page_and_approval_need_the_csrf_token(cafe):
    """The dashboard approves through the JSON API: operator role and the session's CSRF."""
    agent = cafe["agent"]
    seed = new_seat_seed()
    assert enroll_seat(agent, seed, B_IP).status_code == 202
    with requests.Session() as sess:
        sess.trust_env = False
        login = sess.post(agent.url + "/api/v1/auth/login", timeout=10,
                          json={"name": "oper", "password": USERS["oper"][1]})
        assert login.status_code == 200, login.text
        page = sess.get(agent.url + "/ui/seats", timeout=10)
        assert page.status_code == 200 and 'id="seats"' in page.text and "seats.js" in page.text
        listing = sess.get(agent.url + "/api/v1/seats", params={"state": "pending"}, timeout=10)
        assert "seat-b" in [s["uuid"] for s in listing.json()["items"]]
        refused = sess.post(agent.url + "/api/v1/seats/approve", json={"label": "row=S"},
                            timeout=10)
        assert refused.status_code == 403 and error_code(refused) == "csrf_failed"
        approved = sess.post(agent.url + "/api/v1/seats/approve", json={"label": "row=S"},
                             headers={"X-CSRF-Token": login.json()["csrf_token"]}, timeout=10)
        assert approved.status_code == 200, approved.text
        assert [r["uuid"] for r in approved.json()["results"] if r["ok"]] == ["seat-b"]
    viewer = agent.post("/api/v1/seats/approve", user="view", json={"uuids": ["seat-b"]})
    assert viewer.status_code == 403 and error_code(viewer) == "permission_denied"
    audit = agent.get("/api/v1/audit").json()["items"]
    assert any(e["action"] == "seat_approve" and e["actor"] == "oper"
               and e["server_uuid"] == "seat-b" for e in audit)
    ok = publish(cafe, "seat-b", "Seat0B0Web1", source_ip=B_IP, seat=seed)
    assert ok.status_code == 200, ok.text
    cafe["seats"]["seat-b"] = seed
