"""rapidjson-compatible parsing and pretty printing (docs/protocol.md §2.3, §2.5)."""

from __future__ import annotations

import pytest

from baremetal.emulator import rjson


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        (b"", rjson.EMPTY, 0),
        (b"   ", rjson.EMPTY, 3),
        (b"{} x", rjson.NOT_SINGULAR, 3),
        (b"{", rjson.MISS_NAME, 1),
        (b'{"a" 1}', rjson.MISS_COLON, 5),
        (b'{"a":}', rjson.VALUE_INVALID, 5),
        (b'{"a":1 "b":2}', rjson.MISS_COMMA_CURLY, 7),
        (b'{"a":1,}', rjson.MISS_NAME, 7),
        (b"[1 2]", rjson.MISS_COMMA_SQUARE, 3),
        (b"tru", rjson.VALUE_INVALID, 3),
        (b"-x", rjson.VALUE_INVALID, 1),
        (b"1.", rjson.MISS_FRACTION, 2),
        (b"1e+", rjson.MISS_EXPONENT, 3),
        (b'"ab', rjson.MISS_QUOTE, 3),
        (b'"a\x01"', rjson.BAD_ENCODING, 2),
        (b'"\\x"', rjson.BAD_ESCAPE, 1),
        (b'"\\u12g4"', rjson.BAD_HEX, 1),
        (b'"\\ud800x"', rjson.BAD_SURROGATE, 1),
        (b"1e400", rjson.TOO_BIG, 0),
        (b'{"a":1}\0garbage', None, None),
        (b"\0{}", rjson.EMPTY, 0),
    ],
)
def test_parse_errors_match_rapidjson(text, message, offset):
    if message is None:
        assert rjson.parse(text) == {"a": 1}
        return
    with pytest.raises(rjson.JsonParseError) as info:
        rjson.parse(text)
    assert (info.value.message, info.value.offset) == (message, offset)


def test_values_and_duplicate_keys_keep_first():
    doc = rjson.parse(b'{"a":1,"a":2,"b":[true,false,null,1.5,-0,"\\u00e9\\ud83d\\ude00"]}')
    assert doc == {"a": 1, "b": [True, False, None, 1.5, 0, "é😀"]}


def test_is_uint_like_rapidjson():
    assert rjson.is_uint(rjson.parse(b"623"))
    assert rjson.is_uint(rjson.parse(b"-0"))
    assert not rjson.is_uint(rjson.parse(b"623.0"))
    assert not rjson.is_uint(rjson.parse(b"-1"))
    assert not rjson.is_uint(rjson.parse(b"4294967296"))


def test_invalid_utf8_round_trips():
    value = rjson.parse(b'"\xff\xfe"')
    assert value.encode("utf-8", errors="surrogateescape") == b"\xff\xfe"


def test_pretty_writer_format():
    assert rjson.pretty({"errcode": -25, "message": "a\"b\\c\n\x01/é"}) == (
        '{\n    "errcode": -25,\n    "message": "a\\"b\\\\c\\n\\u0001/é"\n}')
    assert rjson.pretty({"errcode": 0, "message": {"client_version": "0.4.1.8"}}) == (
        '{\n    "errcode": 0,\n    "message": {\n        "client_version": "0.4.1.8"\n    }\n}')
    assert rjson.pretty({"a": [], "b": {}, "c": [1, True]}) == (
        '{\n    "a": [],\n    "b": {},\n    "c": [\n        1,\n        true\n    ]\n}')
