"""DeepLink LAN frame codec: framing, limits, the node's header and buffer quirks, fuzzing."""

from __future__ import annotations

import contextlib
import itertools
import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baremetal.errors import BaremetalError, FrameDecodeError, FrameTooLarge, LanFrameError
from baremetal.lanframe import (
    HEADER_LEN,
    MAX_BODY,
    FrameDecoder,
    StaleBodyBuffer,
    encode_frame,
    encode_header,
    node_header_length,
    parse_message,
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _feed_all(decoder: FrameDecoder, pieces: list[bytes]) -> list[bytes]:
    return [body for piece in pieces for body in decoder.feed(piece)]


# --- encoding -----------------------------------------------------------------------


def test_header_is_little_endian_uint32() -> None:
    assert encode_frame(b"abc") == b"\x03\x00\x00\x00abc"
    assert encode_header(0x01020304) == b"\x04\x03\x02\x01"


def test_object_is_compact_utf8_json() -> None:
    frame = encode_frame({"method": "setDeviceInfo", "data": {"device_id": "设备1"}})
    body = '{"method":"setDeviceInfo","data":{"device_id":"设备1"}}'.encode()
    assert frame == struct.pack("<I", len(body)) + body


def test_body_of_512_bytes_fits_and_513_does_not() -> None:
    assert len(encode_frame(b"x" * MAX_BODY)) == HEADER_LEN + MAX_BODY
    with pytest.raises(FrameTooLarge) as info:
        encode_frame(b"x" * (MAX_BODY + 1))
    assert (info.value.length, info.value.limit) == (513, 512)


def test_errors_sit_under_the_package_root() -> None:
    assert issubclass(FrameTooLarge, LanFrameError)
    assert issubclass(FrameDecodeError, LanFrameError)
    assert issubclass(LanFrameError, BaremetalError)


def test_node_safe_frame_ends_with_nul_inside_the_counted_length() -> None:
    frame = encode_frame({"a": 1}, node_safe=True)
    assert frame == b"\x08\x00\x00\x00" + b'{"a":1}\0'


def test_node_safe_frame_pads_lengths_the_node_reads_as_zero() -> None:
    raw = b"y" * 255  # + NUL = 256, whose header reads as 0 through strncat
    frame = encode_frame(raw, node_safe=True)
    assert frame[HEADER_LEN:] == raw + b" \0"
    assert node_header_length(frame[:HEADER_LEN]) == 257


def test_node_safe_frame_stops_at_511_bytes() -> None:
    assert len(encode_frame(b"z" * 510, node_safe=True)) == HEADER_LEN + 511
    with pytest.raises(FrameTooLarge):
        encode_frame(b"z" * 511, node_safe=True)  # + NUL = 512, which reads as 0


# --- the node's strncat header ------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "length"),
    [
        (encode_header(100), 100),
        (encode_header(255), 255),
        (encode_header(256), 0),  # low byte NUL: nothing is copied
        (encode_header(257), 257),
        (encode_header(511), 511),
        (encode_header(512), 0),
        (encode_header(513), 513),
        (b"\x05\x00\x00\x01", 5),  # 16777221 reads as 5
        (b"\x00\xff\xff\xff", 0),
    ],
)
def test_node_header_length_stops_at_the_first_nul(header: bytes, length: int) -> None:
    assert node_header_length(header) == length


def test_node_quirk_decoder_reads_a_256_header_as_an_empty_body() -> None:
    decoder = FrameDecoder(node_header_quirk=True)
    body = b"{" + b" " * 254 + b"}"
    # The empty body comes first; the real body's first 4 bytes are then a header.
    with pytest.raises(FrameTooLarge):
        decoder.feed(encode_header(256) + body)


def test_plain_decoder_reads_the_same_frame_cleanly() -> None:
    body = b"{" + b" " * 254 + b"}"
    assert FrameDecoder().feed(encode_header(256) + body) == [body]


# --- incremental decoding -----------------------------------------------------------


def test_decoder_handles_byte_by_byte_input() -> None:
    frames = encode_frame({"a": 1}) + encode_frame(b"") + encode_frame({"b": "2"})
    decoder = FrameDecoder()
    bodies = _feed_all(decoder, [frames[i : i + 1] for i in range(len(frames))])
    assert bodies == [b'{"a":1}', b"", b'{"b":"2"}']
    assert decoder.buffered == 0


def test_oversize_header_raises_after_the_bodies_before_it_and_stays_failed() -> None:
    decoder = FrameDecoder()
    decoder.push(encode_frame(b"{}") + encode_header(513) + b"x" * 10)
    assert decoder.pop() == b"{}"
    with pytest.raises(FrameTooLarge) as info:
        decoder.pop()
    assert info.value.length == 513
    with pytest.raises(FrameTooLarge):
        decoder.feed(encode_frame(b"{}"))


def test_huge_header_is_refused_without_waiting_for_the_body() -> None:
    with pytest.raises(FrameTooLarge):
        FrameDecoder().feed(b"\xff\xff\xff\xff")


# --- the node's re-used body buffer ---------------------------------------------------


def test_shorter_message_keeps_the_stale_tail() -> None:
    buffer = StaleBodyBuffer()
    assert buffer.overlay(b'{"password":"longer1"}') == b'{"password":"longer1"}'
    assert buffer.overlay(b'{"a":1}') == b'{"a":1}ord":"longer1"}'
    with pytest.raises(FrameDecodeError):
        parse_message(buffer.overlay(b'{"a":1}'))


def test_empty_body_replays_the_previous_message() -> None:
    buffer = StaleBodyBuffer()
    buffer.overlay(b'{"a":1}')
    assert buffer.overlay(b"") == b'{"a":1}'


# --- parsing --------------------------------------------------------------------------


def test_parse_message_stops_at_nul() -> None:
    assert parse_message(b'{"a":1}\0garbage') == {"a": 1}


@pytest.mark.parametrize(
    "body", [b"[1,2]", b'"s"', b"", b"{", b"\xff\xfe", b'{"a":NaN}', b"{}{}", b"null"]
)
def test_parse_message_refuses_what_is_not_one_object(body: bytes) -> None:
    with pytest.raises(FrameDecodeError):
        parse_message(body)


def test_parse_error_never_quotes_the_body() -> None:
    with pytest.raises(FrameDecodeError) as info:
        parse_message(b'{"password":"Secret123"')
    assert "Secret123" not in str(info.value)


# --- property tests -------------------------------------------------------------------

_bodies = st.lists(st.binary(max_size=MAX_BODY), max_size=8)
_cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=20)
_json_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
_messages = st.dictionaries(
    st.sampled_from(["method", "data", "device_id", "password", "x"]),
    st.one_of(_json_text, st.integers(), st.booleans(), st.none()),
    max_size=4,
)


@given(_bodies, _cuts)
def test_any_bodies_round_trip_through_any_chunking(bodies: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(body) for body in bodies)
    assert _feed_all(FrameDecoder(), _chunks(stream, cuts)) == bodies


@given(st.binary(max_size=2048), _cuts, st.booleans())
def test_garbage_only_ever_raises_frame_too_large(
    data: bytes, cuts: list[int], quirk: bool
) -> None:
    decoder = FrameDecoder(node_header_quirk=quirk)
    try:
        for body in _feed_all(decoder, _chunks(data, cuts)):
            assert len(body) <= MAX_BODY
    except FrameTooLarge as exc:
        assert exc.length > MAX_BODY
    assert decoder.buffered < HEADER_LEN + MAX_BODY + 2048


@given(st.binary(max_size=600))
def test_parse_message_only_ever_raises_frame_decode_error(body: bytes) -> None:
    with contextlib.suppress(FrameDecodeError):
        assert isinstance(parse_message(body), dict)


@settings(max_examples=200)
@given(st.lists(_messages, min_size=1, max_size=6), _cuts)
def test_node_safe_frames_survive_both_node_quirks(
    messages: list[dict[str, object]], cuts: list[int]
) -> None:
    stream = b"".join(encode_frame(m, node_safe=True) for m in messages)
    decoder = FrameDecoder(node_header_quirk=True)
    buffer = StaleBodyBuffer()
    seen = [json.loads(buffer.overlay(b)) for b in _feed_all(decoder, _chunks(stream, cuts))]
    assert seen == messages
