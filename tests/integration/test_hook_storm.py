"""Security issue 10, finding 4: the hook relay must not stall the API, nor flood the event log.

As found: 45 concurrent signed publishes for PCs whose node never confirms the new code (here
the simulated DeepLink refuses every new password, so the relay waits its full 20 s) held 40
of the API's request threads, and ``/healthz`` and the staff's ``GET /api/v1/servers`` took
17 s. And 432 signed wrong-source publishes a second wrote one event row each (here: signed
with PC 61's approved seat key, from another address). Now the relay
runs in its own pool (``[hook] relay_threads``, 2 here), one call per server and two per
source address; the rest are answered 429 ``busy`` at once, and refusals are sampled into
events while the metric counts every one.
"""

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from baremetal.emulator.deeplink_client import SimulatedDeepLink
from boot_hooks.relay import DEEPLINK_PATH, encode_body
from tests.integration.test_hook_relay import register, signed
from tests.support.agentproc import SourceAddressAdapter
from tests.support.emulator import start_emulator
from tests.support.seats import provision_seat

PCS = (("pc-61", "127.0.0.61"), ("pc-62", "127.0.0.62"), ("pc-63", "127.0.0.63"))
ATTACKER_IP = "127.0.0.70"
FAST_S = 1.0


@pytest.fixture(scope="module")
def stalled(module_agent_proc, module_spawn, tmp_path_factory):
    """An agent whose relay pool has 2 threads, 3 PCs whose DeepLink never applies a code."""
    emu = start_emulator(module_spawn, tmp_path_factory.mktemp("storm"))
    agent = module_agent_proc(emulator=emu, config={"hook.relay_threads": 2})
    node_ids = register(agent, *PCS)
    seats = {ip: provision_seat(agent, uuid, ip) for uuid, ip in PCS}
    links = []
    for uuid, ip in PCS:
        link = SimulatedDeepLink((emu.deeplink_host, emu.deeplink_port), device_id=uuid[-2:] * 5,
                                 password="FirstBoot01", source_ip=ip, reconnect=True,
                                 reject_passwords=True)
        link.start()
        links.append(link)
        assert link.wait_until(lambda d: d.connected, 5)
    yield agent, {ip: node_ids[uuid] for uuid, ip in PCS}, seats
    for link in links:
        link.stop()


def publish(agent, node_id, source_ip, code, seat, session=None):
    """Publish signed with the seat key ``seat`` (a seed), sent from ``source_ip``."""
    body = encode_body({"node_id": node_id, "device_password": code})
    headers = signed(agent, "POST", DEEPLINK_PATH, body, seat=seat)
    sess = session or requests.Session()
    sess.trust_env = False
    sess.mount("http://", SourceAddressAdapter(source_ip))
    started = time.monotonic()
    answer = sess.post(agent.url + DEEPLINK_PATH, headers=headers, data=body, timeout=40)
    return answer, time.monotonic() - started


def timed_get(agent, path, user):
    started = time.monotonic()
    answer = agent.get(path, user=user)
    return answer.status_code, time.monotonic() - started


def refusals(agent):
    text = agent.get("/metrics", user="view").text
    return {code: float(n) for code, n in
            re.findall(r'^bm_agent_hook_refusals_total\{code="([a-z_]+)"\} (\S+)$', text, re.M)}


def test_a_flood_of_wrong_source_publishes_is_counted_and_sampled(stalled):
    agent, node_ids, seats = stalled
    target = node_ids["127.0.0.61"]
    before = refusals(agent).get("forbidden_source", 0)
    events_before = agent.get("/api/v1/events", params={"kind": "deeplink", "limit": 500}
                              ).json()["items"]
    with requests.Session() as sess:
        codes = [publish(agent, target, ATTACKER_IP, f"Flood{n:05d}", seats["127.0.0.61"], sess)[0].status_code
                 for n in range(500)]
    assert codes == [403] * 500
    assert refusals(agent)["forbidden_source"] - before == 500
    events = agent.get("/api/v1/events", params={"kind": "deeplink", "limit": 500}).json()
    new = [e for e in events["items"] if e["id"] > max((x["id"] for x in events_before),
                                                       default=0)]
    assert 1 <= len(new) <= 2, new  # sampled: one row a minute (plus a flush), not 500
    assert {(e["server_uuid"], e["result"]) for e in new} == {("pc-61", "forbidden_source")}
    assert new[-1]["detail"]["sampled"] is True


@pytest.mark.slow
def test_45_stalled_publishes_leave_the_api_answering(stalled):
    agent, node_ids, seats = stalled
    jobs = [(node_ids[ip], ip, f"Storm{ip[-2:]}x{n:03d}", seats[ip]) for n in range(15)
            for _uuid, ip in PCS]
    assert len(jobs) == 45
    with ThreadPoolExecutor(len(jobs)) as pool:
        storm = [pool.submit(publish, agent, *job) for job in jobs]
        time.sleep(1.0)  # every publish is in: 2 wait on the node, the rest were refused
        probes = []
        for _ in range(10):
            probes.append(timed_get(agent, "/healthz", None))
            probes.append(timed_get(agent, "/api/v1/servers", "admin"))
            time.sleep(0.2)
        answers = [future.result() for future in storm]
    assert all(status == 200 for status, _s in probes), probes
    assert max(seconds for _st, seconds in probes) < FAST_S, probes
    busy = [(a, s) for a, s in answers if a.status_code == 429]
    waited = [a for a, _s in answers if a.status_code != 429]
    assert len(busy) == 43 and len(waited) == 2, [a.status_code for a, _s in answers]
    assert all(s < FAST_S for _a, s in busy), sorted(s for _a, s in busy)[-3:]
    assert all(a.json()["error"]["code"] == "busy" and int(a.headers["Retry-After"]) > 0
               for a, _s in busy)
    assert {a.json()["error"]["code"] for a in waited} == {"not_confirmed"}
    assert refusals(agent)["busy"] >= 43
