"""Chain answers parsed as HttpDBCChainClient.cpp parses them (docs/protocol.md §14).

The answers below are written in the chain's JSON-RPC shape (Substrate header, the
pallets' camelCase RPC types), the fields the node reads plus some it ignores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baremetal.chain.errors import ChainBadAnswer, MachineUnknown
from baremetal.chain.hosts import host_url, host_urls, read_core_conf
from baremetal.chain.parse import (
    DEFAULT_RENTER,
    CommitteeOps,
    Methods,
    machine_category,
    parse_committee_ops,
    parse_current_block,
    parse_machine_status,
    parse_rent_order,
    parse_renter,
    request_text,
    strtol16,
)
from baremetal.errors import InvalidInput

NODE = "4b1d3c6a0e3f8a9c2b7d5e1f0a4c6b8d9e2f1a3c5b7d9e0f2a4c6e8b1d3f5a79"
RENTER = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def _rpc(result) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "result": result, "id": 1}).encode()


BLOCK = _rpc({"block": {"header": {
    "parentHash": "0x" + "12" * 32, "number": "0x7a3d1c", "stateRoot": "0x" + "34" * 32,
    "extrinsicsRoot": "0x" + "56" * 32, "digest": {"logs": ["0x0661757261"]}},
    "extrinsics": ["0x280402000b"]}, "justifications": None})
MACHINE_INFO = _rpc({
    "controller": RENTER, "machineStash": RENTER, "renters": [RENTER], "bondingHeight": 1,
    "machineStatus": "rented", "totalRentedTimes": 3,
    "machineInfoDetail": {"committee_upload_info": {"gpu_num": 2}}})
RENT_ORDER = _rpc({"renter": RENTER, "rentStart": 7980000, "confirmRent": 7980010,
                   "rentEnd": 8030000, "stakeAmount": "1000000000000000",
                   "rentStatus": "renting", "gpuNum": 2, "gpuIndex": [0, 1]})


def test_requests_are_the_nodes_bytes():
    assert request_text("chain_getBlock") == (
        b'{"jsonrpc": "2.0", "id": 1, "method":"chain_getBlock", "params": []}')
    assert request_text("onlineProfile_getMachineInfo", node_id=NODE) == (
        b'{"jsonrpc": "2.0", "id": 1, "method":"onlineProfile_getMachineInfo", "params": ["'
        + NODE.encode() + b'"]}')
    # the rent order id goes in unquoted (HttpDBCChainClient.cpp:491-498)
    assert request_text("rentMachine_getRentOrder", node_id=NODE, rent_order="42") == (
        b'{"jsonrpc": "2.0", "id": 1, "method":"rentMachine_getRentOrder", "params": [42]}')
    assert request_text("onlineCommittee_getCommitteeOps", wallet=RENTER, node_id=NODE) == (
        b'{"jsonrpc": "2.0", "id": 1, "method":"onlineCommittee_getCommitteeOps", "params": ["'
        + RENTER.encode() + b'","' + NODE.encode() + b'"]}')


@pytest.mark.parametrize("hostile", ['1]}, {"x": 1', "0x10", "-1", "4 2", "1" * 21])
def test_rent_order_that_would_break_the_unquoted_json_is_refused(hostile):
    # The node pastes the renter's rent_order raw into its JSON (JSON injection); we refuse.
    with pytest.raises(InvalidInput):
        request_text("rentMachine_getRentOrder", node_id=NODE, rent_order=hostile)


@pytest.mark.parametrize("hostile", ['a"b', "", "x" * 129, "ü", "a b"])
def test_quoted_params_refuse_what_the_node_would_not_escape(hostile):
    with pytest.raises(InvalidInput):
        request_text("onlineProfile_getMachineInfo", node_id=hostile)


def test_terminating_rental_swaps_the_pallet():
    methods = Methods.for_conf(terminating_rental=True)
    assert methods.machine_info == "terminatingRental_getMachineInfo"
    assert methods.rent_order == "terminatingRental_getRentOrder"
    assert methods.committee_ops == "terminatingRental_getCommitteeOps"
    assert methods.current_block == "chain_getBlock"


def test_current_block_is_the_hex_header_number():
    assert parse_current_block("chain_getBlock", BLOCK) == 0x7A3D1C


@pytest.mark.parametrize(("text", "value"), [
    ("0x3e8", 1000), ("3e8", 1000), ("0X3E8", 1000), ("  0x10zz", 16), ("zz", 0), ("", 0),
    ("0x", 0), ("-0x10", -16), ("+ff", 255), ("0x" + "f" * 20, (1 << 63) - 1),
])
def test_strtol16_like_c(text, value):
    assert strtol16(text) == value


@pytest.mark.parametrize(("body", "reason"), [
    (b"<html>502 Bad Gateway</html>", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"jsonrpc": "2.0", "id": 1}', "no 'result'"),
    (_rpc("0x10"), "'result' is not an object"),
    (_rpc({"header": {"number": "0x10"}}), "no 'block'"),
    (_rpc({"block": {"header": {"number": 16}}}), "'number' is not a string"),
    (b'{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":1}',
     "JSON-RPC error: Method not found"),
])
def test_current_block_bad_answers(body, reason):
    with pytest.raises(ChainBadAnswer, match=reason):
        parse_current_block("chain_getBlock", body)


@pytest.mark.parametrize(("raw", "category"), [
    ("addingCustomizeInfo", "verify"), ("distributingOrder", "verify"),
    ("committeeVerifying", "verify"), ("committeeRefused", "verify"),
    ("waitingFulfill", "online"), ("online", "online"), ("creating", "rented"),
    ("rented", "rented"), ("fulfillingOnChain", "unknown"), ("Rented", "unknown"), ("", "unknown"),
])
def test_machine_status_categories(raw, category):
    assert machine_category(raw) == category


def test_machine_status_answers():
    assert parse_machine_status("m", MACHINE_INFO) == "rented"
    with pytest.raises(MachineUnknown):
        parse_machine_status("m", _rpc(None))
    with pytest.raises(ChainBadAnswer, match="'machineStatus' is not a string"):
        parse_machine_status("m", _rpc({"machineStatus": {"rented": None}}))
    with pytest.raises(ChainBadAnswer, match="no 'machineStatus'"):
        parse_machine_status("m", _rpc({"controller": RENTER}))


def test_rent_order_by_node_and_by_id():
    by_node = parse_rent_order("r", RENT_ORDER, by_order=False)
    assert (by_node.renter, by_node.rent_end, by_node.rent_status) == (RENTER, 8030000, "renting")
    assert by_node.gpu_num is None and by_node.has_renter
    by_id = parse_rent_order("r", RENT_ORDER, by_order=True)
    assert (by_id.gpu_num, by_id.gpu_index) == (2, (0, 1))
    # gpuIndex stops at the first non-integer, as the node's loop does
    odd = _rpc({"renter": RENTER, "rentEnd": 5, "rentStatus": "renting", "gpuNum": 3,
                "gpuIndex": [0, "1", 2]})
    assert parse_rent_order("r", odd, by_order=True).gpu_index == (0,)
    nobody = _rpc({"renter": DEFAULT_RENTER, "rentEnd": 0, "rentStatus": "waitingVerifying"})
    assert not parse_rent_order("r", nobody, by_order=False).has_renter
    assert parse_renter("r", RENT_ORDER) == (RENTER, 8030000)


@pytest.mark.parametrize(("result", "reason"), [
    ({"rentEnd": 5, "rentStatus": "renting"}, "no 'renter'"),
    ({"renter": RENTER, "rentEnd": "5", "rentStatus": "renting"}, "'rentEnd' is not"),
    ({"renter": RENTER, "rentEnd": True, "rentStatus": "renting"}, "'rentEnd' is not"),
    ({"renter": RENTER, "rentEnd": 5.5, "rentStatus": "renting"}, "not a 64-bit integer"),
    ({"renter": RENTER, "rentEnd": 1 << 64, "rentStatus": "renting"}, "not a 64-bit integer"),
    ({"renter": RENTER, "rentEnd": 5}, "no 'rentStatus'"),
    ({"renter": 7, "rentEnd": 5, "rentStatus": "renting"}, "'renter' is not a string"),
])
def test_rent_order_bad_answers(result, reason):
    with pytest.raises(ChainBadAnswer, match=reason):
        parse_rent_order("r", _rpc(result), by_order=False)


def test_prune_timer_reads_renter_without_status():
    # request_cur_renter reads renter and rentEnd only (HttpDBCChainClient.cpp:262-270)
    assert parse_renter("r", _rpc({"renter": RENTER, "rentEnd": 9})) == (RENTER, 9)


def test_committee_ops_windows():
    ops = parse_committee_ops("c", _rpc({"verifyTime": [1000, 5000, 9000]}))
    assert ops == CommitteeOps((1000, 5000, 9000))
    assert not ops.in_verify_time(1000) and ops.in_verify_time(1001)
    assert ops.in_verify_time(3400) and not ops.in_verify_time(3401)
    assert not parse_committee_ops("c", _rpc({"verifyTime": []})).in_verify_time(10)
    for bad in ([1, 2], [1, "2", 3], [1, 2, True]):
        with pytest.raises(ChainBadAnswer):
            parse_committee_ops("c", _rpc({"verifyTime": bad}))


def test_host_entries_like_the_node():
    assert host_url("httpinfo.dbcwallet.io") == "https://httpinfo.dbcwallet.io:443/"
    assert host_url("httpinfo2.dbcwallet.io:7788") == "https://httpinfo2.dbcwallet.io:7788/"
    assert host_url("http://127.0.0.1:9944/x") == "http://127.0.0.1:9944/"
    assert host_urls(["a.example", "", "a.example:443"]) == ("https://a.example:443/",)
    for bad in ("ftp://x", "a.example:99999", "a.example:x", "a b", ":80", "http://"):
        with pytest.raises(InvalidInput):
            host_url(bad)


def test_core_conf_as_boost_reads_it(tmp_path: Path):
    conf = tmp_path / "core.conf"
    conf.write_text("version=0.3.7.7\n# dbc_chain_domain=commented.example\n"
                    "dbc_chain_domain=httpinfo.dbcwallet.io:443\n"
                    "dbc_chain_domain = httpinfo2.dbcwallet.io:7788  # second\n"
                    "chain_additional_field=terminatingRental\n")
    found = read_core_conf(conf)
    assert found.hosts == ("httpinfo.dbcwallet.io:443", "httpinfo2.dbcwallet.io:7788")
    assert found.terminating_rental
    conf.write_text("http_port=5002\n")
    assert read_core_conf(conf).hosts == () and not read_core_conf(conf).terminating_rental
