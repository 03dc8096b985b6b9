"""Security issue 10, finding 9, for the other node callers: bm-hook and the agent's hook relay.

Both go through ``baremetal.dbc.client``; against a node that drips its headers one byte every
0.3 s (tests/support/drip.py) each must give up at its own deadline: the real ``bm-hook``
process (direct mode) exits with the node code, and the real ``bm-agent serve`` answers the
hook's whoami without the node's version and its deeplink publish with 502, in time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from agent.hook.relay import NODE_CALL_S
from agent.models import RegistrationState
from agent.secrets import Sealer, Secret
from agent.store import Store
from baremetal.signing import new_node_keypair
from boot_hooks.errors import ExitCode
from boot_hooks.relay import DEEPLINK_PATH, WHOAMI_PATH, encode_body
from tests.integration.test_hook_relay import send, signed
from tests.support.drip import DripPeer, header_drip
from tests.support.hook_run import run_hook, write_hook_config, write_key
from tests.support.seats import provision_seat

SLACK_S = 1.0
PC_IP = "127.0.0.61"
WHOAMI_VERSION_S = 2.0  # the relay's version probe for whoami (agent/hook/relay.py)


@pytest.fixture
def drip() -> Iterator[DripPeer]:
    peer = header_drip(0.3)
    yield peer
    peer.close()


def test_bm_hook_gives_up_on_a_dripping_node_at_its_deadline(drip, spawn, tmp_path):
    keypair = new_node_keypair()
    config = write_hook_config(tmp_path / "hook.toml", {
        "node": {"url": drip.url},
        "server": {"key_file": write_key(tmp_path / "server.key", keypair.private_key)},
        "deadlines": {"node_s": 2, "call_s": 1},
        "state": {"file": str(tmp_path / "last-code")},
    })
    run = run_hook(spawn, config, timeout=20)
    assert run.returncode == ExitCode.NODE_UNREACHABLE, run.log
    assert run.elapsed_s < 2.0 + 1.0 + SLACK_S, run.log
    assert keypair.private_key not in run.log


def _seed_registered_pc(node_id: str, key: str) -> Any:
    def seed(settings: Any) -> None:
        sealer = Sealer.from_key_file(settings.secrets.key_file)
        with Store.open(settings.store.path, sealer=sealer) as store:
            server = store.servers.add(uuid="pc-61", ip=PC_IP, ipmi_host="127.0.0.1",
                                       ipmi_user="admin", ipmi_password=Secret("pw-61"))
            store.servers.set_registration(server_id=server.id,
                                           state=RegistrationState.REGISTERED,
                                           node_id=node_id, node_private_key=Secret(key))
    return seed


@pytest.fixture
def relay_agent(drip, agent_proc):
    pc = new_node_keypair()
    agent = agent_proc(node_url=drip.url, before_start=_seed_registered_pc(pc.node_id,
                                                                           pc.private_key))
    return agent, pc.node_id, provision_seat(agent, "pc-61", PC_IP)


def test_agent_relay_whoami_does_not_wait_for_a_dripping_node(relay_agent):
    agent, node_id, seat = relay_agent
    target = f"{WHOAMI_PATH}?ip={PC_IP}&mac="
    started = time.monotonic()
    answer = send(agent, "GET", target, signed(agent, "GET", target, seat=seat),
                  source_ip=PC_IP)
    elapsed = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"node_id": node_id}  # no node_version: the node never answered
    assert elapsed < WHOAMI_VERSION_S + SLACK_S


def test_agent_relay_publish_gives_up_on_a_dripping_node_in_time(relay_agent):
    agent, node_id, seat = relay_agent
    body = encode_body({"node_id": node_id, "device_password": "Drip0Code1"})
    started = time.monotonic()
    answer = send(agent, "POST", DEEPLINK_PATH,
                  signed(agent, "POST", DEEPLINK_PATH, body, seat=seat), body, source_ip=PC_IP)
    elapsed = time.monotonic() - started
    assert answer.status_code == 502, answer.text
    assert answer.json()["error"]["code"] == "node_unreachable"
    assert elapsed < NODE_CALL_S + SLACK_S
