"""The request envelope checks (docs/protocol.md §2.3-2.4, ``parse_req_params``)."""

from __future__ import annotations

import pytest

from baremetal.emulator.envelope import (
    ReqBody,
    SignItem,
    check_multisig_wallets,
    parse_json_body,
    parse_req_params,
    renter_precheck,
)
from baremetal.emulator.http_bare_metal import split_path
from baremetal.emulator.replies import Reply

BASE = {"peer_nodes_list": [], "additional": {}}


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        ({"additional": {}}, "has no peer_nodes_list"),
        ({"peer_nodes_list": "x", "additional": {}}, "peer_nodes_list is not array"),
        ({"peer_nodes_list": []}, "has no additional"),
        ({"peer_nodes_list": [], "additional": []}, "additional is not object"),
        ({**BASE, "wallet": 1}, "wallet is not string"),
        ({**BASE, "nonce": None}, "nonce is not string"),
        ({**BASE, "sign": {}}, "sign is not string"),
        ({**BASE, "multisig_accounts": []}, "multisig_accounts is not object"),
        ({**BASE, "multisig_accounts": {}}, "multisig_accounts has no member wallets"),
        ({**BASE, "multisig_accounts": {"wallets": [], "threshold": 2, "signs": []}},
         "multisig_accounts member threshold is not string"),
        ({**BASE, "multisig_accounts": {"wallets": [], "threshold": "1"}},
         "multisig_accounts has no member signs"),
        ({**BASE, "session_id": 5}, "session_id is not string"),
        ({**BASE, "session_id_sign": 5}, "session_id_sign is not string"),
        ({**BASE, "rent_order": 7}, "rent_order is not string"),
    ],
)
def test_parse_req_params_errors(doc, error):
    assert parse_req_params(doc) == error


def test_only_first_peer_is_kept_and_threshold_is_atoi():
    body = parse_req_params({**BASE, "peer_nodes_list": ["a", "b"], "multisig_accounts": {
        "wallets": ["w1", "w2"], "threshold": " 2xyz", "signs": [{"wallet": "w1"}]}})
    assert isinstance(body, ReqBody)
    assert body.peer_nodes_list == ["a"]
    assert body.multisig_threshold == 2
    assert body.multisig_signs == [SignItem("w1", "", "")]


def test_body_checks_in_order():
    empty = parse_json_body(b"")
    assert isinstance(empty, Reply) and b"http request body is empty" in empty.body
    broken = parse_json_body(b"{")
    assert isinstance(broken, Reply) and b"json parse error: Missing a name" in broken.body
    array = parse_json_body(b"[]")
    assert isinstance(array, Reply) and b'"invalid json"' in array.body


def test_multisig_precheck_compares_unsigned():
    body = ReqBody(multisig_threshold=-1)
    assert not check_multisig_wallets(body)  # -1 as size_t is huge
    assert check_multisig_wallets(ReqBody())  # no multisig: threshold 0 passes vacuously
    assert renter_precheck(ReqBody(multisig_threshold=-1)) is not None
    assert renter_precheck(ReqBody(session_id="s", session_id_sign="x",
                                   multisig_threshold=-1)) is None


@pytest.mark.parametrize(
    ("path", "segments"),
    [("", []), ("/", []), ("XYZ", ["XYZ"]), ("/a/", ["a"]), ("/a//b", ["a", "", "b"]),
     ("/a?x=1/2", ["a"]), ("?q", []), ("/modify/", ["modify"])],
)
def test_split_path_like_url_util(path, segments):
    assert split_path(path) == segments
