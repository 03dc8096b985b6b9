"""The deeplink step's reopen loop (``read_local_deeplink``) over scripted channels."""

import json
import logging

import pytest

from boot_hooks.errors import ConfigError
from boot_hooks.retry import Deadline
from boot_hooks.sdk import SdkReplyError, read_local_deeplink
from boot_hooks.sdk_transport import SdkTimeout, SdkUnavailable, encode_frame

ANSWERS = {
    "auth": {"method": "auth", "code": 0},
    "getServerConnState": {"method": "getServerConnState", "code": 0, "data": {"state": 3}},
    "getDeviceInfo": {"method": "getDeviceInfo", "code": 0,
                      "data": {"device_id": "123456789", "password": "Pw0Secret9"}},
}


class ScriptedChannel:
    """A byte channel that answers each request from ``answers``, or fails as told."""

    def __init__(self, answers=None, fail=None):
        self.answers, self.fail = answers or {}, fail
        self.out = b""
        self.closed = False
        self.methods = []

    def write(self, data, timeout_s):
        self.methods.append(json.loads(data[4:])["method"])
        answer = self.answers.get(self.methods[-1])
        self.out += encode_frame(answer) if answer else b""

    def read(self, timeout_s):
        if not self.out:
            raise self.fail or SdkTimeout("DeepLink SDK did not answer in time")
        chunk, self.out = self.out, b""
        return chunk

    def close(self):
        self.closed = True


def opener_of(*channels):
    queue = list(channels)

    def opener(kind, path, timeout_s):
        if isinstance(queue[0], BaseException):
            raise queue.pop(0)
        return queue.pop(0)

    return opener


def test_timeout_then_answers_after_one_reopen(caplog):
    caplog.set_level(logging.INFO, logger="boot_hooks")
    first, second = ScriptedChannel(), ScriptedChannel(ANSWERS)
    local = read_local_deeplink("unix", "p", "chan", Deadline(5), 0.05, opener_of(first, second))
    assert local.info.device_id == "123456789" and local.state == 3
    assert first.closed and first.methods == ["auth"]
    assert second.methods == ["auth", "getServerConnState", "getDeviceInfo"]
    lines = [r.getMessage() for r in caplog.records if "reopening" in r.getMessage()]
    assert len(lines) == 1 and "did not answer in time" in lines[0]


def test_garbage_frame_is_reopened_too():
    garbage = ScriptedChannel(fail=SdkUnavailable("DeepLink SDK sent a frame that is not JSON"))
    garbage.out = b"\x05\x00\x00\x00hello"
    good = ScriptedChannel(ANSWERS)
    local = read_local_deeplink("unix", "p", "c", Deadline(5), 0.05, opener_of(garbage, good))
    assert garbage.closed and local.info.device_id == "123456789"


def test_a_refusal_is_final_not_reopened():
    refusing = ScriptedChannel({"auth": {"method": "auth", "code": 7, "message": "bad id"}})
    spare = ScriptedChannel(ANSWERS)
    with pytest.raises(SdkReplyError, match="code 7"):
        read_local_deeplink("unix", "p", "c", Deadline(5), 0.05, opener_of(refusing, spare))
    assert refusing.closed and spare.methods == []


def test_a_config_error_is_final():
    with pytest.raises(ConfigError):
        read_local_deeplink("pipe", "p", "c", Deadline(5), 0.05,
                            opener_of(ConfigError("needs Windows")))


def test_the_deadline_ends_the_reopening_with_the_typed_error():
    channels = [ScriptedChannel() for _ in range(100)]
    with pytest.raises(SdkTimeout):
        read_local_deeplink("unix", "p", "c", Deadline(0.5), 0.05, opener_of(*channels))
    used = [c for c in channels if c.methods]
    assert len(used) >= 2 and all(c.closed for c in used)
