"""``GET /metrics`` of a real ``bm-agent serve`` passes ``promtool check metrics``.

The exposition is written by ``prometheus_client`` (agent/metrics.py); promtool is the
Prometheus project's own checker (format and lint: names, units, HELP text). Alert rules
under ``packaging/monitoring/`` (none ship yet) go through ``promtool check rules``.
promtool comes from scripts/install-system-deps.sh; without it the test is skipped locally.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROMTOOL = shutil.which("promtool")
RULES = sorted((Path(__file__).parents[2] / "packaging" / "monitoring").glob("*rules*.y*ml"))

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed "
                                "(scripts/install-system-deps.sh installs it)")


@pytest.fixture(scope="module")
def agent(module_agent_proc):
    return module_agent_proc(hook=False)


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, text=True,
                          timeout=60, check=False)


def test_served_metrics_pass_promtool_check_metrics(agent):
    # Labelled series of several families: requests by route and status, password attempts.
    assert agent.get("/healthz", user=None).status_code == 200
    assert agent.get("/api/v1/servers/no-such-pc", user="view").status_code == 404
    agent.post("/api/v1/auth/login", user=None, json={"name": "admin", "password": "wrong-1"})
    answer = agent.get("/metrics", user="view")
    assert answer.status_code == 200
    text = answer.text
    assert 'bm_agent_http_requests_total{route="/api/v1/servers/{uuid}",status="404"}' in text
    assert "bm_agent_password_attempts_total{" in text
    checked = promtool("check", "metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == "", checked


@pytest.mark.skipif(not RULES, reason="no alert rules under packaging/monitoring/")
@pytest.mark.parametrize("rules", RULES, ids=lambda p: p.name)
def test_alert_rules_pass_promtool_check_rules(rules: Path):
    checked = promtool("check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
