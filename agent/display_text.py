r"""The one rule for free text staff type and the dashboard shows: no hidden characters.

A text-direction override (U+202E) makes the text after it display right to left, so a
description or label can look like something it is not; a control character or a line
separator breaks a one-line cell or a log line; a lone surrogate (JSON ``"\ud800"``)
cannot even be stored as UTF-8. ``hidden_character`` names the first such character
(as ``U+XXXX``, never echoing the text); inputs refuse the text when it finds one.
"""

from __future__ import annotations

import unicodedata

__all__ = ["BIDI_CONTROLS", "hidden_character", "visible"]

# Unicode bidi formatting characters (UAX #9): marks, embeddings, overrides, isolates.
BIDI_CONTROLS = frozenset(
    "\u061c"                                 # ARABIC LETTER MARK
    "\u200e\u200f"                           # LEFT-TO-RIGHT / RIGHT-TO-LEFT MARK
    "\u202a\u202b\u202c\u202d\u202e"         # LRE RLE PDF LRO RLO
    "\u2066\u2067\u2068\u2069"               # LRI RLI FSI PDI
)
# Control (C0, DEL, C1), surrogate, line and paragraph separator categories.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def hidden_character(text: str) -> str | None:
    """Return ``U+XXXX`` of the first control, bidi or separator character, else None."""
    for char in text:
        if char in BIDI_CONTROLS or unicodedata.category(char) in _HIDDEN_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def visible(text: str) -> str:
    """Return ``text`` with each hidden character written as ``<U+XXXX>`` (for echoing)."""
    if hidden_character(text) is None:
        return text
    return "".join(f"<U+{ord(c):04X}>" if hidden_character(c) else c for c in text)
