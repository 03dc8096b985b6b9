"""bm-hook failure reports (``POST /api/v1/hook/report``, contract v3) against the real
``bm-agent serve``, over real HTTP from each PC's 127.0.0.N.

PCs: pc-41 (approved seat key), pc-42 (pending seat key), pc-43 (approved, another PC),
pc-44 (its hook's first real rotation fails), pc-45 (its resident hook keeps failing).
No node is needed: a report names no server (it is the one at the source IP) and the agent
never calls the node for it. The hook side (boot_hooks.report.FailureReports) sends
through the real AgentClient: after a real failed rotation, with the agent down and back,
and in direct mode (nothing sent).
"""

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from boot_hooks.config import HookConfig
from boot_hooks.errors import ExitCode, HookError
from boot_hooks.relay import REPORT_PATH, encode_body
from boot_hooks.report import FailureReports, one_line
from tests.support.agentproc import USERS
from tests.support.hook_run import write_key
from tests.support.ports import free_port
from tests.support.procs import REPO_ROOT, python_module
from tests.support.seats import enroll_seat, hook_request, new_seat_seed, provision_seat

CONTRACT = json.loads((Path(__file__).parents[1] / "contract" / "hook_relay.json").read_text())
EXAMPLE = json.loads(CONTRACT["endpoints"]["report"]["request"]["body"])
PCS = {"pc-41": "127.0.0.41", "pc-42": "127.0.0.42", "pc-43": "127.0.0.43",
       "pc-44": "127.0.0.44", "pc-45": "127.0.0.45"}
NOBODY_IP = "127.0.0.49"


def import_pcs(agent, pcs):
    rows = ["uuid,ip,os,desc,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port"]
    rows += [f"{uuid},{ip},win10,seat,127.0.0.1,admin,reportpw1,{free_port()}"
             for uuid, ip in pcs.items()]
    answer = agent.post("/api/v1/servers/import", data=("\n".join(rows) + "\n").encode(),
                        headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200 and not answer.json()["errors"], answer.text


@pytest.fixture(scope="module")
def cafe(module_agent_proc):
    agent = module_agent_proc()
    import_pcs(agent, PCS)
    seats = {"pc-41": provision_seat(agent, "pc-41", PCS["pc-41"]),
             "pc-43": provision_seat(agent, "pc-43", PCS["pc-43"]),
             "pc-42": new_seat_seed("pc-42")}
    assert enroll_seat(agent, seats["pc-42"], PCS["pc-42"]).status_code == 202  # pending
    return {"agent": agent, "seats": seats}


def body(**changes):
    return encode_body({**EXAMPLE, **changes})


def send(cafe, uuid, raw=None, *, source_ip=None, seat=None, **signing):
    seed = seat if seat is not None else cafe["seats"][uuid]
    return hook_request(cafe["agent"], "POST", REPORT_PATH, raw or body(),
                        source_ip=source_ip or PCS[uuid], seat=seed or None, **signing)


def failures(agent, uuid):
    answer = agent.get("/api/v1/events", params={"server": uuid, "action": "hook_failure",
                                                 "limit": 200})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def error_code(answer):
    return answer.status_code, answer.json()["error"]["code"]


def test_an_approved_seat_reports_and_staff_see_it_everywhere(cafe):
    agent = cafe["agent"]
    answer = send(cafe, "pc-41", body(message="DeepLink SDK \u202eexe.txt\nnot there"))
    assert (answer.status_code, answer.json()) == (202, {"status": "recorded"})
    [event] = failures(agent, "pc-41")
    assert (event["kind"], event["result"], event["actor"]) == (
        "deeplink", "deeplink_unreachable", "@hook")
    detail = event["detail"]
    assert detail["message"] == "DeepLink SDK <U+202E>exe.txt<U+000A>not there"
    assert (detail["exit_code"], detail["attempt"], detail["boot_id"]) == (
        4, 3, EXAMPLE["boot_id"])
    assert detail["seat_state"] == "approved" and re.fullmatch(r"[0-9a-f]{16}", detail["seat"])
    # The seat's page (the dashboard's detail JSON the page renders).
    page = agent.get("/ui/api/servers/pc-41").json()
    assert any(e["action"] == "hook_failure" and e["detail"]["message"] == detail["message"]
               for e in page["events"])
    with requests.Session() as browser:  # the page itself, as a signed-in viewer sees it
        browser.trust_env = False
        login = browser.post(agent.url + "/api/v1/auth/login", timeout=30,
                             json={"name": "view", "password": USERS["view"][1]})
        assert login.status_code == 200, login.text
        html = browser.get(agent.url + "/ui/servers/pc-41", timeout=30)
    assert html.status_code == 200 and "detail.js" in html.text
    assert "ui.last_boot_failure" in html.text and "action.hook_failure" in html.text
    # bm-agent events, in Chinese.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BM_AGENT_")}
    env.update(PYTHONPATH=str(REPO_ROOT), LANG="C.UTF-8")
    done = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(agent.config_path), "--lang", "zh_CN",
         "events", "--server", "pc-41", "--action", "hook_failure"],
        capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "开机钩子失败" in done.stdout and "无法连接 DeepLink" in done.stdout
    # the table cuts long cells; keys by name in 中文 (issue 13 item 9: was "message=")
    assert "消息=DeepLink SDK <U+202E>exe.txt" in done.stdout
    metrics = agent.get("/metrics").text
    assert re.search(r'bm_agent_hook_failure_reports_total\{error="deeplink_unreachable"\} '
                     r"[1-9]", metrics)


def test_a_pending_seat_reports_too(cafe):
    answer = send(cafe, "pc-42", body(exit_code=7, error="awaiting_approval",
                                      message="this PC waits for staff approval"))
    assert answer.status_code == 202, answer.text
    [event] = failures(cafe["agent"], "pc-42")
    assert event["result"] == "awaiting_approval" and event["detail"]["seat_state"] == "pending"


def test_refusals(cafe):
    agent = cafe["agent"]
    before = len(failures(agent, "pc-41")) + len(failures(agent, "pc-43"))
    unsigned = hook_request(agent, "POST", REPORT_PATH, body(), source_ip=PCS["pc-41"],
                            extra={"X-BM-Signature": "00" * 64})
    assert error_code(unsigned) == (403, "bad_signature")
    with agent.session(None, source_ip=PCS["pc-41"]) as sess:  # no X-BM-* headers at all
        bare = sess.post(agent.url + REPORT_PATH, data=body(), timeout=30,
                         headers={"Content-Type": "application/json"})
    assert error_code(bare) == (403, "bad_signature")
    token = send(cafe, "pc-41", seat="")  # the café token: not a seat key
    assert error_code(token) == (403, "seat_not_enrolled")
    other = send(cafe, "pc-41", seat=cafe["seats"]["pc-43"])  # pc-43's key from pc-41
    assert error_code(other) == (403, "forbidden_source")
    moved = send(cafe, "pc-41", source_ip=NOBODY_IP)  # pc-41's key from an unknown address
    assert error_code(moved) == (403, "forbidden_source")
    unknown = send(cafe, "pc-41", seat=new_seat_seed())
    assert error_code(unknown) == (403, "seat_not_enrolled")
    nonce = "f" * 32
    assert send(cafe, "pc-43", nonce=nonce).status_code == 202
    assert error_code(send(cafe, "pc-43", nonce=nonce)) == (409, "replayed")
    stale = send(cafe, "pc-43", timestamp=1767225600)
    assert error_code(stale) == (401, "stale_timestamp") and stale.headers.get("Date")
    after = len(failures(agent, "pc-41")) + len(failures(agent, "pc-43"))
    assert after == before + 1  # only the one good report


def test_a_rejected_seat_is_refused(cafe):
    agent = cafe["agent"]
    seed = new_seat_seed("pc-43 rogue")
    assert enroll_seat(agent, seed, PCS["pc-43"]).status_code == 202
    assert send(cafe, "pc-43", seat=seed).status_code == 202  # pending: reports
    rejected = agent.post("/api/v1/seats/reject", user="oper", json={"uuids": ["pc-43"]})
    assert rejected.status_code == 200, rejected.text
    assert error_code(send(cafe, "pc-43", seat=seed)) == (403, "seat_rejected")


@pytest.mark.parametrize(("raw", "field"), [
    (body(exit_code=True), "exit_code"),
    (body(exit_code=3), "error"),
    (body(message="x" * 501), "message"),
    (body(attempt=0), "attempt"),
    (body(boot_id="a/b"), "boot_id"),
    (body(uptime_s=-5), "uptime_s"),
    (body(occurred_at="now"), "occurred_at"),
    (body(secret="x"), "unknown field"),
    (b'{"exit_code":4,"uptime_s":NaN}', "error"),
    (b"[1]", "JSON object"),
    (b"\xff\xfe", "not JSON"),
    (b'{"a":' * 1600, "nested"),
    (b" " * 8200, "8192"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_fields_are_400_naming_the_field(cafe, raw, field):
    answer = send(cafe, "pc-43", raw)
    assert error_code(answer) == (400, "bad_request"), answer.text
    assert field in answer.json()["error"]["message"]
    assert "Traceback" not in cafe["agent"].log()


def test_a_boot_loop_cannot_flood_the_events(cafe):
    agent = cafe["agent"]
    before = len(failures(agent, "pc-41"))
    metric = re.compile(r'bm_agent_hook_failure_reports_total\{error="node_unreachable"\} '
                        r"([0-9.]+)")
    statuses = [send(cafe, "pc-41", body(exit_code=3, error="node_unreachable",
                                         attempt=n)).status_code for n in range(1, 41)]
    assert set(statuses) == {202}
    rows = failures(agent, "pc-41")[: len(failures(agent, "pc-41")) - before]
    assert [e["result"] for e in rows] == ["node_unreachable"]  # one row a minute
    assert float(metric.search(agent.get("/metrics").text).group(1)) == 40


# --- the hook side: boot_hooks.report.FailureReports through the real AgentClient --------


def hook_config(tmp_path, agent, uuid, seed, **extra):
    token = write_key(tmp_path / "hook.token", agent.hook_seed)
    seat = write_key(tmp_path / "seat.key", seed) if seed else str(tmp_path / "seat.key")
    return HookConfig(agent_url=agent.url, token_key_file=token, seat_key_file=seat,
                      source_ip=PCS[uuid], state_file=str(tmp_path / "last-code"), **extra)


def test_a_failed_rotation_leaves_an_event(cafe, tmp_path):
    """The real agent-mode rotation fails (pc-44 has no node_id yet: whoami answers 503),
    as the resident loop would see it; its report lands on pc-44's page."""
    from boot_hooks.agent_flow import run_agent
    from boot_hooks.state import open_state

    agent = cafe["agent"]
    seed = provision_seat(agent, "pc-44", PCS["pc-44"])
    config = hook_config(tmp_path, agent, "pc-44", seed)
    config = dataclasses.replace(config, deadlines=dataclasses.replace(
        config.deadlines, node_s=1.0, call_s=2.0))
    secrets_seen = []
    reports = FailureReports(config, secrets_seen.append)
    with pytest.raises(HookError) as failed:
        run_agent(config, secrets_seen.append, open_state(config))
    reports.record(failed.value, 1)
    assert reports.flush(10) == 1 and reports.queued == 0
    [event] = failures(agent, "pc-44")
    assert event["detail"]["exit_code"] == int(failed.value.exit_code)
    assert event["result"] == ExitCode(failed.value.exit_code).name.lower()
    assert event["detail"]["message"] == one_line(str(failed.value))
    assert failed.value.exit_code in (ExitCode.NODE_UNREACHABLE, ExitCode.DEEPLINK_UNREACHABLE)
    assert seed in secrets_seen  # the seat key's seed went to the log filter
    assert seed not in json.dumps(event) and seed not in agent.log()


def test_agent_down_keeps_the_reports_and_sends_them_later(agent_proc, spawn, tmp_path):
    agent = agent_proc()
    import_pcs(agent, {"pc-41": PCS["pc-41"]})
    seed = provision_seat(agent, "pc-41", PCS["pc-41"])
    reports = FailureReports(hook_config(tmp_path, agent, "pc-41", seed), lambda _s: None)
    agent.proc.stop()
    for attempt in (1, 2, 3):
        reports.record(HookError(f"attempt {attempt}"), attempt)
    assert reports.flush(3) == 0 and reports.queued == 3
    restarted = spawn([*python_module("agent", "serve"), "--config", str(agent.config_path)],
                      name="agent-again", env={"BM_AGENT_CONFIG": ""})
    agent = dataclasses.replace(agent, proc=restarted)
    agent.wait_for(lambda: reports.flush(3), 30, "the queued reports sent")
    assert reports.queued == 0
    rows = failures(agent, "pc-41")
    assert [e["result"] for e in rows] == ["internal"]  # one row a minute per error
    assert rows[0]["detail"]["message"] == "attempt 1"  # in order: the oldest first


def test_direct_mode_sends_nothing(cafe, tmp_path):
    agent = cafe["agent"]
    before = agent.get("/api/v1/events", params={"action": "hook_failure", "limit": 200})
    direct = HookConfig(node_url=agent.url, node_id="ab" * 32, key_file=str(tmp_path / "k"),
                        source_ip=PCS["pc-41"])
    reports = FailureReports(direct, lambda _s: None)
    reports.record(HookError("no node"), 1)
    assert reports.flush(5) == 0 and reports.queued == 0
    after = agent.get("/api/v1/events", params={"action": "hook_failure", "limit": 200})
    assert after.json()["items"] == before.json()["items"]


def test_an_agent_that_never_answers_cannot_hold_the_flush_past_its_timeout(tmp_path):
    """A listener that accepts and says nothing (a hung agent): flush returns in time."""
    import socket
    import time

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        seed = new_seat_seed("silent")
        config = HookConfig(agent_url=f"http://127.0.0.1:{silent.getsockname()[1]}",
                            seat_key_file=write_key(tmp_path / "seat.key", seed))
        reports = FailureReports(config, lambda _s: None)
        reports.record(HookError("x"), 1)
        started = time.monotonic()
        assert reports.flush(2.0) == 0
        elapsed = time.monotonic() - started
    assert reports.queued == 1
    assert elapsed < 2.5, elapsed


def test_resident_hook_reports_each_failed_boot_attempt(cafe, spawn, tmp_path):
    """The real ``bm-hook --resident`` in agent mode: pc-45 has no node_id yet, so every
    attempt fails; the failures reach the agent while the hook keeps retrying, with the
    PC's state dir (status.json) on its own disk."""
    from tests.support.hook_run import write_hook_config

    agent = cafe["agent"]
    seed = provision_seat(agent, "pc-45", PCS["pc-45"])
    before = len(failures(agent, "pc-45"))
    state_dir = tmp_path / "state"
    config = write_hook_config(tmp_path / "hook.toml", {
        "agent": {"url": agent.url, "token_key_file": write_key(tmp_path / "t", agent.hook_seed),
                  "seat_key_file": write_key(tmp_path / "seat.key", seed),
                  "source_ip": PCS["pc-45"]},
        "deadlines": {"node_s": 0.5, "deeplink_s": 0.5, "confirm_s": 1, "call_s": 0.5},
        "service": {"retry_s": 0.001, "slow_retry_s": 0.5},
        "state": {"dir": str(state_dir)},
    })
    hook = spawn(python_module("boot_hooks", "--resident", "--config", config), name="resident")
    agent.wait_for(lambda: len(failures(agent, "pc-45")) > before, 30,
                   "a hook_failure event from the resident hook")
    status = json.loads((state_dir / "status.json").read_text())
    assert status["result"] == "retrying" and status["attempt"] >= 1
    new = failures(agent, "pc-45")
    [event] = new[: len(new) - before]  # one row a minute per error: the first attempt's
    # No node_id yet: the agent answers whoami 503 (no node to ask) or "not connected".
    assert event["result"] in ("node_unreachable", "deeplink_unreachable")
    assert ExitCode(event["detail"]["exit_code"]).name.lower() == event["result"]
    assert event["detail"]["attempt"] == 1 and event["detail"]["message"]
    assert event["detail"]["seat_state"] == "approved"
    os.kill(hook.pid, signal.SIGTERM)
    assert hook.popen.wait(10) == 0
    log = (state_dir / "bm-hook.log").read_text()
    assert "attempt 1 failed" in log and seed not in log
