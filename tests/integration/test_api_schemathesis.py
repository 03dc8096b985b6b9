"""Schemathesis against the live agent's OpenAPI: no 5xx, answers as documented.

One café for the module: the emulator (the DBC node), two fake BMCs and a dead BMC port, and
the real ``bm-agent serve`` (``Agent.build`` + ``create_app(background=True)``: monitor,
registry worker) with short deadlines, on a store of its own. The schema is read from the
live ``/openapi.json``; every operation is generated (examples, coverage and fuzzing
phases, positive and negative data) and called over HTTP twice: as an admin, then as a
viewer. Checks: ``not_a_server_error``, ``response_schema_conformance``,
``status_code_conformance``, ``content_type_conformance`` and ``negative_data_rejection``.

Side effects are allowed (the store is disposable) but kept from breaking the run:
- the staff names are not guessable, so a generated ``DELETE /users/{name}`` misses them;
- a generated ``DELETE /auth/tokens/{id}`` may revoke the caller's own token: the token is
  then re-issued from the store before the next call;
- every ``ipmi_hostname`` sent (JSON bodies and CSV imports, whose documented example
  names 192.168.2.101) is rewritten to 127.0.0.1: the monitor and the actions contact
  what is stored, and traffic stays on loopback (checked at the end); one of the uuids
  that path parameters take is an imported server's, so detail, deeplink, patch and
  actions meet real rows.
The fuzz traffic comes from 127.0.0.2, so its refused logins never lock out 127.0.0.1.

Size: ``MAX_EXAMPLES`` per operation and phase, bounded for CI; the module prints the
number of operations and requests (and keeps them in ``RUN``) at the end.
"""

from __future__ import annotations

import csv
import io
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from agent.accounts.auth import Authenticator
from agent.models import Role
from agent.secrets import Sealer
from agent.store import Store
from tests.support.agentproc import AgentProc, SourceAddressAdapter
from tests.support.bmc import start_fake_bmc
from tests.support.emulator import start_emulator
from tests.support.ports import free_port

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 25
FUZZ_SOURCE = "127.0.0.2"
ADMIN, VIEWER = "st-admin-q7x", "st-view-q7x"
USERS = {ADMIN: (Role.ADMIN, "st-admin-pw-9k2c"), VIEWER: (Role.VIEWER, "st-view-pw-4h1d")}
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance, negative_data_rejection]
# The import answers a per-row report for any body, even an empty one ("empty_file", line 1):
# the dashboard shows that report, so a missing body is not refused there by design.
REPORTS_ANY_BODY = "POST /api/v1/servers/import"
HEADER = "uuid,ip,os,desc,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port,labels"
KNOWN = ("st-pc-1", "st-pc-2", "st-pc-dead")
# What the run did, per role: operations seen, requests sent, statuses answered.
RUN: dict[str, Counter[str]] = {"operations": Counter(), "requests": Counter(),
                                "statuses": Counter()}
_RUN_LOCK = threading.Lock()


class Tokens:
    """The staff bearer tokens; re-issued from the store when the fuzz revoked one."""

    def __init__(self, agent: AgentProc) -> None:
        self._agent = agent
        self.value = dict(agent.tokens)

    def reissue_if_revoked(self, name: str) -> None:
        """Issue ``name`` a new token if the current one no longer authenticates."""
        answer = requests.get(self._agent.url + "/api/v1/auth/me", timeout=10,
                              headers={"Authorization": f"Bearer {self.value[name]}"})
        if answer.status_code != 401:
            return
        settings_ = self._agent.settings
        with Store.open(settings_.store.path,
                        sealer=Sealer.from_key_file(settings_.secrets.key_file)) as store:
            auth = Authenticator(store)
            user = store.users.get(name=name)
            self.value[name] = auth.issue_token(user=user, label="st-reissued").token.reveal()


@pytest.fixture(scope="module")
def cafe(module_agent_proc: Any, module_spawn: Any,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The emulator, two fake BMCs, a dead BMC port and the agent with three servers."""
    tmp = tmp_path_factory.mktemp("schemathesis")
    emu = start_emulator(module_spawn, tmp)
    bmcs = [start_fake_bmc(tmp / f"bmc{i}", initial_power="on") for i in range(2)]
    agent = module_agent_proc(emulator=emu, users=USERS, config={
        "check.interval_s": 2.0, "check.deadline_s": 0.5, "check.pool_size": 8,
        "actions.verify_deadline_s": 1.0, "node.timeout_s": 2.0, "log.level": "WARNING"})
    rows = [HEADER] + [
        f"{uuid},127.0.0.{61 + n},win10,seat {n},127.0.0.1,{bmc.user},{bmc.password},"
        f"{bmc.port},zone=vip" for n, (uuid, bmc) in enumerate(zip(KNOWN, bmcs, strict=False))]
    rows.append(f"{KNOWN[2]},127.0.0.63,win10,dead,127.0.0.1,admin,deadpw1,{free_port()},"
                "zone=std")
    imported = agent.post("/api/v1/servers/import", user=ADMIN, params={"register": "true"},
                          data=("\n".join(rows) + "\n").encode(),
                          headers={"Content-Type": "text/csv"})
    assert imported.status_code == 200 and len(imported.json()["created"]) == 3, imported.text
    yield {"agent": agent, "tokens": Tokens(agent)}
    for bmc in bmcs:
        bmc.stop()


@pytest.fixture(scope="module")
def live_schema(cafe: dict[str, Any]) -> Any:
    """The agent's OpenAPI, loaded from its live ``/openapi.json``."""
    agent: AgentProc = cafe["agent"]
    schema = schemathesis.openapi.from_url(agent.url + "/openapi.json", timeout=10)

    @schema.hook
    def flatmap_path_parameters(_ctx: Any, params: dict[str, Any]) -> Any:
        if params and "uuid" in params:
            return st.sampled_from([params, {**params, "uuid": KNOWN[0]}])
        return st.just(params)

    return schema


schema = schemathesis.pytest.from_fixture("live_schema")


def _loopback_only(body: Any) -> Any:
    """Point every IPMI host of a generated body (JSON or CSV) at 127.0.0.1; return it."""
    if isinstance(body, bytes) and b"ipmi_hostname" in body:  # else keep undecodable bytes
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        return _loopback_csv(body)
    for item in body if isinstance(body, list) else [body]:
        if isinstance(item, dict) and "ipmi_hostname" in item:
            item["ipmi_hostname"] = "127.0.0.1"
    return body


def _loopback_csv(text: str) -> str:
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error:
        return text  # the importer cannot read it either
    if not rows or "ipmi_hostname" not in rows[0]:
        return text
    column = rows[0].index("ipmi_hostname")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(rows[0])
    for row in rows[1:]:
        writer.writerow([("127.0.0.1" if n == column else v) for n, v in enumerate(row)])
    return out.getvalue()


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", SourceAddressAdapter(FUZZ_SOURCE))
    return session


def _call(case: Any, cafe: dict[str, Any], user: str) -> None:
    tokens: Tokens = cafe["tokens"]
    case.body = _loopback_only(case.body)
    with _session() as session:
        answer = case.call(base_url=cafe["agent"].url, session=session, timeout=30,
                           headers={"Authorization": f"Bearer {tokens.value[user]}"})
    label = case.operation.label
    with _RUN_LOCK:
        RUN["operations"][f"{user} {label}"] += 1
        RUN["requests"][user] += 1
        RUN["statuses"][str(answer.status_code)] += 1
    excluded = [negative_data_rejection] if label == REPORTS_ANY_BODY else []
    try:
        case.validate_response(answer, checks=CHECKS, excluded_checks=excluded)
    finally:
        if case.method == "DELETE" and case.path.startswith("/api/v1/auth/tokens"):
            tokens.reissue_if_revoked(user)


_SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                     suppress_health_check=list(HealthCheck), database=None)


@schema.parametrize()
@_SETTINGS
def test_api_as_admin(case: Any, cafe: dict[str, Any]) -> None:
    """Every operation as an admin: no 5xx, every answer as the schema says."""
    _call(case, cafe, ADMIN)


@schema.parametrize()
@_SETTINGS
def test_api_as_viewer(case: Any, cafe: dict[str, Any]) -> None:
    """Every operation as a viewer (writes refused as documented)."""
    _call(case, cafe, VIEWER)


def test_malformed_bodies_and_huge_ids_are_refused(cafe: dict[str, Any]) -> None:
    """Regressions found by this run: undecodable JSON was an undocumented 400, ids past
    SQLite's INTEGER range were a 500 (OverflowError); now 400 bad_request and 422."""
    agent: AgentProc = cafe["agent"]
    token = cafe["tokens"].value[ADMIN]
    with _session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        bad = session.post(agent.url + "/api/v1/users", data=b"\xff\xfe{", timeout=10,
                           headers={"Content-Type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request", bad.text
        for path in ("/api/v1/events", "/api/v1/audit"):
            huge = session.get(agent.url + path, params={"before_id": 2**63}, timeout=10)
            assert huge.status_code == 422, huge.text
            assert huge.json()["error"]["code"] == "validation_error"
        revoke = session.delete(f"{agent.url}/api/v1/auth/tokens/{2**63}", timeout=10)
        assert revoke.status_code == 422, revoke.text
        # Security issue 10 (finding 10): the dashboard's /ui/api (not in the schema) too,
        # and float parameters that are not numbers.
        ui = session.get(agent.url + "/ui/api/events?before=99999999999999999999999",
                         timeout=10)
        assert ui.status_code == 422, ui.text
        for since in ("nan", "inf", "1e400", "-1"):
            odd = session.get(agent.url + "/api/v1/events", params={"since": since}, timeout=10)
            assert odd.status_code == 422, (since, odd.text)
    assert "Traceback" not in agent.log()


def test_run_size_and_agent_health(live_schema: Any, cafe: dict[str, Any]) -> None:
    """Report the run's size; every operation ran for both roles; nothing left the loopback;
    the agent is alive and logged no traceback."""
    agent: AgentProc = cafe["agent"]
    ops = {key.split(" ", 1)[1] for key in RUN["operations"]}
    total = sum(RUN["requests"].values())
    print(f"\nschemathesis run: {len(ops)} operations x 2 roles, max_examples {MAX_EXAMPLES} "
          f"per operation and phase; requests {dict(RUN['requests'])} = {total}; "
          f"statuses {dict(sorted(RUN['statuses'].items()))}")
    documented = {op.ok().label for op in live_schema.get_all_operations()}
    assert ops == documented
    assert not [s for s in RUN["statuses"] if s.startswith("5")], RUN["statuses"]
    listed = requests.get(agent.url + "/api/v1/servers", timeout=10, headers={
        "Authorization": f"Bearer {cafe['tokens'].value[ADMIN]}"}).json()
    hosts = {s["ipmi_host"] for s in listed["items"]}
    assert hosts <= {"127.0.0.1"}, hosts
    assert agent.proc.alive()
    assert "Traceback" not in agent.log(), agent.log()[-4000:]
    assert requests.get(agent.url + "/healthz", timeout=5).status_code == 200
