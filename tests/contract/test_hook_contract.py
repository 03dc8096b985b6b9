"""Pin the hook <-> agent relay contract (tests/contract/hook_relay.json) on the hook side.

The agent implements the other side of the same file; its endpoint test should load
hook_relay.json too, so a change on either side breaks a test here or there.
"""

import hashlib
import json
from pathlib import Path
from urllib.parse import urlencode

import nacl.signing
import pytest

from boot_hooks.errors import ExitCode
from boot_hooks.relay import (
    DEEPLINK_PATH,
    ENROLL_PATH,
    REPORT_PATH,
    SEAT_KEY_HEADER,
    WHOAMI_PATH,
    SeatSigner,
    TokenSigner,
    _Answer,
    _error_for,
    canonical_string,
    encode_body,
)

CONTRACT = json.loads((Path(__file__).parent / "hook_relay.json").read_text())
TOKEN = CONTRACT["example_token"]
SEAT = CONTRACT["example_seat_key"]
ENDPOINTS = CONTRACT["endpoints"]


def test_example_token_pair():
    signer = TokenSigner(TOKEN["seed_hex"])
    assert signer.public_key_hex == TOKEN["public_key_hex"]


def signer_for(request):
    """enroll: the café token; whoami and deeplink: the PC's seat key (named in a header)."""
    if SEAT_KEY_HEADER in request["headers"]:
        return SeatSigner(SEAT["seed_hex"]), SEAT["public_key_hex"]
    return TokenSigner(TOKEN["seed_hex"]), TOKEN["public_key_hex"]


def test_example_seat_key_pair_and_fingerprint():
    signer = SeatSigner(SEAT["seed_hex"])
    assert signer.public_key_hex == SEAT["public_key_hex"]
    assert signer.fingerprint == SEAT["fingerprint"]


def test_enroll_is_signed_by_the_token_and_the_rest_by_the_seat_key():
    assert CONTRACT["signing"]["headers"]["seat_key"] == SEAT_KEY_HEADER
    assert SEAT_KEY_HEADER not in ENDPOINTS["enroll"]["request"]["headers"]
    for name in ("whoami", "deeplink", "report"):
        assert ENDPOINTS[name]["request"]["headers"][SEAT_KEY_HEADER] == SEAT["public_key_hex"]
    assert json.loads(ENDPOINTS["enroll"]["request"]["body"]) == {
        "seat_key": SEAT["public_key_hex"]}


def test_paths():
    assert ENDPOINTS["enroll"]["request"]["target"] == ENROLL_PATH
    assert ENDPOINTS["deeplink"]["request"]["target"] == DEEPLINK_PATH
    assert ENDPOINTS["whoami"]["request"]["target"].split("?")[0] == WHOAMI_PATH
    assert ENDPOINTS["report"]["request"]["target"] == REPORT_PATH


@pytest.mark.parametrize("name", ["deeplink", "enroll", "report"])
def test_hook_encodes_the_deeplink_body_byte_for_byte(name):
    body = ENDPOINTS[name]["request"]["body"]
    assert encode_body(json.loads(body)) == body.encode("utf-8")


def test_empty_body_digest():
    assert hashlib.sha256(b"").hexdigest() == CONTRACT["signing"]["empty_body_sha256"]


@pytest.mark.parametrize("name", ["deeplink", "whoami", "enroll", "report"])
def test_hook_builds_the_canonical_string_and_signature(name):
    request = ENDPOINTS[name]["request"]
    headers = request["headers"]
    body = request["body"].encode("utf-8")
    text = canonical_string(request["method"], request["target"], headers["X-BM-Timestamp"],
                            headers["X-BM-Nonce"], body)
    assert text == request["canonical_string"]
    signed = signer_for(request)[0].headers(
        request["method"], request["target"], body, int(headers["X-BM-Timestamp"]),
        headers["X-BM-Nonce"],
    )
    # ed25519 is deterministic: the example signature is exact.
    assert signed["X-BM-Signature"] == headers["X-BM-Signature"]
    assert signed["X-BM-Timestamp"] == headers["X-BM-Timestamp"]
    assert signed["X-BM-Nonce"] == headers["X-BM-Nonce"]
    assert signed.get(SEAT_KEY_HEADER) == headers.get(SEAT_KEY_HEADER)


@pytest.mark.parametrize("name", ["deeplink", "whoami", "enroll", "report"])
def test_example_signature_verifies_as_the_agent_would(name):
    request = ENDPOINTS[name]["request"]
    key = nacl.signing.VerifyKey(bytes.fromhex(signer_for(request)[1]))
    key.verify(request["canonical_string"].encode("utf-8"),
               bytes.fromhex(request["headers"]["X-BM-Signature"]))


def test_whoami_query_is_what_the_hook_sends():
    target = ENDPOINTS["whoami"]["request"]["target"]
    query = urlencode({"ip": "192.168.1.23", "mac": "00:1a:2b:3c:4d:5e"})
    assert target == f"{WHOAMI_PATH}?{query}"


def test_header_formats():
    headers = ENDPOINTS["deeplink"]["request"]["headers"]
    assert headers["X-BM-Timestamp"].isdigit()
    assert len(headers["X-BM-Nonce"]) == 32 and int(headers["X-BM-Nonce"], 16) >= 0
    assert len(headers["X-BM-Signature"]) == 128


@pytest.mark.parametrize("example", [r for name in ("deeplink", "enroll")
                                     for r in ENDPOINTS[name]["responses"]
                                     if r["status"] >= 400])
def test_each_error_answer_gives_the_documented_exit_code(example):
    exc = _error_for(_Answer(example["status"], example["body"], None))
    assert exc.exit_code == ExitCode(example["exit_code"])
    assert example["body"]["error"]["code"] in str(exc)


def test_error_codes_are_distinct_per_meaning():
    codes = [(r["status"], r["body"]["error"]["code"])
             for r in ENDPOINTS["deeplink"]["responses"] if r["status"] != 200]
    assert len(codes) == len(set(codes))


def test_confirmed_answer_shape():
    ok = ENDPOINTS["deeplink"]["responses"][0]
    assert ok["status"] == 200
    # Version 2: the relay never returns DeepLink's device_id (issue 10, finding 2).
    assert set(ok["body"]) == {"status", "rotated_at"}
    assert ok["body"]["status"] == "confirmed"


def test_enroll_answers_pending_then_approved():
    answers = {r["status"]: r for r in ENDPOINTS["enroll"]["responses"] if r["status"] < 300}
    assert answers[202]["body"] == {"status": "pending"}
    assert answers[202]["exit_code"] == ExitCode.AWAITING_APPROVAL
    assert answers[200]["body"] == {"status": "approved"}


def test_no_answer_carries_a_device_id():
    for endpoint in ENDPOINTS.values():
        for answer in endpoint["responses"]:
            assert "device_id" not in answer["body"]


def test_no_real_secret_in_the_contract_file():
    # The example seed is derived from a public phrase, never a café's token.
    phrase = hashlib.sha256(b"bm-hook contract example token").hexdigest()
    assert TOKEN["seed_hex"] == phrase
    assert SEAT["seed_hex"] == hashlib.sha256(b"bm-hook contract example seat key").hexdigest()


# --- version 3: failure reports (boot_hooks/report.py) ------------------------------------


def test_version_3_has_the_report_endpoint():
    assert CONTRACT["version"] == 3
    report = ENDPOINTS["report"]
    assert report["request"]["method"] == "POST"
    assert "approved or pending" in report["request"]["signed_by"]
    accepted = [r for r in report["responses"] if r["status"] < 300]
    assert accepted == [report["responses"][0]] and accepted[0]["status"] == 202
    assert accepted[0]["body"] == {"status": "recorded"}


def test_a_report_the_hook_builds_has_exactly_the_contracts_fields():
    from boot_hooks.config import HookConfig
    from boot_hooks.errors import DeepLinkDown
    from boot_hooks.report import FailureReports

    reports = FailureReports(HookConfig(agent_url="http://127.0.0.1:9"), lambda _s: None)
    built = reports._build(DeepLinkDown("DeepLink SDK not there\nafter 120 s"), 3)
    example = json.loads(ENDPOINTS["report"]["request"]["body"])
    assert set(built) == set(example) == set(ENDPOINTS["report"]["request"]["body_fields"])
    assert (built["exit_code"], built["error"], built["attempt"]) == (4, "deeplink_unreachable", 3)
    assert built["message"] == "DeepLink SDK not there after 120 s"  # one line
    for name, value in example.items():
        assert type(built[name]) is type(value) or {type(built[name]), type(value)} <= {int, float}


def test_every_exit_code_name_is_a_report_error():
    text = ENDPOINTS["report"]["request"]["body_fields"]["error"]
    for code in ExitCode:
        if code != ExitCode.OK:
            assert f"{code.name.lower()} ({int(code)})" in text


@pytest.mark.parametrize("example", [r for r in ENDPOINTS["report"]["responses"]
                                     if r["status"] >= 400])
def test_report_refusals_map_to_keep_or_drop(example):
    """400: the report itself is bad (dropped); anything else: kept for the next flush."""
    from boot_hooks.errors import ConfigError

    exc = _error_for(_Answer(example["status"], example["body"], None))
    dropped = isinstance(exc, ConfigError)
    assert dropped == (example["status"] == 400)
    assert ("drop" in example["hook"]) == dropped
