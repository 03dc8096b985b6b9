"""X-Forwarded-For from trusted proxies only: the right-most address nobody trusted added."""

from __future__ import annotations

import pytest

from agent.api.proxies import forwarded_client, is_trusted, parse_networks

TRUSTED = parse_networks(["127.0.0.5", "10.9.0.0/16"])


@pytest.mark.parametrize(("values", "client"), [
    (["192.168.1.23"], "192.168.1.23"),
    # forged multi-hop: the seat's IP claimed by the client, the attacker's added by the proxy
    (["192.168.1.23, 192.168.1.66"], "192.168.1.66"),
    (["192.168.1.23", "192.168.1.66"], "192.168.1.66"),  # two header lines, in order
    (["192.168.1.23, 10.9.3.4"], "192.168.1.23"),  # a second trusted hop is skipped
    (["10.9.0.1, 127.0.0.5"], "10.9.0.1"),  # only trusted proxies: the left-most
    (["::ffff:192.168.1.23"], "192.168.1.23"),
    ([" 192.168.1.23 ,, "], "192.168.1.23"),
    (["192.168.1.23, unknown"], ""),  # the deciding entry is garbage: unknown
    ([""], ""),
])
def test_forwarded_client(values, client):
    assert forwarded_client(values, TRUSTED) == client


def test_garbage_to_the_left_of_the_deciding_entry_does_not_matter():
    assert forwarded_client(["<script>, 192.168.1.66"], TRUSTED) == "192.168.1.66"


@pytest.mark.parametrize(("peer", "trusted"), [
    ("127.0.0.5", True), ("::ffff:127.0.0.5", True), ("10.9.200.1", True),
    ("127.0.0.1", False), ("", False), ("not-an-ip", False),
])
def test_is_trusted(peer, trusted):
    assert is_trusted(peer, TRUSTED) is trusted


def test_parse_networks_names_the_bad_entry():
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        parse_networks(["10.0.0.1", "10.0.0.300"])
    assert parse_networks(["", " "]) == ()
