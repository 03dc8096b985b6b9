"""sr25519 signing against the published vectors of docs/protocol.md §4.1, plus properties."""

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baremetal import signing
from baremetal.errors import SigningError

BM_PRIVATE = "4c2e7133834d6d7dd35088beda5556215f6f5b15d2cd3c3153f117aaeec2c28b"
BM_NODE_ID = "fcf2cd8b99958606d260ca00c5ac00c88c242bcf8eb38e7cc3f29e9719a73f39"
BOB_SEED = "398f0c28f98885e046333d4a41c19cee4c37368a9832c6502f6cfd182e2aef89"
BOB_PUBLIC = "8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48"
RENTER = "5Dy8ULx1De6u3WE9ixpy1VKK2CVssvsjQT15qcmQsG662Zj4"
RENTER_NONCE = "5q7KRn4d8EmXFFsim8vHBp23N2CpERbD2mWR3WCo1o3teZnGxYEh4N6"
RENTER_SIGN = (
    "2460725b2f5e737cd810c773be61b9b27c3b9dbdac4af9cf25c7be9949ad7202"
    "a0b7467f71ad843888f482662d3ae2e4fa566d3c1930a3fa90f3dcb97ea4098d"
)
SECOND_SIGNER = "5HgVTsXnUBmaL5F2RBjKmXMoAeG9Avuyk9tmgnnVx28u2ZrS"
SECOND_NONCE = "5t1mv263Qpnu5tk5xPDk86oXGUX8yXaYGpAWj2n6gU45HNmsQqLaAU7"
SECOND_SIGN = (
    "c494cc517f3c181fd7206d03175b5c0c29d162e53aa88c557887241d10445627"
    "2dc313501c8ae4e71dbcbae183942a119713974aff87aa1ef3870aa505be6384"
)
SESSION_ID = "3QRjS1PsbDReGJKVBBRqxUh9RqXB5jbfHJ8bMgGoJ3C9HHHHm9rCmmh"
SESSION_SIGN = (
    "ca89d0adb44a03c6f22a9205a06e22f682805f8c8ee25dd182e36ceb58189900"
    "1196ce94c40e2147247f967256d7e010318e4387853939d94ba99c81f16a358f"
)
# The wiki's bare-metal examples are placeholders: they must NOT verify.
PLACEHOLDER_MANAGER = "ccd9a2118ba3c95cd458302601f15281edc39d72dcf11a07527893d97ac1a573"
PLACEHOLDER_MANAGER_NONCE = "5tYLiAF9vVP8bRqSfV9DfZnizsDNY7dNeEWrSUAY8f1LKiZqBu8zaVs"
PLACEHOLDER_MANAGER_SIGN = (
    "3c680ba745af6695981fe2b30aedf6861749f570d9a6fe949930caf4613c225d"
    "4a674c33ec3d4af26c20caf871dd0f3a7cb4e0c045f12c211a345781054fc282"
)
PLACEHOLDER_SERVER_NONCE = "3bxrsXVW2z2ELH7G9RvF7BMUQkEGkBfQhd8YD5r8somf3UdNWcEYAFa"
PLACEHOLDER_SERVER_SIGN = (
    "e096764ac7462220bc9b8fa223b81cfb9a501eaea9ea355c0d561b6fe61cb729"
    "abed61e5d8488178856e198d9cde51c37e2aac8886cb5e7b674591b1eca8108f"
)


def test_published_bare_metal_key_derives_published_node_id():
    assert signing.node_id_from_private_key(BM_PRIVATE) == BM_NODE_ID


def test_substrate_dev_key_bob_derives_its_public_key():
    assert signing.node_id_from_private_key(BOB_SEED) == BOB_PUBLIC


def test_wiki_renter_signature_verifies_over_nonce():
    assert signing.verify(RENTER_SIGN, RENTER_NONCE, RENTER)


def test_wiki_second_multisig_signer_verifies():
    assert signing.verify(SECOND_SIGN, SECOND_NONCE, SECOND_SIGNER)


def test_wiki_session_id_sign_verifies():
    assert signing.verify(SESSION_SIGN, SESSION_ID, RENTER)


@pytest.mark.parametrize(
    ("sig", "nonce", "wallet"),
    [
        (PLACEHOLDER_MANAGER_SIGN, PLACEHOLDER_MANAGER_NONCE, PLACEHOLDER_MANAGER),
        (PLACEHOLDER_SERVER_SIGN, PLACEHOLDER_SERVER_NONCE, BM_NODE_ID),
    ],
)
def test_wiki_bare_metal_placeholder_signs_do_not_verify(sig, nonce, wallet):
    assert not signing.verify(sig, nonce, wallet)


def test_wiki_nonces_decode_to_lowercase_uuids():
    for nonce in (RENTER_NONCE, PLACEHOLDER_MANAGER_NONCE, SESSION_ID):
        text = signing.b58check_decode(nonce).decode()
        assert str(uuid.UUID(text)) == text


def test_make_nonce_reproduces_wiki_nonce():
    assert signing.make_nonce("a2abb402-29ae-4957-bf37-5961d529c1b8") == RENTER_NONCE


def test_make_nonce_is_fresh_base58check():
    first, second = signing.make_nonce(), signing.make_nonce()
    assert first != second
    assert uuid.UUID(signing.b58check_decode(first).decode())


def test_ss58_roundtrip_of_renter_wallet():
    public = signing.ss58_to_public_key(RENTER)
    assert signing.public_key_to_ss58(public) == RENTER


def test_ss58_with_bad_checksum_is_rejected():
    broken = RENTER[:-1] + ("5" if RENTER[-1] != "5" else "6")
    with pytest.raises(SigningError):
        signing.ss58_to_public_key(broken)
    assert not signing.verify(RENTER_SIGN, RENTER_NONCE, broken)


def test_signature_is_128_lowercase_hex():
    sig = signing.sign(BM_PRIVATE, "nonce")
    assert len(sig) == 128 and sig == sig.lower() and int(sig, 16) >= 0


def test_bad_private_key_is_a_signing_error_without_the_key_in_it():
    with pytest.raises(SigningError) as info:
        signing.sign("zz" + BM_PRIVATE[2:], "n")
    assert BM_PRIVATE[2:] not in str(info.value)


def test_new_keypair_is_consistent_and_repr_hides_secret():
    pair = signing.new_node_keypair()
    assert signing.node_id_from_private_key(pair.private_key) == pair.node_id
    assert pair.private_key not in repr(pair)


def test_verify_rejects_malformed_signature_and_wallet():
    assert not signing.verify("00" * 10, RENTER_NONCE, RENTER)
    assert not signing.verify("00" * 64, RENTER_NONCE, RENTER)
    assert not signing.verify(RENTER_SIGN, RENTER_NONCE, "not-a-wallet")


seeds = st.binary(min_size=32, max_size=32).map(bytes.hex)
messages = st.text(min_size=1, max_size=80)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, message=messages)
def test_sign_verify_roundtrip(seed, message):
    node_id = signing.node_id_from_private_key(seed)
    assert signing.verify(signing.sign(seed, message), message, node_id)
    ss58 = signing.public_key_to_ss58(bytes.fromhex(node_id))
    assert signing.verify(signing.sign(seed, message), message, ss58)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, other=seeds, message=messages, suffix=st.text(min_size=1, max_size=4))
def test_tampered_message_or_key_fails(seed, other, message, suffix):
    sig = signing.sign(seed, message)
    assert not signing.verify(sig, message + suffix, signing.node_id_from_private_key(seed))
    if other != seed:
        assert not signing.verify(sig, message, signing.node_id_from_private_key(other))
