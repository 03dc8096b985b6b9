"""Request models, auth types and small result helpers of the DBC client (pure)."""

from __future__ import annotations

import pytest

from baremetal.dbc.auth import MultisigAuth, MultisigSign, NodeKeyAuth, SessionAuth, WalletAuth
from baremetal.dbc.models import (
    DEEPLINK_PASSWORD_MAX_BYTES,
    BareMetalServer,
    DeepLinkInfo,
    NewServer,
    NodeVersion,
    PowerResult,
    RenterServerView,
    ServerChanges,
    is_masked,
)
from baremetal.errors import BaremetalError, InvalidInput, SigningError
from baremetal.signing import b58check_decode, public_key_to_ss58, verify

# Published pair (wiki dbc-bare-metal-node.md:137-138, verified in test_signing).
SERVER_KEY = "4c2e7133834d6d7dd35088beda5556215f6f5b15d2cd3c3153f117aaeec2c28b"
SERVER_ID = "fcf2cd8b99958606d260ca00c5ac00c88c242bcf8eb38e7cc3f29e9719a73f39"


def new_server(**overrides: object) -> NewServer:
    fields: dict[str, object] = {
        "uuid": "3156995b-da18-4268-9734-f8d168e90a7d", "ip": "127.0.0.5",
        "ipmi_hostname": "127.0.0.1", "ipmi_username": "admin", "ipmi_password": "s3cret-pw",
    }
    fields.update(overrides)
    return NewServer(**fields)  # type: ignore[arg-type]


def test_new_server_wire_form_omits_unset_port_and_keeps_empty_os_desc():
    assert new_server().to_wire() == {
        "uuid": "3156995b-da18-4268-9734-f8d168e90a7d", "ip": "127.0.0.5", "os": "", "desc": "",
        "ipmi_hostname": "127.0.0.1", "ipmi_username": "admin", "ipmi_password": "s3cret-pw",
    }
    assert new_server(ipmi_port=6230).to_wire()["ipmi_port"] == 6230


@pytest.mark.parametrize(("overrides", "needle"), [
    ({"uuid": ""}, "uuid must not be empty"),
    ({"uuid": "abc_def"}, "ASCII letters, digits and '-'"),
    ({"uuid": "ünï-code"}, "ASCII letters"),
    ({"ip": ""}, "ip must not be empty"),
    ({"ipmi_hostname": ""}, "ipmi_hostname must not be empty"),
    ({"ipmi_username": ""}, "ipmi_username must not be empty"),
    ({"ipmi_password": ""}, "ipmi_password must not be empty"),
    ({"ipmi_port": 0}, "1..65535"),
    ({"ipmi_port": 65536}, "1..65535"),
    ({"ipmi_port": True}, "1..65535"),
    ({"ipmi_port": "623"}, "1..65535"),
    ({"desc": 'a "quoted" desc'}, "unescaped"),
    ({"os": "back\\slash"}, "unescaped"),
    ({"ipmi_password": "tab\there"}, "unescaped"),
    ({"ip": 5}, "ip must be a string"),
])
def test_new_server_refuses_what_the_node_refuses(overrides, needle):
    with pytest.raises(InvalidInput, match=needle) as info:
        new_server(**overrides)
    assert isinstance(info.value, ValueError) and isinstance(info.value, BaremetalError)
    assert "s3cret-pw" not in str(info.value)


def test_new_server_accepts_digits_in_uuid_and_port_bounds():
    assert new_server(uuid="0123-ABCdef", ipmi_port=1).ipmi_port == 1
    assert new_server(ipmi_port=65535).ipmi_port == 65535


def test_secrets_are_not_in_reprs():
    server = BareMetalServer(
        node_id=SERVER_ID, uuid="u1", ip="127.0.0.5", os="", description="",
        ipmi_hostname="127.0.0.1", ipmi_username="admin-user", ipmi_password="pw-123456",
        node_private_key=SERVER_KEY, deeplink_device_id="111", deeplink_device_password="dl-pw-9",
    )
    texts = [
        repr(server), repr(new_server()), repr(ServerChanges(ipmi_password="pw-123456")),
        repr(DeepLinkInfo("111", "dl-pw-9")), repr(NodeKeyAuth(SERVER_KEY)),
        repr(WalletAuth("w", "n", "sig-777")), repr(SessionAuth("sid", "sig-777")),
        repr(RenterServerView(version="0.4.1.8", ip="i", os="o", description="d",
                              deeplink_device_id="111", deeplink_device_password="dl-pw-9")),
    ]
    for text in texts:
        for secret in ("s3cret-pw", "pw-123456", SERVER_KEY, "dl-pw-9", "sig-777", "admin-user"):
            assert secret not in text
    assert SERVER_ID in repr(NodeKeyAuth(SERVER_KEY))


def test_server_changes_only_sends_given_fields():
    assert ServerChanges(ip="127.0.0.9", ipmi_port=624).to_wire() == {
        "ip": "127.0.0.9", "ipmi_port": 624}


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({}, "nothing to change"),
    ({"desc": ""}, "desc must not be empty"),
    ({"uuid": "a b"}, "ASCII letters"),
    ({"ipmi_port": 70000}, "1..65535"),
    ({"os": 'x"y'}, "unescaped"),
])
def test_server_changes_validation(kwargs, needle):
    with pytest.raises(InvalidInput, match=needle):
        ServerChanges(**kwargs)


@pytest.mark.parametrize(("value", "masked"), [
    ("****", True), ("*", True), ("", False), (None, False), ("ab**", False), ("secret", False),
])
def test_is_masked(value, masked):
    assert is_masked(value) is masked


def test_masked_helpers_on_results():
    assert DeepLinkInfo("1", "******").password_masked
    assert not DeepLinkInfo("1", "abcdef").password_masked


@pytest.mark.parametrize(("message", "state"), [
    ("Chassis Power is on", "on"),
    ("Chassis Power is off", "off"),
    ("Power is on", "on"),
    ("Chassis Power Control: Up/On", None),
    ("", None),
])
def test_power_state_from_backend_text(message, state):
    assert PowerResult("status", message).power_state == state


def test_node_version_comparison():
    assert NodeVersion("0.4.1.8").parts == (0, 4, 1, 8)
    assert NodeVersion("0.4.1.8").at_least("0.4.1.7")
    assert not NodeVersion("0.4.1.6").at_least("0.4.1.7")
    assert NodeVersion("0.4.1.7").at_least("0.4.1.7")
    assert NodeVersion("N/A").parts == () and not NodeVersion("N/A").at_least("0.0.0.1")


def test_node_key_auth_signs_a_fresh_nonce_each_time():
    auth = NodeKeyAuth(SERVER_KEY)
    assert auth.node_id == SERVER_ID == auth.wallet
    first, second = auth.to_fields(), auth.to_fields()
    assert first["wallet"] == SERVER_ID
    assert first["nonce"] != second["nonce"]
    for fields in (first, second):
        b58check_decode(fields["nonce"])  # util::create_nonce, docs/protocol.md §4.2
        assert len(fields["sign"]) == 128 and fields["sign"] == fields["sign"].lower()
        assert verify(fields["sign"], fields["nonce"], SERVER_ID)


def test_node_key_auth_rejects_a_bad_key_early():
    with pytest.raises(SigningError):
        NodeKeyAuth("not-hex")


def test_multisig_threshold_is_a_json_string():
    wallet_a = public_key_to_ss58(bytes(range(32)))
    wallet_b = public_key_to_ss58(bytes(range(1, 33)))
    auth = MultisigAuth((wallet_a, wallet_b), 2,
                        (MultisigSign(wallet_a, "n1", "s1"), MultisigSign(wallet_b, "n2", "s2")))
    assert auth.to_fields() == {"multisig_accounts": {
        "wallets": [wallet_a, wallet_b], "threshold": "2",
        "signs": [{"wallet": wallet_a, "nonce": "n1", "sign": "s1"},
                  {"wallet": wallet_b, "nonce": "n2", "sign": "s2"}],
    }}


@pytest.mark.parametrize(("wallets", "threshold", "signers", "needle"), [
    (("a", "b"), 0, ("a",), "threshold"),
    (("a", "b"), 2, ("a",), "threshold"),
    (("a",), 2, ("a", "a"), "threshold"),
    (("a", "b"), 1, ("c",), "one of the wallets"),
    (("a", ""), 1, ("a",), "non-empty"),
])
def test_multisig_rules_match_the_node(wallets, threshold, signers, needle):
    signs = tuple(MultisigSign(w, "n", "s") for w in signers)
    with pytest.raises(InvalidInput, match=needle):
        MultisigAuth(wallets, threshold, signs)


@pytest.mark.parametrize("factory", [
    lambda: WalletAuth("", "n", "s"), lambda: WalletAuth("w", "n", ""),
    lambda: SessionAuth("", "x"), lambda: SessionAuth("sid", ""),
    lambda: MultisigSign("w", "", "s"),
])
def test_auth_fields_must_be_non_empty(factory):
    with pytest.raises(InvalidInput):
        factory()


def test_session_and_wallet_fields():
    assert SessionAuth("sid", "ssign").to_fields() == {
        "session_id": "sid", "session_id_sign": "ssign"}
    assert WalletAuth("5Gw", "nn", "ss").to_fields() == {"wallet": "5Gw", "nonce": "nn", "sign": "ss"}


def test_deeplink_password_budget_matches_the_512_byte_frame():
    frame = '{"method":"setDevicePassword","data":{"password":"%s"}}' % ("x" * DEEPLINK_PASSWORD_MAX_BYTES)
    assert len(frame) == 512


def test_package_exports_the_client_api():
    import baremetal

    assert len(set(baremetal.__all__)) == len(baremetal.__all__)
    for name in baremetal.__all__:
        assert getattr(baremetal, name) is not None
    assert baremetal.Client.__module__ == "baremetal.dbc.client"
