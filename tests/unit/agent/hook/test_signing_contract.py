"""The agent's hook-request verifier against the pinned contract (tests/contract/hook_relay.json).

The hook side of the same file is pinned by tests/contract/test_hook_contract.py; these
tests prove that agent.hook.signing accepts exactly what the shipped hook signs.
"""

import json
from pathlib import Path

import pytest

from agent.errors import BadSignature, ReplayedRequest, StaleRequest
from agent.hook.signing import HookVerifier, canonical_request, sign_request
from agent.secrets import Secret

CONTRACT = json.loads((Path(__file__).parents[3] / "contract" / "hook_relay.json").read_text())
TOKEN = CONTRACT["example_token"]
SEAT = CONTRACT["example_seat_key"]  # whoami and deeplink are signed by the PC's seat key
ENDPOINTS = CONTRACT["endpoints"]


@pytest.fixture
def store_sealer() -> None:
    """These tests run on a store that seals nothing."""
    return None


def signer_of(request):
    """The example's signing key: the seat key when it names one, else the café token."""
    return SEAT if "X-BM-Seat-Key" in request["headers"] else TOKEN


def verifier(store, now, request=None):
    keys = signer_of(request) if request else TOKEN
    return HookVerifier(public_key=bytes.fromhex(keys["public_key_hex"]), nonces=store.nonces,
                        window_s=CONTRACT["signing"]["window_s"], clock=lambda: now)


def verify(v, request, **override):
    headers = {**request["headers"], **override}
    return v.verify(method=request["method"], target=request["target"],
                    body=request["body"].encode("utf-8"),
                    timestamp=headers["X-BM-Timestamp"], nonce=headers["X-BM-Nonce"],
                    signature=headers["X-BM-Signature"])


@pytest.mark.parametrize("name", ["deeplink", "whoami", "enroll", "report"])
def test_canonical_string_is_the_contracts(name):
    request = ENDPOINTS[name]["request"]
    headers = request["headers"]
    built = canonical_request(method=request["method"], target=request["target"],
                              timestamp=int(headers["X-BM-Timestamp"]),
                              nonce=headers["X-BM-Nonce"], body=request["body"].encode())
    assert built == request["canonical_string"].encode("utf-8")


@pytest.mark.parametrize("name", ["deeplink", "whoami", "enroll", "report"])
def test_contract_example_verifies_once_then_is_a_replay(store, name):
    request = ENDPOINTS[name]["request"]
    v = verifier(store, int(request["headers"]["X-BM-Timestamp"]) + 5, request)
    accepted = verify(v, request)
    assert accepted.nonce == request["headers"]["X-BM-Nonce"]
    with pytest.raises(ReplayedRequest):
        verify(v, request)


def test_reference_signer_matches_the_contract_signature():
    request = ENDPOINTS["deeplink"]["request"]
    headers = sign_request(Secret(SEAT["seed_hex"]), method="POST", target=request["target"],
                           body=request["body"].encode(), nonce=request["headers"]["X-BM-Nonce"],
                           timestamp=int(request["headers"]["X-BM-Timestamp"]), seat=True)
    expected = {k: v for k, v in request["headers"].items() if k.startswith("X-BM-")}
    assert headers == expected


def test_window_is_checked_after_the_signature(store):
    request = ENDPOINTS["deeplink"]["request"]
    stamp = int(request["headers"]["X-BM-Timestamp"])
    window = CONTRACT["signing"]["window_s"]
    with pytest.raises(StaleRequest):
        verify(verifier(store, stamp + window + 1, request), request)
    # A bad signature wins over a stale timestamp and never reaches the nonce table.
    with pytest.raises(BadSignature):
        verify(verifier(store, stamp + window + 1, request), request,
               **{"X-BM-Signature": "00" * 64})
    assert store.nonces.count() == 0


def test_a_changed_body_byte_breaks_the_signature(store):
    request = dict(ENDPOINTS["deeplink"]["request"])
    request["body"] = request["body"].replace("Q7wK2mZ9pL4x", "Q7wK2mZ9pL4y")
    with pytest.raises(BadSignature):
        verify(verifier(store, int(request["headers"]["X-BM-Timestamp"]), request), request)
