"""Boot-hook request verification: ed25519 signature, freshness window, nonce replay, source IP."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nacl.signing
import pytest

from agent.api.errors import agent_error_status, error_class_status
from agent.config.settings import ConfigError
from agent.errors import BadSignature, ReplayedRequest, StaleRequest, WrongSourceIp
from agent.hook.signing import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    HookVerifier,
    canonical_request,
    check_source_ip,
    generate_hook_keypair,
    load_public_key,
    sign_request,
)
from agent.secrets import Secret
from agent.store import Store
from tests.support.clock import Clock

BODY = b'{"uuid":"gpu-01","device_id":"123456789","device_password":"654321"}'
TARGET = "/api/v1/hook/deeplink"


@pytest.fixture
def clock() -> Clock:
    return Clock(1_700_000_000.0)


@pytest.fixture
def store_sealer() -> None:
    """These tests run on a store that seals nothing."""
    return None


@pytest.fixture
def keys() -> tuple[Secret, str]:
    return generate_hook_keypair()


@pytest.fixture
def verifier(keys: tuple[Secret, str], store: Store, clock: Clock) -> HookVerifier:
    return HookVerifier(public_key=bytes.fromhex(keys[1]), nonces=store.nonces, window_s=300,
                        clock=clock)


def signed(keys: tuple[Secret, str], clock: Clock, *, nonce: str = "n0nce-0000000001",
           body: bytes = BODY, ts: float | None = None) -> dict[str, str]:
    stamp = int(clock.now if ts is None else ts)
    return sign_request(keys[0], method="POST", target=TARGET, body=body, nonce=nonce,
                        timestamp=stamp)


def verify(verifier: HookVerifier, headers: dict[str, str], *, method: str = "POST",
           target: str = TARGET, body: bytes = BODY) -> object:
    return verifier.verify(method=method, target=target, body=body,
                           timestamp=headers.get(HEADER_TIMESTAMP),
                           nonce=headers.get(HEADER_NONCE),
                           signature=headers.get(HEADER_SIGNATURE))


def test_canonical_request_is_the_documented_string() -> None:
    digest = hashlib.sha256(b"{}").hexdigest()
    assert canonical_request(method="post", target="/x?a=1", timestamp=12, nonce="abc",
                             body=b"{}") == f"POST\n/x?a=1\n12\nabc\n{digest}".encode()


def test_valid_request_passes_once(verifier: HookVerifier, keys: tuple[Secret, str],
                                   clock: Clock, store: Store) -> None:
    headers = signed(keys, clock)
    accepted = verify(verifier, headers)
    assert accepted.nonce == "n0nce-0000000001"  # type: ignore[attr-defined]
    with pytest.raises(ReplayedRequest):
        verify(verifier, headers)
    assert store.nonces.count() == 1


@pytest.mark.parametrize("change", [
    {"method": "PUT"}, {"target": "/api/v1/hook/other"}, {"body": BODY + b" "},
    {"body": b""},
])
def test_any_change_breaks_the_signature(verifier: HookVerifier, keys: tuple[Secret, str],
                                         clock: Clock, change: dict[str, object],
                                         store: Store) -> None:
    with pytest.raises(BadSignature):
        verify(verifier, signed(keys, clock), **change)  # type: ignore[arg-type]
    assert store.nonces.count() == 0  # unauthenticated requests never reach the nonce table


def test_other_key_and_malformed_headers(verifier: HookVerifier, clock: Clock) -> None:
    other = generate_hook_keypair()
    with pytest.raises(BadSignature, match="does not verify"):
        verify(verifier, signed(other, clock))
    good = signed(other, clock)
    for name, value in ((HEADER_TIMESTAMP, "12.5"), (HEADER_TIMESTAMP, None),
                        (HEADER_NONCE, "short"), (HEADER_NONCE, "bad nonce with spaces!"),
                        (HEADER_SIGNATURE, "zz" * 64), (HEADER_SIGNATURE, None)):
        headers = dict(good)
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
        with pytest.raises(BadSignature, match=name):
            verify(verifier, headers)


@pytest.mark.parametrize("offset", [-301, 301, -10_000])
def test_stale_or_future_timestamps(verifier: HookVerifier, keys: tuple[Secret, str],
                                    clock: Clock, offset: int) -> None:
    with pytest.raises(StaleRequest) as info:
        verify(verifier, signed(keys, clock, ts=clock.now + offset))
    assert info.value.window_s == 300 and abs(info.value.skew_s) >= 300


def test_edges_of_the_window_pass(verifier: HookVerifier, keys: tuple[Secret, str],
                                  clock: Clock) -> None:
    verify(verifier, signed(keys, clock, ts=clock.now - 300, nonce="edge-past-000001"))
    verify(verifier, signed(keys, clock, ts=clock.now + 300, nonce="edge-future-0001"))


def test_nonces_are_pruned_but_replays_stay_blocked(verifier: HookVerifier,
                                                    keys: tuple[Secret, str], clock: Clock,
                                                    store: Store) -> None:
    first = signed(keys, clock, ts=clock.now + 300)  # as far in the future as allowed
    verify(verifier, first)
    clock.now += 600  # the latest moment this timestamp is still inside the window
    with pytest.raises(ReplayedRequest):
        verify(verifier, first)
    clock.now += 1000
    verify(verifier, signed(keys, clock, nonce="later-nonce-0001"))  # triggers pruning
    assert store.nonces.count() == 1


def test_source_ip_check() -> None:
    check_source_ip(source_ip="192.168.1.11", server_ip="192.168.1.11", server_uuid="gpu-01")
    check_source_ip(source_ip="::ffff:192.168.1.11", server_ip="192.168.1.11",
                    server_uuid="gpu-01")
    with pytest.raises(WrongSourceIp) as info:
        check_source_ip(source_ip="192.168.1.99", server_ip="192.168.1.11",
                        server_uuid="gpu-01")
    assert agent_error_status(info.value) == 403 and "192.168.1.99" in str(info.value)


def test_public_key_file(tmp_path: Path, keys: tuple[Secret, str]) -> None:
    path = tmp_path / "hook.pub"
    path.write_text(f"# café hook key\n{keys[1]}\n")
    assert load_public_key(path) == bytes.fromhex(keys[1])
    assert nacl.signing.SigningKey(bytes.fromhex(keys[0].reveal())).verify_key.encode() == \
        bytes.fromhex(keys[1])
    path.write_text(f"hook_token_public={keys[1]}\n")
    assert load_public_key(path) == bytes.fromhex(keys[1])
    path.write_text("not a key\n")
    with pytest.raises(ConfigError, match=r"hook\.token_public_key"):
        load_public_key(path)
    with pytest.raises(ConfigError, match="unreadable"):
        load_public_key(tmp_path / "absent.pub")
    assert keys[0].reveal() not in repr(keys)


CONTRACT = json.loads((Path(__file__).parents[3] / "contract" / "hook_relay.json").read_text())


@pytest.mark.parametrize("endpoint", ["deeplink", "whoami", "enroll", "report"])
def test_contract_examples_verify(store: Store, clock: Clock, endpoint: str) -> None:
    request = CONTRACT["endpoints"][endpoint]["request"]
    # whoami and deeplink are signed by the PC's seat key (named in X-BM-Seat-Key).
    signer = CONTRACT["example_seat_key" if "X-BM-Seat-Key" in request["headers"]
                      else "example_token"]
    public = bytes.fromhex(signer["public_key_hex"])
    headers = request["headers"]
    clock.now = float(headers[HEADER_TIMESTAMP])
    body = request["body"].encode()
    assert canonical_request(method=request["method"], target=request["target"],
                             timestamp=int(headers[HEADER_TIMESTAMP]),
                             nonce=headers[HEADER_NONCE],
                             body=body) == request["canonical_string"].encode()
    checker = HookVerifier(public_key=public, nonces=store.nonces,
                           window_s=CONTRACT["signing"]["window_s"], clock=clock)
    verify(checker, headers, method=request["method"], target=request["target"], body=body)
    with pytest.raises(ReplayedRequest) as info:
        verify(checker, headers, method=request["method"], target=request["target"], body=body)
    assert (info.value.code, agent_error_status(info.value)) == ("replayed", 409)
    seed = Secret(signer["seed_hex"])
    ours = sign_request(seed, method=request["method"], target=request["target"], body=body,
                        nonce=headers[HEADER_NONCE], timestamp=int(headers[HEADER_TIMESTAMP]))
    assert ours == {k: headers[k] for k in (HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)}


def test_error_codes_and_statuses_match_the_contract() -> None:
    wire = {(r["body"]["error"]["code"], r["status"])
            for r in CONTRACT["endpoints"]["deeplink"]["responses"] if r["status"] != 200}
    for cls in (BadSignature, StaleRequest, ReplayedRequest, WrongSourceIp):
        assert (cls.code, error_class_status(cls)) in wire
