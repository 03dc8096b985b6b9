"""No BMC password reaches logs, events, readings, reports, metrics or the store file in clear."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.test_monitor_verdicts import Rig, add_server, rigs

pytestmark = pytest.mark.ipmisim

GOOD = "Sekr1t-pw-7788"
WRONG = "Wr0ng-pw-9911"


@pytest.fixture
def rig_factory(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """Monitor/Actions rigs on a temp store, closed after the test."""
    with rigs(tmp_path) as make:
        yield make


def test_passwords_never_leak(rig_factory, ipmi_sim, dead_bmc, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    good = ipmi_sim(initial_power="on", password=GOOD)
    broken = ipmi_sim(initial_power="on", password=GOOD, ipmi15=False)
    rig = rig_factory(dbc_path_probe=True, deadline_s=1.0)
    add_server(rig.store, "seat-good", good)
    add_server(rig.store, "seat-broken", broken)
    add_server(rig.store, "seat-wrong", good, password=WRONG)
    add_server(rig.store, "seat-dead", dead_bmc, password=GOOD)
    reports = [rig.monitor.run_pass().results for _ in range(2)]
    actions = rig.actions.power(uuids=["seat-good", "seat-wrong", "seat-dead"], action="on",
                                actor="alice")
    actions += rig.actions.set_boot(uuids=["seat-good", "seat-wrong"], device="pxe",
                                    persistent=False, uefi=False, actor="alice")
    verdicts = {r.uuid: str(r.verdict) for r in reports[-1]}
    assert verdicts == {"seat-good": "ok", "seat-broken": "dbc_path_broken",
                        "seat-wrong": "auth_failed", "seat-dead": "unreachable"}
    events = rig.store.events.page(limit=500).items
    readings = [r for s in rig.store.servers.find()
                for r in rig.store.checks.history(server_id=s.id)]
    texts = {
        "logs": caplog.text,
        "events": json.dumps([[e.actor, e.action, e.result, dict(e.detail)] for e in events]),
        "readings": json.dumps([[r.error_detail, r.dbc_path_message] for r in readings]),
        "reports": json.dumps([c.to_dict() for results in reports for c in results]),
        "actions": json.dumps([a.to_dict() for a in actions]),
        "reprs": repr(rig.store.servers.all_credentials()) + repr(reports) + repr(actions),
        "metrics": rig.metrics.render(),
    }
    assert "dbc_ipmitool_failed" in texts["events"] and "password" in texts["readings"]
    for where, text in texts.items():
        for secret in (GOOD, WRONG):
            assert secret not in text, f"{secret} found in {where}"
    rig.store.close()
    for path in Path(rig.store.path).parent.glob("agent.db*"):
        data = path.read_bytes()
        assert GOOD.encode() not in data and WRONG.encode() not in data, path.name
