"""SDK framing: the manual's own example, and garbage handling."""

import pytest

from boot_hooks.sdk_transport import SdkUnavailable, decode_body, encode_frame


def test_manual_example_header():
    # DeepLinkSDK-Win docs/sdk_user_manual.md §1: a 105-byte body has header 69 00 00 00.
    body = (b'{"data":{"device_id":"112233","online_state":4,"password":"123456"},'
            b'"method":"setDeviceInfo","version":1}')
    assert len(body) == 105
    message = decode_body(body)
    frame = encode_frame(message)
    assert frame[:4] == bytes([0x69, 0, 0, 0])
    assert decode_body(frame[4:]) == message


def test_utf8_bodies_count_bytes_not_characters():
    frame = encode_frame({"method": "auth", "data": {"id": "四川网吧001"}})
    assert int.from_bytes(frame[:4], "little") == len(frame) - 4


@pytest.mark.parametrize("body", [b"", b"not json", b"[1,2]", b"\xff\xfe", b'"text"'])
def test_garbage_bodies_are_sdk_unavailable(body):
    with pytest.raises(SdkUnavailable):
        decode_body(body)


def test_frame_buffer_handles_split_and_coalesced_frames():
    from boot_hooks.sdk_transport import _FrameBuffer

    first = encode_frame({"method": "getDeviceInfo", "code": 0})
    second = encode_frame({"method": "deviceInfoChanged", "data": {}})
    frames = _FrameBuffer()
    frames.feed(first[:2])
    assert frames.pop() is None
    frames.feed(first[2:7])
    assert frames.pop() is None
    frames.feed(first[7:] + second)
    assert frames.pop()["method"] == "getDeviceInfo"
    assert frames.pop()["method"] == "deviceInfoChanged"
    assert frames.pop() is None


def test_frame_buffer_refuses_a_giant_header():
    from boot_hooks.sdk_transport import _FrameBuffer

    frames = _FrameBuffer()
    frames.feed(b"\xff\xff\xff\xff")
    with pytest.raises(SdkUnavailable, match="byte frame"):
        frames.pop()
