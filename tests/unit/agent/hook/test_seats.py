"""Seat keys, the neighbour-table check, pinned device_ids and deep JSON: no sockets.

The relay is built over a real store in a temp dir; requests are signed like bm-hook
(café token for enroll, the seat key named in ``X-BM-Seat-Key`` for whoami and deeplink).
"""

import json
import secrets
import time
from pathlib import Path

import pytest

from agent.hook.neighbours import NeighbourTable, parse_proc_net_arp
from agent.hook.relay import HookRefusal, HookRelay, SignedRequest, parse_publish_body
from agent.hook.seat_gate import SeatGate
from agent.hook.seats import Seats
from agent.hook.signing import HookVerifier, generate_hook_keypair
from agent.models import EventKind, SeatState
from agent.secrets import Sealer, Secret, generate_key
from agent.store import Store
from boot_hooks.relay import ENROLL_PATH, SeatSigner, TokenSigner, encode_body

# Recorded from a café LAN's CPU server (Debian 12), addresses and MACs changed.
PROC_NET_ARP = """\
IP address       HW type     Flags       HW address            Mask     Device
192.168.1.23     0x1         0x2         00:1a:2b:3c:4d:5e     *        enp3s0
192.168.1.24     0x1         0x0         00:00:00:00:00:00     *        enp3s0
192.168.1.25     0x1         0x6         0A:1B:2C:3D:4E:5F     *        enp3s0
192.168.1.1      0x1         0x2         d4:ee:07:11:22:33     *        enp3s0
"""
PC_IP = "192.168.1.23"
PC_MAC = "00:1a:2b:3c:4d:5e"
ATTACKER_MAC = "02:de:ad:be:ef:01"


def test_parse_proc_net_arp_keeps_complete_entries_only():
    assert parse_proc_net_arp(PROC_NET_ARP) == {
        "192.168.1.23": "00:1a:2b:3c:4d:5e", "192.168.1.25": "0a:1b:2c:3d:4e:5f",
        "192.168.1.1": "d4:ee:07:11:22:33"}
    assert parse_proc_net_arp("") == {}
    assert parse_proc_net_arp("header\ngarbage line\n1.2.3.4 0x1 zz 00:11\n") == {}


def test_neighbour_table_reads_the_injected_path(tmp_path):
    path = tmp_path / "arp"
    path.write_text(PROC_NET_ARP)
    table = NeighbourTable(path)
    assert table.mac_of(PC_IP) == PC_MAC
    assert table.mac_of("::ffff:" + PC_IP) == PC_MAC
    assert table.mac_of("192.168.1.24") is None  # incomplete
    assert NeighbourTable(tmp_path / "missing").mac_of(PC_IP) is None
    assert NeighbourTable(None).mac_of(PC_IP) is None


class Node:
    """Only what enroll/whoami touch: nothing (no node call before the seat check)."""

    def version(self, timeout_s):
        raise AssertionError("not reached")


@pytest.fixture
def cafe(tmp_path):
    token, public = generate_hook_keypair()
    arp = tmp_path / "arp"
    arp.write_text(PROC_NET_ARP)
    with Store.open(tmp_path / "agent.db", sealer=Sealer(generate_key())) as store:
        server = store.servers.add(uuid="pc-23", ip=PC_IP, ipmi_host="127.0.0.1",
                                   ipmi_user="admin", ipmi_password=Secret("pw123456"),
                                   mac=PC_MAC)
        verifier = HookVerifier(public_key=bytes.fromhex(public), nonces=store.nonces,
                                window_s=300)
        relay = HookRelay(store=store, node=Node(), verifier=verifier, window_s=300,
                          neighbours=NeighbourTable(arp))
        yield {"store": store, "relay": relay, "token": token.reveal(), "arp": arp,
               "server": server}


def request(cafe, method, target, body=b"", *, seat=None, source_ip=PC_IP):
    signer = SeatSigner(seat) if seat else TokenSigner(cafe["token"])
    headers = signer.headers(method, target, body, int(time.time()), secrets.token_hex(16))
    return SignedRequest(method=method, target=target, body=body,
                         timestamp=headers["X-BM-Timestamp"], nonce=headers["X-BM-Nonce"],
                         signature=headers["X-BM-Signature"], source_ip=source_ip,
                         seat_key=headers.get("X-BM-Seat-Key"))


def enroll(cafe, seat, source_ip=PC_IP):
    body = encode_body({"seat_key": SeatSigner(seat).public_key_hex})
    return cafe["relay"].enroll(request(cafe, "POST", ENROLL_PATH, body, source_ip=source_ip))


def refusal(call):
    with pytest.raises(HookRefusal) as caught:
        call()
    return caught.value.status, caught.value.code


def test_neighbour_mac_mismatch_refuses_and_records_an_event(cafe):
    cafe["arp"].write_text(PROC_NET_ARP.replace(PC_MAC, ATTACKER_MAC))
    assert refusal(lambda: enroll(cafe, "11" * 32)) == (403, "forbidden_source")
    [event] = cafe["store"].events.page(limit=5).items
    assert (event.action, event.result, event.kind) == ("neighbour_mac", "forbidden_source",
                                                        EventKind.DEEPLINK)
    assert event.detail["neighbour_mac"] == ATTACKER_MAC
    assert cafe["store"].seats.find() == []


def test_neighbour_check_is_skipped_when_either_mac_is_unknown(cafe):
    cafe["arp"].write_text(PROC_NET_ARP.replace(PC_IP, "192.168.1.99"))
    assert enroll(cafe, "11" * 32) == (202, {"status": "pending"})


def test_enroll_then_whoami_pending_then_approved(cafe):
    seat = "22" * 32
    assert enroll(cafe, seat) == (202, {"status": "pending"})
    assert enroll(cafe, seat) == (202, {"status": "pending"})  # idempotent
    whoami = lambda: cafe["relay"].whoami(request(cafe, "GET", "/api/v1/hook/whoami", seat=seat))  # noqa: E731
    assert refusal(whoami) == (403, "seat_pending")
    [decision] = Seats(cafe["store"]).decide(uuids=["pc-23"], approve=True, actor="oper")
    assert decision.ok
    assert enroll(cafe, seat) == (200, {"status": "approved"})
    assert refusal(whoami) == (503, "not_registered")  # past every seat check
    token_only = lambda: cafe["relay"].whoami(request(cafe, "GET", "/api/v1/hook/whoami"))  # noqa: E731
    assert refusal(token_only) == (403, "seat_not_enrolled")


def test_unknown_seat_key_is_refused_before_the_nonce_table(cafe):
    before = cafe["store"].nonces.count()
    call = lambda: cafe["relay"].whoami(request(cafe, "GET", "/api/v1/hook/whoami",  # noqa: E731
                                                seat="33" * 32))
    assert refusal(call) == (403, "seat_not_enrolled")
    assert cafe["store"].nonces.count() == before


def test_enroll_must_be_signed_by_the_cafe_token(cafe):
    body = encode_body({"seat_key": SeatSigner("44" * 32).public_key_hex})
    signed = request(cafe, "POST", ENROLL_PATH, body, seat="44" * 32)
    assert refusal(lambda: cafe["relay"].enroll(signed)) == (403, "bad_signature")


def test_reenrollment_waits_and_approval_retires_the_old_key(cafe):
    store, seats = cafe["store"], Seats(cafe["store"])
    enroll(cafe, "55" * 32)
    seats.decide(uuids=["pc-23"], approve=True, actor="oper")
    assert enroll(cafe, "66" * 32) == (202, {"status": "pending"})
    assert store.seats.approved(server_id=cafe["server"].id).public_key == \
        SeatSigner("55" * 32).public_key_hex  # never replaced by the enrollment itself
    assert next(e.result for e in store.events.page(limit=20).items
                if e.action == "enroll") == "reenroll"
    seats.decide(uuids=["pc-23"], approve=True, actor="oper")
    states = {s.public_key: s.state for s in store.seats.find()}
    assert states[SeatSigner("55" * 32).public_key_hex] == SeatState.REJECTED
    assert states[SeatSigner("66" * 32).public_key_hex] == SeatState.APPROVED
    audit = [e for e in store.events.page(limit=20).items if e.kind == EventKind.AUDIT]
    assert [e.action for e in audit] == ["seat_approve", "seat_approve"]
    assert audit[0].detail["retired_fingerprint"] == SeatSigner("55" * 32).fingerprint


def test_deciding_nothing_pending_is_a_conflict_result(cafe):
    [decision] = Seats(cafe["store"]).decide(uuids=["pc-23"], approve=False, actor="oper")
    assert (decision.ok, decision.code) == (False, "seat_not_pending")
    [change] = Seats(cafe["store"]).approve_device_ids(uuids=["pc-23"], actor="oper")
    assert (change.ok, change.code) == (False, "device_id_not_pending")


def test_device_id_pin_refuses_a_change_until_approved(cafe):
    store, server = cafe["store"], cafe["server"]
    gate = SeatGate(store=store, event=lambda *args: None)
    gate.pin_confirmed(server, "111111111")
    gate.check_device_id(server, "111111111")
    assert refusal(lambda: gate.check_device_id(server, "222222222")) == \
        (409, "device_id_changed")
    assert store.pins.get(server_id=server.id).pending_device_id == "222222222"
    [done] = Seats(store).approve_device_ids(uuids=["pc-23"], actor="oper")
    assert done.ok
    gate.check_device_id(server, "222222222")
    assert refusal(lambda: gate.check_device_id(server, "111111111")) == \
        (409, "device_id_changed")


@pytest.mark.parametrize("body", [b'{"a":' * 100_000, b"[" * 100_000])
def test_deeply_nested_body_is_a_bad_request(body):
    with pytest.raises(HookRefusal) as caught:
        parse_publish_body(body)
    assert (caught.value.status, caught.value.code) == (400, "bad_request")


def test_refusals_answer_the_contracts_codes_and_messages(cafe):
    """The relay's seat refusals are exactly tests/contract/hook_relay.json's."""
    contract = json.loads((Path(__file__).parents[3] / "contract" /
                           "hook_relay.json").read_text())
    wire = {(r["status"], r["body"]["error"]["code"], r["body"]["error"]["message"])
            for e in contract["endpoints"].values() for r in e["responses"] if r["status"] >= 400}
    seen = {}

    def catch(call):
        with pytest.raises(HookRefusal) as caught:
            call()
        seen[(caught.value.status, caught.value.code)] = caught.value.detail

    whoami = lambda seat: lambda: cafe["relay"].whoami(  # noqa: E731
        request(cafe, "GET", "/api/v1/hook/whoami", seat=seat))
    catch(whoami(None))
    enroll(cafe, "77" * 32)
    catch(whoami("77" * 32))
    Seats(cafe["store"]).decide(uuids=["pc-23"], approve=False, actor="oper")
    catch(lambda: enroll(cafe, "77" * 32))
    gate = SeatGate(store=cafe["store"], event=lambda *args: None)
    gate.pin_confirmed(cafe["server"], "111111111")
    catch(lambda: gate.check_device_id(cafe["server"], "222222222"))
    body = encode_body({"seat_key": "xyz"})
    catch(lambda: cafe["relay"].enroll(request(cafe, "POST", ENROLL_PATH, body)))
    from agent.store.seats import MAX_PENDING_PER_SERVER

    for index in range(MAX_PENDING_PER_SERVER):
        enroll(cafe, f"{index + 1:02x}" * 32)
    catch(lambda: enroll(cafe, "ee" * 32))
    assert set(seen) == {(403, "seat_not_enrolled"), (403, "seat_pending"),
                         (403, "seat_rejected"), (409, "device_id_changed"), (400, "bad_request"),
                         (409, "too_many_pending")}
    for (status, code), message in seen.items():
        assert (status, code, message) in wire, code


def test_competing_enrollments_stay_side_by_side_until_one_is_chosen(cafe):
    """A rogue enrollment from the PC's address never displaces the PC's own pending key."""
    store, seats = cafe["store"], Seats(cafe["store"])
    assert enroll(cafe, "88" * 32) == (202, {"status": "pending"})   # the PC
    assert enroll(cafe, "99" * 32) == (202, {"status": "pending"})   # someone else
    assert len(store.seats.find(states=[SeatState.PENDING])) == 2
    [ambiguous] = seats.decide(uuids=["pc-23"], approve=True, actor="oper")
    assert (ambiguous.ok, ambiguous.code, ambiguous.params["count"]) == \
        (False, "seat_ambiguous", 2)
    mine = SeatSigner("88" * 32).fingerprint
    [done] = seats.decide(uuids=["pc-23"], approve=True, actor="oper", fingerprints=[mine])
    assert done.ok and done.fingerprint == mine
    states = {s.fingerprint: s.state for s in store.seats.find()}
    assert states == {mine: SeatState.APPROVED,
                      SeatSigner("99" * 32).fingerprint: SeatState.REJECTED}
    [audit] = [e for e in store.events.page(limit=20).items if e.kind == EventKind.AUDIT]
    assert audit.detail["rejected_fingerprints"] == [SeatSigner("99" * 32).fingerprint]


def test_a_fingerprint_that_is_not_pending_decides_nothing(cafe):
    enroll(cafe, "aa" * 32)
    [done] = Seats(cafe["store"]).decide(uuids=["pc-23"], approve=True, actor="oper",
                                         fingerprints=["0123456789abcdef"])
    assert (done.ok, done.code) == (False, "seat_not_pending")


def test_pending_keys_per_server_are_bounded(cafe):
    from agent.store.seats import MAX_PENDING_PER_SERVER

    for index in range(MAX_PENDING_PER_SERVER):
        assert enroll(cafe, f"{index + 1:02x}" * 32)[0] == 202
    assert refusal(lambda: enroll(cafe, "ee" * 32)) == (409, "too_many_pending")
    Seats(cafe["store"]).decide(uuids=["pc-23"], approve=False, actor="oper")
    assert enroll(cafe, "ee" * 32)[0] == 202


def test_a_version_1_store_migrates_to_seat_keys(tmp_path):
    from agent.store import SCHEMA_VERSION
    from tests.support.old_store import add_v1_server, make_old_store

    sealer = Sealer(generate_key())
    make_old_store(tmp_path / "old.db", 1, sealer)
    server_id = add_v1_server(tmp_path / "old.db", sealer, uuid="pc-1", ip="10.0.0.1",
                              ipmi_host="127.0.0.1", ipmi_user="admin", password="pw123456")
    with Store.open(tmp_path / "old.db", sealer=sealer) as store:
        assert store.schema_version() == SCHEMA_VERSION
        done = store.seats.enroll(server_id=server_id, public_key="ab" * 32, source_ip="x")
        assert done is not None and done.seat.state == SeatState.PENDING
        assert store.pins.get(server_id=server_id) is None
        assert store.integrity_check() == []
