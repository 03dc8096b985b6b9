"""Security issue 10, finding 9: a node call must end at its deadline, however the node drips.

Found: a node that drips its response headers one byte every 0.3 s kept
``Client.version(timeout_s=2)`` running for more than 60 s (requests' read timeout is per
socket read). The deadline is now overall: connect, send, headers and body together.
A real TCP peer on 127.0.0.1 (tests/support/drip.py) does the dripping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from baremetal.dbc.auth import NodeKeyAuth
from baremetal.dbc.client import Client
from baremetal.dbc.http import MAX_ANSWER_BYTES
from baremetal.errors import DecodeError, NodeTimeout
from tests.integration.test_client_peer import Answer, ScriptedPeer
from tests.support.drip import HEADER_DRIP, DripPeer, answer, body_drip, header_drip

DEADLINE_S = 2.0
SLACK_S = 0.5
NODE_KEY = "398f0c28f98885e046333d4a41c19cee4c37368a9832c6502f6cfd182e2aef89"


@pytest.fixture
def drips() -> Iterator[list[DripPeer]]:
    started: list[DripPeer] = []
    yield started
    for peer in started:
        peer.close()


def _timed_out(call: Callable[[], object]) -> float:
    started = time.monotonic()
    with pytest.raises(NodeTimeout):
        call()
    return time.monotonic() - started


@pytest.mark.parametrize("interval_s", [0.3, 1.5])
def test_dripped_headers_end_at_the_deadline(drips, interval_s):
    peer = header_drip(interval_s)
    drips.append(peer)
    with Client(peer.url, timeout_s=30) as client:
        elapsed = _timed_out(lambda: client.version(timeout_s=DEADLINE_S))
    assert elapsed < DEADLINE_S + SLACK_S
    assert peer.wait_hangups(1, timeout_s=2 * interval_s + 1) == 1  # the socket was let go


@pytest.mark.parametrize("interval_s", [0.3, 1.5])
def test_dripped_body_ends_at_the_deadline(drips, interval_s):
    peer = body_drip(interval_s)
    drips.append(peer)
    with Client(peer.url, timeout_s=DEADLINE_S) as client:
        elapsed = _timed_out(client.version)
    assert elapsed < DEADLINE_S + SLACK_S
    assert peer.wait_hangups(1, timeout_s=2 * interval_s + 1) == 1


def test_signed_post_to_a_dripping_node_ends_at_the_deadline(drips):
    peer = header_drip()
    drips.append(peer)
    with Client(peer.url, timeout_s=DEADLINE_S) as client:
        elapsed = _timed_out(lambda: client.get_deeplink("a" * 64, NodeKeyAuth(NODE_KEY)))
    assert elapsed < DEADLINE_S + SLACK_S


def test_concurrent_calls_keep_their_own_deadlines(drips):
    """A call to a sound node is not cut by another thread's expiring call, and vice versa."""
    import threading

    peer = header_drip()
    drips.append(peer)
    sound = ScriptedPeer()
    try:
        sound.queue(Answer(delay_s=1.5, body=b'{"errcode":0,"message":{"client_version":"1"}}'))
        results: dict[str, object] = {}

        def slow_but_sound() -> None:
            with Client(sound.url, timeout_s=5) as client:
                results["sound"] = client.version().client_version

        thread = threading.Thread(target=slow_but_sound)
        thread.start()
        with Client(peer.url, timeout_s=0.5) as client:
            assert _timed_out(client.version) < 0.5 + SLACK_S
        thread.join(10)
        assert results == {"sound": "1"}
    finally:
        sound.close()


def test_a_pooled_connection_is_watched_on_its_next_call(drips):
    """A kept-alive connection that turns hostile on its second request is bounded too."""
    version = b'{"errcode":0,"message":{"client_version":"0.4.1.8"}}'
    peer = DripPeer(b"", HEADER_DRIP + b"a" * 60000, first=answer(version))
    drips.append(peer)
    with Client(peer.url, timeout_s=DEADLINE_S) as client:
        assert client.version().client_version == "0.4.1.8"
        assert _timed_out(client.version) < DEADLINE_S + SLACK_S
    assert peer.accepted == 1  # the second call did reuse the pooled connection


def test_answer_size_stays_capped():
    peer = ScriptedPeer()
    try:
        peer.queue(Answer(body=b" " * (MAX_ANSWER_BYTES + 1)))
        with pytest.raises(DecodeError, match="larger than"):
            Client(peer.url, timeout_s=5).version()
    finally:
        peer.close()
