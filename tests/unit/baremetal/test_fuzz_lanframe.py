"""Fuzzing the DeepLink LAN frame parser against a one-shot reference decoder.

tests/unit/baremetal/test_lanframe.py already checks byte-level round trips and that garbage raises
only FrameTooLarge. Here: incremental decoding of any stream, cut anywhere, yields exactly
what a one-shot reference decoder yields for the bytes fed so far (valid frames followed by
garbage included); the failure is sticky; JSON messages of any shape round-trip through
frame + parse; and the whole pipeline (decoder then parse_message) raises nothing but
LanFrameError leaves.
"""

from __future__ import annotations

import itertools
import json
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baremetal.errors import FrameDecodeError, FrameTooLarge, LanFrameError
from baremetal.lanframe import (
    HEADER_LEN,
    MAX_BODY,
    FrameDecoder,
    encode_frame,
    node_header_length,
    parse_message,
)

pytestmark = pytest.mark.slow  # thousands of examples: `make test` runs them, `make check` not

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def reference_decode(stream: bytes, *, quirk: bool) -> tuple[list[tuple[int, bytes]], int | None]:
    """Decode a whole stream at once: (end offset, body) per frame, and where it fails."""
    frames: list[tuple[int, bytes]] = []
    pos = 0
    while len(stream) - pos >= HEADER_LEN:
        header = stream[pos:pos + HEADER_LEN]
        length = node_header_length(header) if quirk else struct.unpack("<I", header)[0]
        if length > MAX_BODY:
            return frames, pos + HEADER_LEN  # fails as soon as the header is complete
        end = pos + HEADER_LEN + length
        if end > len(stream):
            break
        frames.append((end, stream[pos + HEADER_LEN:end]))
        pos = end
    return frames, None


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _pop_all(decoder: FrameDecoder, out: list[bytes]) -> None:
    while (body := decoder.pop()) is not None:
        out.append(body)


_valid_frame = st.binary(max_size=MAX_BODY).map(encode_frame)
_garbage = st.binary(min_size=1, max_size=64)
_streams = st.lists(st.one_of(_valid_frame, _valid_frame, _garbage), max_size=8).map(b"".join)
_cuts = st.lists(st.integers(min_value=0, max_value=6000), max_size=30)


@FUZZ
@given(_streams, _cuts, st.booleans())
def test_incremental_decoding_matches_the_reference_at_every_cut(
        stream: bytes, cuts: list[int], quirk: bool) -> None:
    frames, fails_at = reference_decode(stream, quirk=quirk)
    decoder = FrameDecoder(node_header_quirk=quirk)
    got: list[bytes] = []
    fed = 0
    for piece in _cut(stream, cuts):
        fed += len(piece)
        try:
            decoder.push(piece)
            _pop_all(decoder, got)
        except FrameTooLarge as exc:
            assert fails_at is not None and fed >= fails_at and exc.length > MAX_BODY
            assert got == [body for _end, body in frames]
            return
        assert got == [body for end, body in frames if end <= fed]
        assert fails_at is None or fed < fails_at
    assert fails_at is None
    rest = len(stream) - (frames[-1][0] if frames else 0)  # an incomplete frame stays buffered
    assert decoder.buffered == (rest - HEADER_LEN if rest >= HEADER_LEN else rest)


@FUZZ
@given(st.binary(max_size=MAX_BODY), _garbage, st.booleans())
def test_after_an_oversize_header_every_call_fails_the_same_way(
        prefix: bytes, tail: bytes, quirk: bool) -> None:
    decoder = FrameDecoder(node_header_quirk=quirk)
    stream = encode_frame(prefix) + struct.pack("<I", 0x7F7F7F7F)  # no NUL: same for the quirk
    got: list[bytes] = []
    decoder.push(stream)
    with pytest.raises(FrameTooLarge):
        _pop_all(decoder, got)
    assert got == [prefix]
    for call in (lambda: decoder.push(tail), decoder.pop, lambda: decoder.feed(tail)):
        with pytest.raises(FrameTooLarge):
            call()


_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
_json = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12)
_messages = st.dictionaries(st.text(max_size=12), _json, max_size=5)


@FUZZ
@given(st.lists(_messages, min_size=1, max_size=5), _cuts)
def test_json_messages_of_any_shape_round_trip_or_are_refused_as_too_large(
        messages: list[dict[str, Any]], cuts: list[int]) -> None:
    frames = []
    for message in messages:
        body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
        if len(body) > MAX_BODY:
            with pytest.raises(FrameTooLarge):
                encode_frame(message)
            continue
        frames.append((encode_frame(message), message))
    decoder = FrameDecoder()
    bodies = [b for piece in _cut(b"".join(f for f, _m in frames), cuts)
              for b in decoder.feed(piece)]
    assert [parse_message(b) for b in bodies] == [m for _f, m in frames]


@FUZZ
@given(_streams, _cuts, st.booleans())
def test_decoder_then_parser_raise_only_lan_frame_errors(
        stream: bytes, cuts: list[int], quirk: bool) -> None:
    decoder = FrameDecoder(node_header_quirk=quirk)
    parsed = refused = 0
    try:
        for piece in _cut(stream, cuts):
            for body in decoder.feed(piece):
                try:
                    assert isinstance(parse_message(body), dict)
                    parsed += 1
                except FrameDecodeError as exc:
                    assert "not JSON" in str(exc) or "not an object" in str(exc)
                    refused += 1
    except LanFrameError:
        pass
    assert parsed + refused <= len(stream) // HEADER_LEN + 1
