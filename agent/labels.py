"""One grammar for server labels: CSV/JSON import, CLI, API, actions, seats, dashboard.

Grammar (documented once for users in docs/cli.md and docs/api.md, "Labels"):

- pairs ``key=value`` separated by ``,`` or ``;`` (``zone=vip,row=A`` and ``row=A;zone=vip``
  are the same two pairs); blanks around keys and values are dropped, empty parts skipped;
- a bare word means ``tag=word`` (``gamer`` is ``tag=gamer``);
- keys are lower-cased (``Zone`` is ``zone``) and must match ``[a-z0-9_-]{1,32}``; values are
  kept as typed, at most 64 characters;
- matching ignores case in keys and values; a selector matches the servers that carry
  every one of its pairs.

Pure: text in, pairs out; no I/O. The import turns a bad pair into its own row errors
(``bad_label``, ``hidden_character``); a selector turns it into ``ValidationError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from agent.display_text import visible
from agent.errors import ValidationError

__all__ = ["BARE_WORD_KEY", "LABEL_KEY", "VALUE_MAX", "LabelPair", "matches",
           "parse_selector", "split_pairs"]

LABEL_KEY = re.compile(r"[a-z0-9_-]{1,32}")
VALUE_MAX = 64
BARE_WORD_KEY = "tag"
_SEPARATORS = re.compile(r"[;,]")


@dataclass(frozen=True)
class LabelPair:
    """One ``key=value`` as parsed: key lower-cased, value as typed, and the raw part."""

    key: str
    value: str
    raw: str

    @property
    def valid(self) -> bool:
        """Whether the key has the allowed shape and the value is not too long."""
        return bool(LABEL_KEY.fullmatch(self.key)) and len(self.value) <= VALUE_MAX


def split_pairs(text: str) -> list[LabelPair]:
    """Split ``row=A;zone=vip,gamer`` into pairs (unchecked; see ``LabelPair.valid``)."""
    pairs = []
    for part in _SEPARATORS.split(text):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if sep:
            pairs.append(LabelPair(key.strip().lower(), value.strip(), part))
        else:
            pairs.append(LabelPair(BARE_WORD_KEY, key.strip(), part))
    return pairs


def parse_selector(text: str) -> dict[str, str]:
    """Parse a selector (``Zone=VIP,row=A``); ValidationError if a pair is bad or none given."""
    pairs = split_pairs(text)
    if not pairs:
        raise ValidationError(field="label", reason="expected key=value[,key=value], e.g. zone=vip")
    for pair in pairs:
        if not pair.valid:
            raise ValidationError(
                field="label", reason=f"bad label {visible(pair.raw.strip())[:40]!r}: "
                f"key [a-z0-9_-] (1-32), value up to {VALUE_MAX} characters")
    return {pair.key: pair.value for pair in pairs}


def matches(labels: Mapping[str, object], selector: Mapping[str, str]) -> bool:
    """Whether a server's labels carry every pair of the selector (case ignored)."""
    folded = {str(k).lower(): str(v).casefold() for k, v in labels.items()}
    return all(folded.get(k.lower()) == v.casefold() for k, v in selector.items())
