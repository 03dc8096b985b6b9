"""The one label grammar (agent/labels.py): parsing and matching, table-driven."""

from __future__ import annotations

import pytest

from agent.errors import ValidationError
from agent.labels import matches, parse_selector, split_pairs
from agent.registry.inventory import parse_labels

SERVERS = {
    "pc-1": {"zone": "VIP", "row": "A"},
    "pc-2": {"zone": "vip", "row": "B"},
    "pc-3": {"zone": "std", "row": "A"},
    "pc-4": {"tag": "gamer"},
}


@pytest.mark.parametrize(("selector", "parsed", "expected"), [
    ("Zone=VIP", {"zone": "VIP"}, {"pc-1", "pc-2"}),
    ("zone=vip,row=A", {"zone": "vip", "row": "A"}, {"pc-1"}),
    ("row=A;zone=vip", {"row": "A", "zone": "vip"}, {"pc-1"}),
    ("gamer", {"tag": "gamer"}, {"pc-4"}),
    ("zone=vip,", {"zone": "vip"}, {"pc-1", "pc-2"}),
    ("zone=vip;floor=2", {"zone": "vip", "floor": "2"}, set()),
])
def test_selector_parses_and_matches(selector, parsed, expected) -> None:
    assert parse_selector(selector) == parsed
    assert {u for u, labels in SERVERS.items() if matches(labels, parsed)} == expected


def test_import_and_selector_share_the_grammar() -> None:
    for text in ("Zone=VIP;Row=A", "zone=vip,row=B", "gamer", " a = 1 ; b=2 "):
        assert parse_labels(text) == parse_selector(text)


@pytest.mark.parametrize("bad", ["", " , ; ", "=vip", "zone name=vip", "zone=" + "v" * 65,
                                 "z" * 33 + "=v"])
def test_bad_selector_is_a_validation_error(bad) -> None:
    with pytest.raises(ValidationError) as info:
        parse_selector(bad)
    assert info.value.field == "label"


def test_split_keeps_the_raw_part_for_the_import_checks() -> None:
    [pair] = split_pairs(" Zone = VIP\u2066")
    assert (pair.key, pair.value, pair.raw) == ("zone", "VIP\u2066", " Zone = VIP\u2066")
