"""bm-hook in agent mode, as a subprocess, against a stand-in agent over real HTTP.

The stand-in (tests/support/hook_agent_standin.py) implements the agent side of
tests/contract/hook_relay.json and verifies each request exactly as the contract says;
what it does after verification is injected here (no node needed). The test of the
REAL agent endpoint (bm-agent's POST /api/v1/hook/deeplink) comes with the agent; the
end-to-end run through the emulator is in test_hook_against_emulator.py.
"""

import hashlib
import http.client
import os
import re
import shutil
import tempfile
import time

import nacl.signing
import pytest

from boot_hooks.errors import ExitCode
from tests.support.hook_agent_standin import AgentStandin, Refusal, RegisteredServer
from tests.support.hook_run import run_hook, write_hook_config, write_key
from tests.support.hook_sdk_fake import FakeDeepLinkSdk
from tests.support.ports import free_port

TOKEN_SEED = hashlib.sha256(b"test cafe hook token").hexdigest()
TOKEN_PUBLIC = bytes(nacl.signing.SigningKey(bytes.fromhex(TOKEN_SEED)).verify_key).hex()
# This PC's seat key, enrolled and approved before the run (set-up; see the stand-in).
SEAT_SEED = hashlib.sha256(b"test seat key of pc 23").hexdigest()
SEAT_PUBLIC = bytes(nacl.signing.SigningKey(bytes.fromhex(SEAT_SEED)).verify_key).hex()
NODE_ID = "ab" * 32
PC_IP = "127.0.0.23"
CODE = re.compile(r"[A-Za-z0-9]{6,16}")


class Publisher:
    """Scripted agent behaviour after verification: a list of Refusals, then success."""

    def __init__(self, *failures):
        self.failures = list(failures)
        self.calls = []

    def __call__(self, server, code, device_id):
        self.calls.append((server.node_id, code, device_id))
        if self.failures:
            raise self.failures.pop(0)
        return device_id or "555666777"


@pytest.fixture
def standin():
    started = []

    def _start(publish, **kwargs):
        kwargs.setdefault("seats", {SEAT_PUBLIC: "approved"})
        agent = AgentStandin(TOKEN_PUBLIC, [RegisteredServer(NODE_ID, PC_IP)], publish, **kwargs)
        agent.start(free_port())
        started.append(agent)
        return agent

    yield _start
    for agent in started:
        agent.stop()


def config(tmp_path, agent_url, *, source_ip=PC_IP, token=TOKEN_SEED, deadlines=None,
           extra=None):
    sections = {
        "agent": {"url": agent_url, "token_key_file": write_key(tmp_path / "token", token),
                  "seat_key_file": write_key(tmp_path / "seat.key", SEAT_SEED),
                  "source_ip": source_ip},
        "deadlines": {"node_s": 3, "deeplink_s": 3, "confirm_s": 3, "call_s": 1,
                      **(deadlines or {})},
        "state": {"file": str(tmp_path / "last-code")},
    }
    for section, table in (extra or {}).items():
        sections.setdefault(section, {}).update(table)
    return write_hook_config(tmp_path / "hook.toml", sections)


def test_happy_path_signs_whoami_and_publish(spawn, tmp_path, standin):
    publisher = Publisher()
    agent = standin(publisher)
    run = run_hook(spawn, config(tmp_path, agent.url))
    assert run.returncode == ExitCode.OK, run.log
    methods = [(r["method"], r["target"].split("?")[0], r["source"]) for r in agent.requests]
    assert methods == [("GET", "/api/v1/hook/whoami", PC_IP),
                       ("POST", "/api/v1/hook/deeplink", PC_IP)]
    assert "ip=127.0.0.23" in agent.requests[0]["target"]
    [(node_id, code, device_id)] = publisher.calls
    assert node_id == NODE_ID and CODE.fullmatch(code) and device_id == ""
    assert NODE_ID in agent.rotations
    assert code not in run.log and TOKEN_SEED not in run.log


def test_wrong_source_ip_is_refused(spawn, tmp_path, standin):
    agent = standin(Publisher())
    run = run_hook(spawn, config(tmp_path, agent.url, source_ip="127.0.0.24"))
    assert run.returncode == ExitCode.AUTH_REFUSED, run.log
    assert "forbidden_source" in run.log


def test_wrong_source_ip_for_the_node_id_is_refused(spawn, tmp_path, standin):
    # whoami from the right IP, but the deeplink call claims another server's node_id.
    other = "cd" * 32
    agent = standin(Publisher())
    agent.servers.append(RegisteredServer(other, "127.0.0.99"))
    run = run_hook(spawn, config(tmp_path, agent.url, extra={"server": {"node_id": other}}))
    assert run.returncode == ExitCode.AUTH_REFUSED, run.log


def test_bad_token_signature_is_refused(spawn, tmp_path, standin):
    # A PC whose seat key is not enrolled yet: the café token signs its enrollment.
    agent = standin(Publisher(), seats={})
    run = run_hook(spawn, config(tmp_path, agent.url, token="22" * 32))
    assert run.returncode == ExitCode.AUTH_REFUSED, run.log
    assert "bad_signature" in run.log


def test_replayed_request_is_refused_by_the_agent_side(spawn, tmp_path, standin):
    """Resend a request the hook made, byte for byte, from the right IP: 409."""
    agent = standin(Publisher())
    assert run_hook(spawn, config(tmp_path, agent.url)).returncode == ExitCode.OK
    recorded = agent.requests[-1]
    conn = http.client.HTTPConnection("127.0.0.1", int(agent.url.rsplit(":", 1)[1]),
                                      timeout=5, source_address=(PC_IP, 0))
    headers = {k: v for k, v in recorded["headers"].items() if k.startswith("X-BM-")}
    headers["Content-Type"] = "application/json"
    conn.request("POST", recorded["target"], body=recorded["body"], headers=headers)
    response = conn.getresponse()
    assert response.status == 409
    assert b'"replayed"' in response.read()
    conn.close()


def test_stale_clock_is_corrected_from_the_agents_date(spawn, tmp_path, standin):
    agent = standin(Publisher(), clock=lambda: time.time() + 3600)
    run = run_hook(spawn, config(tmp_path, agent.url))
    assert run.returncode == ExitCode.OK, run.log
    assert "clock is off" in run.log
    statuses = [r["target"].split("?")[0] for r in agent.requests]
    assert statuses.count("/api/v1/hook/whoami") == 2  # refused once, then accepted


def test_not_connected_is_retried_until_deeplink_connects(spawn, tmp_path, standin):
    not_yet = Refusal(503, "deeplink_not_connected", "deeplink service not connected")
    publisher = Publisher(not_yet, not_yet, not_yet)
    agent = standin(publisher)
    run = run_hook(spawn, config(tmp_path, agent.url))
    assert run.returncode == ExitCode.OK, run.log
    assert len(publisher.calls) == 4
    assert len({code for _, code, _ in publisher.calls}) == 1  # one code, re-sent


@pytest.mark.parametrize(("refusal", "code"), [
    (Refusal(503, "deeplink_not_connected", "not connected"), ExitCode.DEEPLINK_UNREACHABLE),
    (Refusal(502, "node_unreachable", "node down"), ExitCode.NODE_UNREACHABLE),
    (Refusal(429, "busy", "the relay is busy with other servers"), ExitCode.NODE_UNREACHABLE),
])
def test_retryable_refusals_give_up_at_the_deadline(spawn, tmp_path, standin, refusal, code):
    agent = standin(Publisher(*[refusal] * 1000))
    run = run_hook(spawn, config(tmp_path, agent.url, deadlines={"deeplink_s": 1.5}))
    assert run.returncode == code, run.log
    assert run.elapsed_s < 1.5 + 2.5


def test_a_busy_agent_is_retried(spawn, tmp_path, standin):
    busy = Refusal(429, "busy", "a relay call for this server is already in progress")
    publisher = Publisher(busy, busy)
    agent = standin(publisher)
    run = run_hook(spawn, config(tmp_path, agent.url))
    assert run.returncode == ExitCode.OK, run.log
    assert len(publisher.calls) == 3


def test_not_confirmed_is_not_retried(spawn, tmp_path, standin):
    publisher = Publisher(Refusal(504, "not_confirmed", "too slow"))
    agent = standin(publisher)
    run = run_hook(spawn, config(tmp_path, agent.url))
    assert run.returncode == ExitCode.NOT_CONFIRMED, run.log
    assert len(publisher.calls) == 1


def test_agent_down_is_node_unreachable_within_the_deadline(spawn, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    run = run_hook(spawn, config(tmp_path, url, deadlines={"node_s": 1.5}))
    assert run.returncode == ExitCode.NODE_UNREACHABLE, run.log
    assert run.elapsed_s < 1.5 + 2.5


def test_configured_node_id_must_match_the_agents_answer(spawn, tmp_path, standin):
    agent = standin(Publisher())
    run = run_hook(spawn, config(tmp_path, agent.url, extra={"server": {"node_id": "ef" * 32}}))
    assert run.returncode == ExitCode.AUTH_REFUSED, run.log
    assert [r["method"] for r in agent.requests] == ["GET"]


@pytest.fixture
def sock_dir():
    path = tempfile.mkdtemp(prefix="bmh-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_legacy_node_sets_deeplink_locally_then_publishes_device_id(spawn, tmp_path, standin,
                                                                    sock_dir):
    publisher = Publisher()
    agent = standin(publisher, node_version="0.4.1.6")
    with FakeDeepLinkSdk(f"{sock_dir}/sdk", device_id="112233445", password="OldOld11") as sdk:
        run = run_hook(spawn, config(tmp_path, agent.url,
                                     extra={"deeplink": {"sdk": f"unix:{sdk.path}"}}))
        assert run.returncode == ExitCode.OK, run.log
        [(_, code, device_id)] = publisher.calls
        assert sdk.passwords_set == [code]
        assert device_id == "112233445"
        assert code != "OldOld11"
        assert "OldOld11" not in run.log and code not in run.log


def test_relay_node_with_sdk_only_reads_deeplink(spawn, tmp_path, standin, sock_dir):
    publisher = Publisher()
    agent = standin(publisher, node_version="0.4.1.8")
    with FakeDeepLinkSdk(f"{sock_dir}/sdk", device_id="112233445", password="OldOld11") as sdk:
        run = run_hook(spawn, config(tmp_path, agent.url,
                                     extra={"deeplink": {"sdk": f"unix:{sdk.path}"}}))
        assert run.returncode == ExitCode.OK, run.log
        assert sdk.passwords_set == []  # the node relays the code; the hook only reads
        [(_, code, device_id)] = publisher.calls
        assert device_id == "112233445" and code != "OldOld11"


def test_token_file_readable_by_others_is_a_config_error(spawn, tmp_path, standin):
    agent = standin(Publisher())
    path = config(tmp_path, agent.url)
    os.chmod(tmp_path / "token", 0o644)
    run = run_hook(spawn, path)
    assert run.returncode == ExitCode.CONFIG, run.log
    assert agent.requests == []
