"""The event-log filters over real HTTP (``bm-agent serve``): part of a seat's id or name,
the person, a date range in the café's zone or with an offset, an action family, an unknown
family (400 listing the families), and the result logged for an import whose header was
refused ("failed", not "partial"); the import template and a dry-run import that stores
nothing. Events are seeded with known times before the agent starts.
"""

from datetime import UTC, datetime

import pytest

from agent.models import EventKind
from agent.secrets import Sealer, Secret
from agent.store import Store


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


SEEDED = [  # (UTC time, actor, action, seat)
    ("2026-11-30T23:30:00", "oper", "power_on", "PC-B04"),
    ("2026-12-01T02:00:00", "oper", "power_off", "PC-A01"),
    ("2026-12-01T10:00:00", "admin", "bootdev", "PC-B04"),
    ("2026-12-02T09:00:00", "Admin", "power_reset", "PC-B14"),
]


def _seed(settings):
    now = [_ts("2026-11-01T00:00:00")]
    sealer = Sealer.from_key_file(settings.secrets.key_file)
    with Store.open(settings.store.path, sealer=sealer, clock=lambda: now[0]) as store:
        for uuid, desc, row in (("PC-A01", "A排1号", "A"), ("PC-B04", "B排4号 空闲", "B"),
                                ("PC-B14", "B排14号", "B")):
            store.servers.add(uuid=uuid, ip="10.0.0.1", ipmi_host="10.1.0.1", ipmi_user="u",
                              ipmi_password=Secret("p"), desc=desc, labels={"row": row})
        for when, actor, action, uuid in SEEDED:
            now[0] = _ts(when)
            store.events.append(actor=actor, kind=EventKind.AUDIT, action=action,
                                server_uuid=uuid, result="ok")


@pytest.fixture(scope="module")
def agent(module_agent_proc):
    return module_agent_proc(before_start=_seed, config={"check.interval_s": 600.0})


def _found(agent, **params):
    answer = agent.get("/api/v1/audit", params={"limit": 500, **params})
    assert answer.status_code == 200, answer.text
    return [(e["server_uuid"], e["action"]) for e in answer.json()["items"]
            if e["action"] != "import"]


def test_part_of_a_seat_id_finds_it(agent):
    # Found: "B04" found nothing; only the exact uuid did.
    assert _found(agent, seat="B04") == [("PC-B04", "bootdev"), ("PC-B04", "power_on")]
    assert _found(agent, seat="b04") == _found(agent, seat="B04")
    assert {u for u, _ in _found(agent, seat="B排")} == {"PC-B04", "PC-B14"}  # description
    assert _found(agent, seat="%") == [] and _found(agent, seat="_") == []  # literal


def test_filter_by_person(agent):
    assert _found(agent, actor="oper") == [("PC-A01", "power_off"), ("PC-B04", "power_on")]
    assert {a for _, a in _found(agent, actor="admin")} == {"bootdev", "power_reset"}


def test_date_range_with_offset_and_without(agent):
    # A bare date is a whole day in the café's zone (UTC here: no [ui] timezone).
    assert _found(agent, **{"from": "2026-12-01", "to": "2026-12-01"}) == [
        ("PC-B04", "bootdev"), ("PC-A01", "power_off")]
    # In Beijing time 2026-12-01 starts at 2026-11-30T16:00Z: the 23:30Z event is in it.
    assert _found(agent, **{"from": "2026-12-01T00:00+08:00",
                            "to": "2026-12-01T12:00+08:00"}) == [
        ("PC-A01", "power_off"), ("PC-B04", "power_on")]
    bad = agent.get("/api/v1/events", params={"from": "yesterday"})
    assert bad.status_code == 422 and "from" in bad.text


def test_action_family_matches_its_actions(agent):
    # Found: "power" returned nothing (exit 0 in the CLI, an empty page in the API).
    assert {a for _, a in _found(agent, action="power")} == {"power_on", "power_off",
                                                              "power_reset"}
    assert _found(agent, action="power_off") == [("PC-A01", "power_off")]
    assert _found(agent, action="power", seat="B04", actor="oper") == [("PC-B04", "power_on")]


def test_unknown_family_is_400_with_the_families(agent):
    answer = agent.get("/api/v1/events", params={"action": "powr", "lang": "en"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "unknown_action_family"
    assert "power" in error["message"] and "import" in error["message"]


def test_import_with_a_rejected_header_is_logged_failed(agent):
    # Found: an import whose header was refused was logged "partial" (部分完成).
    answer = agent.post("/api/v1/servers/import", params={"filename": "pcs.csv"},
                        data=b"name,addr\nPC-1,1.2.3.4\n", headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200 and answer.json()["created"] == []
    event = agent.get("/api/v1/audit", params={"action": "import"}).json()["items"][0]
    assert event["result"] == "failed" and event["actor"] == "admin"


def test_import_template_and_preview_store_nothing(agent):
    template = agent.get("/api/v1/servers/import/template", user="view")
    assert template.status_code == 200 and template.content.startswith(b"\xef\xbb\xbfuuid,ip,")
    assert "attachment" in template.headers["content-disposition"]
    events = len(agent.get("/api/v1/audit", params={"limit": 500}).json()["items"])
    preview = agent.post("/api/v1/servers/import", params={"filename": "t.csv", "dry_run": "true",
                                                           "register": "true"},
                         data=template.content, headers={"Content-Type": "text/csv"})
    assert preview.status_code == 200, preview.text
    report = preview.json()
    assert report["dry_run"] is True and report["updated"] == ["PC-A01"]  # seeded: it differs
    assert report["queued"] is None
    assert agent.get("/api/v1/servers/PC-A01").json()["desc"] == "A排1号"
    assert len(agent.get("/api/v1/audit", params={"limit": 500}).json()["items"]) == events
    refused = agent.post("/api/v1/servers/import", params={"dry_run": "true"}, user="view",
                         data=template.content, headers={"Content-Type": "text/csv"})
    assert refused.status_code == 403
