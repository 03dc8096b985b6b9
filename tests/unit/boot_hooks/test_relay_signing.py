"""Agent-mode request signing and answer mapping, without a network."""

import hashlib

import nacl.signing
import pytest

from boot_hooks.errors import (
    AuthRefused,
    AwaitingApproval,
    ConfigError,
    DeepLinkDown,
    ExitCode,
    NodeDown,
    NotConfirmed,
)
from boot_hooks.relay import (
    AgentNodeDown,
    AgentNotConnectedYet,
    AgentUnreachable,
    Replayed,
    SeatNotEnrolled,
    SeatSigner,
    StaleTimestamp,
    TokenSigner,
    _Answer,
    _error_for,
    canonical_string,
    encode_body,
)

SEED = "11" * 32


def test_canonical_string_layout():
    text = canonical_string("POST", "/api/v1/hook/deeplink", "1700000000", "ab" * 16, b"{}")
    assert text.split("\n") == [
        "POST", "/api/v1/hook/deeplink", "1700000000", "ab" * 16, hashlib.sha256(b"{}").hexdigest(),
    ]


def test_headers_verify_with_the_public_key():
    signer = TokenSigner(SEED)
    body = encode_body({"node_id": "a" * 64, "device_password": "abc123"})
    headers = signer.headers("POST", "/api/v1/hook/deeplink", body, 1700000000, "cd" * 16)
    assert headers["X-BM-Timestamp"] == "1700000000"
    assert headers["X-BM-Nonce"] == "cd" * 16
    assert len(headers["X-BM-Signature"]) == 128
    text = canonical_string("POST", "/api/v1/hook/deeplink", "1700000000", "cd" * 16, body)
    verify_key = nacl.signing.VerifyKey(bytes.fromhex(signer.public_key_hex))
    verify_key.verify(text.encode(), bytes.fromhex(headers["X-BM-Signature"]))


def test_signer_repr_shows_only_the_public_key():
    signer = TokenSigner(SEED)
    assert SEED not in repr(signer)
    assert signer.public_key_hex in repr(signer)


@pytest.mark.parametrize("seed", ["", "zz" * 32, "11" * 31])
def test_bad_token_seed_is_a_config_error(seed):
    with pytest.raises(ConfigError):
        TokenSigner(seed)


def test_body_encoding_is_compact_and_sorted():
    assert encode_body({"node_id": "n", "device_password": "p"}) == (
        b'{"device_password":"p","node_id":"n"}'
    )


def error(status, code="x", date=None):
    return _error_for(_Answer(status, {"error": {"code": code, "message": "m"}}, date))


@pytest.mark.parametrize(("status", "kind", "base"), [
    (400, ConfigError, ConfigError),
    (401, StaleTimestamp, AuthRefused),
    (403, AuthRefused, AuthRefused),
    (409, Replayed, AuthRefused),
    (502, AgentNodeDown, NodeDown),
    (503, AgentNotConnectedYet, DeepLinkDown),
    (504, NotConfirmed, NotConfirmed),
    (500, AgentUnreachable, NodeDown),
    (404, AgentUnreachable, NodeDown),
])
def test_answer_statuses_map_to_typed_errors(status, kind, base):
    exc = error(status)
    assert type(exc) is kind
    assert isinstance(exc, base)


def test_stale_timestamp_keeps_the_agent_clock():
    exc = error(401, "stale_timestamp", date=1767225600.0)
    assert isinstance(exc, StaleTimestamp) and exc.agent_time == 1767225600.0


@pytest.mark.parametrize(("status", "code", "kind", "exit_code"), [
    (403, "seat_not_enrolled", SeatNotEnrolled, ExitCode.AUTH_REFUSED),
    (403, "seat_pending", AwaitingApproval, ExitCode.AWAITING_APPROVAL),
    (409, "device_id_changed", AwaitingApproval, ExitCode.AWAITING_APPROVAL),
    (409, "too_many_pending", AwaitingApproval, ExitCode.AWAITING_APPROVAL),
    (403, "seat_rejected", AuthRefused, ExitCode.AUTH_REFUSED),
    (409, "replayed", Replayed, ExitCode.AUTH_REFUSED),
])
def test_seat_answers_map_to_actionable_errors(status, code, kind, exit_code):
    exc = error(status, code)
    assert type(exc) is kind and exc.exit_code == exit_code
    if kind is AwaitingApproval:
        assert "staff" in str(exc) and "dashboard" in str(exc)


def test_seat_signer_names_its_key_and_verifies():
    signer = SeatSigner("33" * 32)
    headers = signer.headers("GET", "/api/v1/hook/whoami", b"", 1700000000, "ef" * 16)
    assert headers["X-BM-Seat-Key"] == signer.public_key_hex
    text = canonical_string("GET", "/api/v1/hook/whoami", "1700000000", "ef" * 16, b"")
    nacl.signing.VerifyKey(bytes.fromhex(signer.public_key_hex)).verify(
        text.encode(), bytes.fromhex(headers["X-BM-Signature"]))
    assert "33" * 32 not in repr(signer) and len(signer.fingerprint) == 16
