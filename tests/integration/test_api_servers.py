"""The servers API over real HTTP: import with a per-row report, list with current verdicts
(by real BMC conditions), filters, detail with history, events paging, actions (verified,
and 409 for a conflicting one), /metrics, /healthz, /docs.

One café for the module: the emulator, ``bm-agent serve`` and fake BMCs on loopback: two
healthy, one refusing the imported password, one where nothing listens, one frozen
(SIGSTOP: it never answers, so an action on it holds the server's lock for its deadline).
"""

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.agentproc import USERS
from tests.support.bmc import start_fake_bmc
from tests.support.emulator import start_emulator
from tests.support.ports import free_port

HEADER = "uuid,ip,os,desc,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port,labels"
OK = ("pc-ok-1", "pc-ok-2")


def bmc_row(uuid, ip, bmc, labels, password=None):
    return (f"{uuid},{ip},win10,seat {uuid},127.0.0.1,{bmc.user},"
            f"{password or bmc.password},{bmc.port},{labels}")


@pytest.fixture(scope="module")
def cafe(module_agent_proc, module_spawn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("servers")
    emu = start_emulator(module_spawn, tmp)
    bmcs = [start_fake_bmc(tmp / f"bmc{i}", initial_power="off") for i in range(4)]
    agent = module_agent_proc(emulator=emu, config={
        "check.interval_s": 1.5, "check.deadline_s": 1.0, "actions.verify_deadline_s": 2.0})
    rows = [HEADER,
            bmc_row("pc-ok-1", "127.0.0.61", bmcs[0], "zone=vip;row=A"),
            bmc_row("pc-ok-2", "127.0.0.62", bmcs[1], "zone=std;row=A"),
            bmc_row("pc-auth", "127.0.0.63", bmcs[2], "zone=vip;row=B", password="wrongpw1"),
            f"pc-dead,127.0.0.64,win10,seat,127.0.0.1,admin,deadpw1,{free_port()},zone=std",
            "pc-bad,not-an-ip,win10,seat,127.0.0.1,admin,pw1,623,zone=std",
            bmc_row("pc-frozen", "127.0.0.65", bmcs[3], "zone=std;row=C"),
            "pc-ok-1,127.0.0.66,win10,twice,127.0.0.1,admin,pw1,623,"]
    imported = agent.post("/api/v1/servers/import", params={"lang": "en"},
                          data=("\n".join(rows) + "\n").encode(),
                          headers={"Content-Type": "text/csv"})
    yield {"agent": agent, "emu": emu, "bmcs": bmcs, "import": imported}
    for bmc in bmcs:
        bmc.stop()


def items(answer):
    assert answer.status_code == 200, answer.text
    return {s["uuid"]: s for s in answer.json()["items"]}


def wait_verdicts(agent, wanted):
    def settled():
        found = items(agent.get("/api/v1/servers"))
        return all((found[u]["verdict"] or {}).get("verdict") == v for u, v in wanted.items())
    agent.wait_for(settled, 20, f"verdicts {wanted}")


def test_import_reports_each_row(cafe):
    answer = cafe["import"]
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert sorted(report["created"]) == sorted(["pc-ok-1", "pc-ok-2", "pc-auth", "pc-dead",
                                                "pc-frozen"])
    errors = {(e["line"], e["uuid"], e["field"], e["code"]) for e in report["errors"]}
    assert errors == {(6, "pc-bad", "ip", "bad_ip"), (8, "pc-ok-1", "uuid", "duplicate_uuid")}
    messages = [e["message"] for e in report["errors"]]
    assert any(m.startswith("line 6: bad ip") for m in messages), messages


def test_reimport_is_idempotent(cafe):
    agent = cafe["agent"]
    row = bmc_row("pc-ok-1", "127.0.0.61", cafe["bmcs"][0], "zone=vip;row=A")
    again = agent.post("/api/v1/servers/import", data=f"{HEADER}\n{row}\n".encode(),
                       headers={"Content-Type": "text/csv"}).json()
    assert again["unchanged"] == ["pc-ok-1"] and not again["created"] and not again["errors"]


def test_json_import_and_chinese_messages(cafe):
    agent = cafe["agent"]
    answer = agent.post("/api/v1/servers/import", json=[{"uuid": "pc-json", "ip": "10.0.0.1"}])
    report = answer.json()
    assert report["errors"][0]["code"] == "required"
    assert "第 1 行" in report["errors"][0]["message"]


def test_list_has_the_verdicts_of_real_conditions(cafe):
    agent = cafe["agent"]
    wait_verdicts(agent, {"pc-ok-1": "ok", "pc-ok-2": "ok", "pc-auth": "auth_failed",
                          "pc-dead": "unreachable"})
    found = items(agent.get("/api/v1/servers"))
    assert found["pc-ok-1"]["reading"]["power"] == "off"
    assert found["pc-ok-1"]["labels"] == {"zone": "vip", "row": "A"}
    assert found["pc-auth"]["reading"]["error_class"]
    assert agent.get("/api/v1/servers").json()["count"] == len(found)


@pytest.mark.parametrize(("query", "expected"), [
    ({"verdict": "ok"}, {"pc-ok-1", "pc-ok-2"}),
    ({"label": "zone=vip"}, {"pc-ok-1", "pc-auth"}),
    ({"label": ["zone=std", "row=A"]}, {"pc-ok-2"}),
    ({"verdict": "ok", "label": "zone=vip"}, {"pc-ok-1"}),
    ({"verdict": "unreachable", "label": "zone=std"}, {"pc-dead"}),
    ({"label": "zone=none"}, set()),
])
def test_filters(cafe, query, expected):
    agent = cafe["agent"]
    wait_verdicts(agent, {"pc-ok-1": "ok", "pc-ok-2": "ok", "pc-dead": "unreachable"})
    found = set(items(agent.get("/api/v1/servers", params=query)))
    assert found - {"pc-frozen"} == expected  # the frozen BMC's verdict is not settled here


def test_bad_filters_are_422(cafe):
    agent = cafe["agent"]
    for query in ({"verdict": "splendid"}, {"label": "=novalue"}, {"state": "happy"}):
        answer = agent.get("/api/v1/servers", params=query)
        assert answer.status_code == 422, query
        assert answer.json()["error"]["code"] == "validation_error"


def test_detail_has_history_newest_first(cafe):
    agent = cafe["agent"]
    agent.wait_for(lambda: len(agent.server("pc-ok-2")["history"]) >= 2, 20, "two passes")
    detail = agent.server("pc-ok-2")
    stamps = [r["ts"] for r in detail["history"]]
    assert stamps == sorted(stamps, reverse=True)
    assert detail["verdict"]["verdict"] == "ok"
    assert set(detail["intent"]) >= {"power", "boot_device", "actor"}
    assert detail["deeplink"]["freshness"] == "unknown"
    short = agent.get("/api/v1/servers/pc-ok-2", params={"history": 1}).json()
    assert len(short["history"]) == 1
    missing = agent.get("/api/v1/servers/pc-nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "server_not_found"


def test_registration_state_filter(cafe):
    agent = cafe["agent"]
    assert agent.post("/api/v1/register", user="oper").json()["queued"] >= 5
    agent.wait_for(lambda: set(items(agent.get("/api/v1/servers",
                                               params={"state": "registered"}))) >= set(OK),
                   20, "registration")
    listed = items(agent.get("/api/v1/servers", params={"state": "registered"}))
    assert all(len(s["node_id"]) == 64 for s in listed.values())


def test_events_are_paged_newest_first_without_gaps(cafe):
    agent = cafe["agent"]
    wait_verdicts(agent, {"pc-ok-1": "ok", "pc-auth": "auth_failed"})
    everything = agent.get("/api/v1/events", params={"limit": 500}).json()
    assert everything["next_before_id"] is None
    expected = [e["id"] for e in everything["items"]]
    assert len(expected) >= 6
    seen, before = [], None
    while True:
        params = {"limit": 2, **({"before_id": before} if before else {})}
        page = agent.get("/api/v1/events", params=params).json()
        assert len(page["items"]) <= 2
        seen += [e["id"] for e in page["items"]]
        before = page["next_before_id"]
        if before is None:
            break
    assert seen[:len(expected)] == expected or seen[-len(expected):] == expected[-len(seen):]
    assert seen == sorted(set(seen), reverse=True)
    assert set(expected) <= set(seen)


def test_event_filters_and_the_audit_log(cafe):
    agent = cafe["agent"]
    audit = agent.get("/api/v1/audit", params={"limit": 100}).json()["items"]
    assert audit and all(e["kind"] == "audit" for e in audit)
    imports = [e for e in audit if e["action"] == "import"]
    assert imports and imports[-1]["actor"] == "admin"
    verdicts = agent.get("/api/v1/events", params={"kind": "verdict", "server": "pc-auth"})
    assert verdicts.json()["items"][0]["result"] == "auth_failed"
    assert agent.get("/api/v1/events", params={"kind": "nonsense"}).status_code == 422


def test_power_action_is_verified_and_audited(cafe):
    agent = cafe["agent"]
    answer = agent.post("/api/v1/servers/pc-ok-1/power", user="oper", json={"action": "on"})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["ok"] and result["verified"] and result["code"] == "verified"
    assert result["reading"]["power"] == "on"
    assert cafe["bmcs"][0].state()["power"] == "on"
    event = agent.get("/api/v1/audit", params={"server": "pc-ok-1"}).json()["items"][0]
    assert (event["actor"], event["action"], event["verified"]) == ("oper", "power_on", True)


def test_batch_action_by_label(cafe):
    agent = cafe["agent"]
    answer = agent.post("/api/v1/actions/bootdev", user="oper",
                        json={"label": "row=A", "device": "pxe"})
    assert answer.status_code == 200, answer.text
    results = {r["uuid"]: r for r in answer.json()["results"]}
    assert set(results) == set(OK)
    assert all(r["ok"] for r in results.values())


def test_a_conflicting_action_is_409(cafe):
    agent = cafe["agent"]
    cafe["bmcs"][3].freeze()  # the action will wait its full IPMI deadline on this BMC
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(agent.post, "/api/v1/servers/pc-frozen/power", user="oper",
                                json={"action": "on"})
            time.sleep(0.3)
            second = agent.post("/api/v1/servers/pc-frozen/power", user="oper",
                                json={"action": "off"})
            batch = agent.post("/api/v1/actions/power", user="oper",
                               json={"uuids": ["pc-frozen", "pc-dead"], "action": "off"})
            done = first.result(timeout=30)
    finally:
        cafe["bmcs"][3].thaw()
    assert second.status_code == 409, second.text
    assert second.json()["error"]["code"] == "action_in_progress"
    codes = {r["uuid"]: r["code"] for r in batch.json()["results"]}
    assert codes["pc-frozen"] == "conflict"
    assert done.status_code == 200 and done.json()["ok"] is False


def test_add_change_and_remove_one_server(cafe):
    agent = cafe["agent"]
    body = {"uuid": "pc-new", "ip": "127.0.0.70", "ipmi_hostname": "127.0.0.1",
            "ipmi_username": "admin", "ipmi_password": "newpw70", "labels": {"zone": "vip"}}
    created = agent.post("/api/v1/servers", user="oper", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["labels"] == {"zone": "vip"}
    assert agent.post("/api/v1/servers", user="oper", json=body).status_code == 409
    with agent.session("oper") as sess:
        changed = sess.patch(agent.url + "/api/v1/servers/pc-new", timeout=10,
                             json={"desc": "moved", "ipmi_port": 6230})
        bad = sess.patch(agent.url + "/api/v1/servers/pc-new", timeout=10,
                         json={"ip": "not an ip"})
        viewer_delete = agent.session("view").delete(agent.url + "/api/v1/servers/pc-new",
                                                     timeout=10)
    assert changed.status_code == 200 and changed.json()["desc"] == "moved"
    assert changed.json()["ipmi_port"] == 6230
    assert bad.status_code == 422
    assert viewer_delete.status_code == 403
    with agent.session("admin") as sess:
        assert sess.delete(agent.url + "/api/v1/servers/pc-new", timeout=10).status_code == 202
    assert agent.get("/api/v1/servers/pc-new").status_code == 404


def test_error_shapes(cafe):
    agent = cafe["agent"]
    unknown = agent.get("/api/v1/no-such-thing")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "route_not_found"
    invalid = agent.post("/api/v1/servers/pc-ok-1/power", user="oper",
                         json={"action": "explode-secretvalue"})
    assert invalid.status_code == 422
    assert invalid.json()["error"]["code"] == "validation_error"
    assert "secretvalue" not in invalid.text  # a refused value is never echoed back
    assert agent.get("/api/v1/servers", params={"lang": "en"}).status_code == 200


METRIC_LINE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|"
                         r"\\\\.)*\",?)*\})? (-?[0-9.e+]+|NaN|[+-]Inf)$")


def test_metrics_are_prometheus_text(cafe):
    agent = cafe["agent"]
    wait_verdicts(agent, {"pc-ok-1": "ok"})
    answer = agent.get("/metrics", user="view")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = answer.text
    typed = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            typed[name] = kind
        elif line and not line.startswith("#"):
            assert METRIC_LINE.match(line), line
    assert typed["bm_agent_check_pass_duration_seconds"] == "histogram"
    assert typed["bm_agent_servers_by_verdict"] == "gauge"
    assert typed["bm_agent_bmc_last_success_timestamp_seconds"] == "gauge"
    assert typed["bm_agent_ipmi_call_duration_seconds"] == "histogram"
    assert typed["bm_agent_ipmi_errors_total"] == "counter"
    assert 'bm_agent_servers_by_verdict{verdict="ok"}' in text
    assert 'bm_agent_bmc_last_success_timestamp_seconds{uuid="pc-ok-1"}' in text
    assert re.search(r'bm_agent_ipmi_errors_total\{(?=[^}]*\bop="[a-z_]+")(?=[^}]*\bkind="auth")'
                     r'[^}]*\} [1-9]', text)  # label order is the exporter's
    assert 'route="/api/v1/servers",status="200"' in text
    assert 'route="/api/v1/servers/{uuid}",status="404"' in text  # templates, not raw paths


def test_healthz_needs_no_login(cafe):
    answer = requests.get(cafe["agent"].url + "/healthz", timeout=10)
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok" and body["servers"] >= 5 and body["hook_relay"] is True
    assert body["last_pass"]["duration_s"] >= 0


def test_openapi_and_docs(cafe):
    url = cafe["agent"].url
    # /docs is a staff page since security issue 10 (finding 11): log in first.
    assert requests.get(url + "/docs", timeout=10, allow_redirects=False).status_code == 303
    with requests.Session() as browser:
        name, (_role, password) = "view", USERS["view"]
        assert browser.post(url + "/api/v1/auth/login", timeout=10,
                            json={"name": name, "password": password}).status_code == 200
        docs = browser.get(url + "/docs", timeout=10)
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    spec = requests.get(url + "/openapi.json", timeout=10).json()
    for path in ("/api/v1/servers", "/api/v1/servers/{uuid}", "/api/v1/servers/import",
                 "/api/v1/actions/power", "/api/v1/events", "/api/v1/audit",
                 "/api/v1/deeplink", "/api/v1/auth/login", "/api/v1/hook/deeplink",
                 "/api/v1/hook/whoami", "/api/v1/hook/enroll", "/api/v1/seats", "/healthz",
                 "/metrics"):
        assert path in spec["paths"], path
