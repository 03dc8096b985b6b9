"""The real ``bm-agent serve`` killed with SIGKILL while it registers, checks and acts.

Three rounds: the agent is started on the same directory, 120 servers are being
registered with the emulator (the outbox), the monitor runs a pass every second over them
(4 slow fake BMCs, the rest at closed ports), and a staff client fires power actions at the
4 live servers; at a random moment the agent gets ``kill -9``. A last clean start finishes
the work. Then: every action the API acknowledged has its audit event, every server is
on the node exactly once with the node_id the store holds, the outbox is empty and the
store's integrity check is clean. (The registry's own crash points are pinned in
test_registry_crash.py; this is the whole service with all its threads.)
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from agent.models import EventKind, OutboxState, RegistrationState
from agent.secrets import Sealer
from agent.store import Store
from tests.integration.registry_driver import node_servers
from tests.support.agentproc import AgentProc
from tests.support.ports import free_port
from tests.support.procs import python_module

COUNT = 120
LIVE = 4
ROUNDS = 3


def restart(agent: AgentProc, spawn: Any) -> AgentProc:
    """Start ``bm-agent serve`` again on the same config and store; wait for /healthz."""
    proc = spawn(python_module("agent", "serve", "--config", str(agent.config_path)),
                 name="agent", env={"BM_AGENT_CONFIG": ""})
    again = AgentProc(url=agent.url, config_path=agent.config_path, settings=agent.settings,
                      proc=proc, tokens=agent.tokens, passwords=agent.passwords)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.alive(), proc.log()[-3000:]
        try:
            if requests.get(agent.url + "/healthz", timeout=1).status_code == 200:
                return again
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise AssertionError(f"agent did not come back:\n{proc.log()[-3000:]}")


_HEADER = "uuid,ip,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port"


def _csv(rows: list[str]) -> bytes:
    return ("\n".join([_HEADER, *rows]) + "\n").encode()


def _inventory(bmcs: list[Any]) -> list[str]:
    """One CSV row per server: the first LIVE on the fake BMCs."""
    rows = []
    for index in range(COUNT):
        if index < LIVE:
            bmc = bmcs[index]
            host, port, user, password = bmc.host, bmc.port, bmc.user, bmc.password
        else:  # a closed UDP port: fails at once, keeps passes short
            host, port, user, password = "127.0.0.1", free_port(), "admin", "nobody-home"
        rows.append(f"pc-{index:03d},10.1.{index // 250}.{index % 250 + 1},{host},{user},"
                    f"{password},{port}")
    return rows


class StaffClient(threading.Thread):
    """Fires power actions at the live servers until stopped; keeps what was acknowledged."""

    def __init__(self, agent: AgentProc, seed: int) -> None:
        super().__init__(daemon=True)
        self.agent = agent
        self.rng = random.Random(seed)
        self.acknowledged: list[dict[str, Any]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with self.agent.session("oper") as session:
            while not self.halt.is_set():
                uuid = f"pc-{self.rng.randrange(LIVE):03d}"
                action = self.rng.choice(["on", "off"])
                try:
                    answer = session.post(f"{self.agent.url}/api/v1/servers/{uuid}/power",
                                          json={"action": action}, timeout=15)
                except requests.RequestException:
                    continue  # killed mid-request: not acknowledged
                if answer.status_code == 200:
                    self.acknowledged.append(answer.json())


@pytest.mark.slow
def test_sigkill_during_registration_passes_and_actions_loses_nothing(
        agent_proc, emulator, fake_bmc, spawn) -> None:
    bmcs = [fake_bmc(slow=0.15, initial_power="off") for _ in range(LIVE)]
    agent = agent_proc(emulator, config={"actions.verify_deadline_s": 2.0})
    rows = _inventory(bmcs)
    first = agent.post("/api/v1/servers/import", data=_csv(rows[:LIVE]),
                       params={"filename": "servers.csv", "register": "true"})
    assert first.status_code == 200, first.text
    waves = [rows[LIVE:][i::ROUNDS] for i in range(ROUNDS)]
    rng = random.Random(20250131)
    acknowledged: list[dict[str, Any]] = []
    caught_mid_registration = 0
    for round_no in range(ROUNDS):
        if round_no:
            agent = restart(agent, spawn)
        staff = StaffClient(agent, seed=round_no)
        staff.start()
        time.sleep(rng.uniform(0.8, 1.4))  # actions and passes under way
        answer = agent.post("/api/v1/servers/import", data=_csv(waves[round_no]),
                            params={"filename": "servers.csv", "register": "true"})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["created"]) == len(waves[round_no]), answer.text
        time.sleep(rng.uniform(0.0, 0.15))  # the registry worker is at it now
        agent.proc.kill9()
        staff.halt.set()
        staff.join(20)
        acknowledged += staff.acknowledged
        counts = _outbox_at_kill(agent)
        registered_so_far = LIVE + sum(len(w) for w in waves[:round_no + 1])
        caught_mid_registration += counts[OutboxState.DONE] < registered_so_far
    agent = restart(agent, spawn)
    agent.wait_for(lambda: agent.get("/api/v1/outbox").json()["counts"].get("pending") == 0
                   and agent.get("/api/v1/outbox").json()["counts"].get("claimed") == 0,
                   timeout=60, what="the outbox to drain")
    agent.proc.stop()
    assert acknowledged, "no action was acknowledged before the kills: the test proved nothing"
    assert caught_mid_registration, "every kill came after the registration: nothing proved"
    _check_store(agent, acknowledged)
    _check_node(agent, emulator)


def _outbox_at_kill(agent: AgentProc) -> Counter[OutboxState]:
    """What the killed agent left behind (the store opens clean right after a SIGKILL)."""
    with Store.open(agent.settings.store.path) as store:
        assert store.integrity_check() == []
        return Counter(store.outbox.counts())


def _check_store(agent: AgentProc, acknowledged: list[dict[str, Any]]) -> None:
    settings = agent.settings
    with Store.open(settings.store.path,
                    sealer=Sealer.from_key_file(settings.secrets.key_file)) as store:
        assert store.integrity_check() == []
        assert store.servers.verify_sealer() >= COUNT
        events, before = [], None
        while True:
            page = store.events.page(before_id=before, limit=500, kinds=[EventKind.AUDIT])
            events += page.items
            if page.next_before_id is None:
                break
            before = page.next_before_id
        logged = Counter((e.server_uuid, e.action, e.detail.get("code")) for e in events)
        wanted = Counter((a["uuid"], a["action"], a["code"]) for a in acknowledged)
        missing = wanted - logged
        assert not missing, f"acknowledged actions without an audit event: {missing}"
        counts = store.outbox.counts()
        assert counts[OutboxState.PENDING] == counts[OutboxState.CLAIMED] == 0
        assert counts[OutboxState.DEAD] == 0
        states = Counter(s.state for s in store.servers.find())
        assert states == {RegistrationState.REGISTERED: COUNT}
        assert store.checks.reading_count() > 0


def _check_node(agent: AgentProc, emulator: Any) -> None:
    uuids = [f"pc-{i:03d}" for i in range(COUNT)]
    on_node = node_servers(emulator.url, emulator.manager_key, uuids)
    counts = Counter(s.uuid for s in on_node)
    assert set(counts) == set(uuids) and set(counts.values()) == {1}, counts.most_common(3)
    with Store.open(agent.settings.store.path) as store:
        held = {s.uuid: s.node_id for s in store.servers.find()}
    assert held == {s.uuid: s.node_id for s in on_node}


@pytest.mark.slow
def test_restart_after_kill_mid_action_leaves_no_stuck_lock(agent_proc, fake_bmc, spawn
                                                            ) -> None:
    bmc = fake_bmc(slow=0.4, initial_power="off")  # the action is in flight for a while
    agent = agent_proc(config={"actions.verify_deadline_s": 5.0, "check.deadline_s": 2.0,
                               "check.interval_s": 30.0})
    row = {"uuid": "pc-1", "ip": "10.0.0.1", "ipmi_hostname": bmc.host,
           "ipmi_port": bmc.port, "ipmi_username": bmc.user, "ipmi_password": bmc.password}
    assert agent.post("/api/v1/servers", json=row).status_code == 201
    answered: list[int] = []
    in_flight = threading.Thread(target=lambda: _swallow(lambda: answered.append(
        agent.post("/api/v1/servers/pc-1/power", json={"action": "on"}).status_code)),
        daemon=True)
    in_flight.start()
    time.sleep(0.3)
    agent.proc.kill9()
    in_flight.join(20)
    assert answered == []  # killed while the action was in flight
    agent = restart(agent, spawn)
    done = agent.post("/api/v1/servers/pc-1/power", json={"action": "on"}, user="oper")
    assert done.status_code == 200, done.text  # not 409: locks do not outlive the process
    assert done.json()["ok"] is True
    audit = agent.get("/api/v1/audit", params={"limit": 50}).json()["items"]
    assert [e["action"] for e in audit if e["server_uuid"] == "pc-1"][:1] == ["power_on"]


def _swallow(call: Any) -> None:
    with contextlib.suppress(requests.RequestException):  # killed mid-request
        call()


def test_killed_agent_store_opens_clean_and_is_not_held(agent_proc, tmp_path: Path) -> None:
    agent = agent_proc()
    agent.proc.kill9()
    from agent.store import store_in_use

    assert not store_in_use(agent.settings.store.path)  # a dead process holds no lock
    with Store.open(agent.settings.store.path) as store:
        assert store.integrity_check() == []
