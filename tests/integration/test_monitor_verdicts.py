"""Every verdict from a real condition: Monitor + Actions against ipmi_sim BMCs on loopback.

ipmitool (``tests.support.bmc.run_ipmitool``) is the independent witness of the BMC state.
The helpers at the top (``Rig``, ``make_rig``, ``add_server``) are shared by the other
``test_monitor_*`` and ``test_actions_*`` modules.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.actions.service import Actions
from agent.config import Settings, load_settings
from agent.metrics import Metrics
from agent.models import EventKind, RegistrationState, Server
from agent.monitor.crosscheck import Verdict
from agent.monitor.loop import Monitor, ServerCheck
from agent.secrets import Sealer, Secret, generate_key
from agent.store import Store
from baremetal.dbc.client import Client
from baremetal.ipmi.client import BmcAddress, BmcClient
from tests.support.bmc import Peer, run_ipmitool

pytestmark = pytest.mark.ipmisim


@dataclass
class Rig:
    """An agent's monitoring half on a temp store: what Agent.build would wire together."""

    store: Store
    bmc: BmcClient
    metrics: Metrics
    settings: Settings
    monitor: Monitor
    actions: Actions

    def close(self) -> None:
        self.monitor.stop(timeout_s=10)
        self.bmc.close()
        self.store.close()

    def check(self, uuid: str) -> ServerCheck:
        """Run one pass; return the check of ``uuid``."""
        report = self.monitor.run_pass()
        return next(r for r in report.results if r.uuid == uuid)

    def verdict_events(self, uuid: str) -> list[Any]:
        page = self.store.events.page(kinds=[EventKind.VERDICT], server_uuid=uuid, limit=100)
        return list(reversed(page.items))


def make_rig(tmp_path: Path, *, client_node: Client | None = None,
             manager_id: str | None = None, actions: dict[str, Any] | None = None,
             **check: Any) -> Rig:
    """Build store, BmcClient (metrics hook wired), Monitor and Actions with ``check`` overrides."""
    base = load_settings(None, environ={"BM_AGENT_NODE_NODE_DAT": str(tmp_path / "node.dat")})
    check = {"deadline_s": 2.0, "pool_size": 16, **check}
    settings = dataclasses.replace(
        base, check=dataclasses.replace(base.check, **check),
        actions=dataclasses.replace(base.actions, **{"verify_deadline_s": 3.0,
                                                     "verify_interval_s": 0.1,
                                                     **(actions or {})}))
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = Store.open(tmp_path / "agent.db", sealer=Sealer(generate_key()))
    metrics = Metrics()
    bmc = BmcClient(max_workers=max(32, settings.check.pool_size), on_call=metrics.observe_ipmi)
    monitor = Monitor(store=store, bmc=bmc, settings=settings, client_node=client_node,
                      metrics=metrics, manager_id=manager_id)
    acts = Actions(store=store, bmc=bmc, settings=settings, metrics=metrics)
    return Rig(store, bmc, metrics, settings, monitor, acts)


@contextlib.contextmanager
def rigs(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """Yield a ``make_rig`` factory (one subdirectory per rig); close every rig afterwards."""
    made: list[Rig] = []

    def _make(**kwargs: Any) -> Rig:
        rig = make_rig(tmp_path / f"rig{len(made)}", **kwargs)
        made.append(rig)
        return rig

    try:
        yield _make
    finally:
        for rig in made:
            rig.close()


@pytest.fixture
def rig_factory(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """``make_rig`` with cleanup (other modules define the same fixture over ``rigs``)."""
    with rigs(tmp_path) as make:
        yield make


def add_server(store: Store, uuid: str, peer: Peer | BmcAddress, *,
               password: str | None = None, node_id: str | None = None,
               **labels: str) -> Server:
    """Put a server with the peer's BMC into the inventory (optionally registered)."""
    user = peer.username if isinstance(peer, BmcAddress) else peer.user
    server = store.servers.add(uuid=uuid, ip="127.0.0.9", ipmi_host=peer.host,
                               ipmi_port=peer.port, ipmi_user=user,
                               ipmi_password=Secret(password or peer.password), labels=labels)
    if node_id is not None:
        server = store.servers.set_registration(
            server_id=server.id, state=RegistrationState.REGISTERED, node_id=node_id)
    return server


# --- verdicts ---------------------------------------------------------------------------


def test_healthy_bmc_is_ok_with_one_event(rig_factory, ipmi_sim) -> None:
    bmc = ipmi_sim(initial_power="on")
    rig = rig_factory()
    add_server(rig.store, "seat-01", bmc)
    first = rig.check("seat-01")
    assert (first.verdict, first.power, first.bootdev) == (Verdict.OK, "on", "default")
    assert first.changed and first.latency_ms is not None and first.latency_ms < 1000
    assert rig.check("seat-01").changed is False
    events = rig.verdict_events("seat-01")
    assert [(e.result, e.detail["previous"]) for e in events] == [("ok", None)]
    history = rig.store.checks.history(server_id=rig.store.servers.get_by_uuid(
        uuid="seat-01").id)
    assert [h.power for h in history] == ["on", "on"]


def test_wrong_password_is_auth_failed_and_probe_skipped(rig_factory, ipmi_sim) -> None:
    bmc = ipmi_sim(initial_power="on")
    rig = rig_factory(dbc_path_probe=True)
    add_server(rig.store, "seat-02", bmc, password="wrong-pass1")
    check = rig.check("seat-02")
    assert check.verdict == Verdict.AUTH_FAILED
    assert check.reasons == ("ipmi_auth",)
    assert check.dbc_path_ok is None and "probe skipped (ipmi auth)" in check.detail
    assert run_ipmitool(bmc, "chassis", "power", "status", password="wrong-pass1").returncode


def test_refused_logins_are_held_until_the_password_changes(rig_factory, ipmi_sim) -> None:
    """Two refused logins, then no more tries (BMC account lockout); a fix retries at once."""
    bmc = ipmi_sim(initial_power="on")
    rig = rig_factory()
    server = add_server(rig.store, "seat-03", bmc, password="wrong-pass1")

    def logins_refused() -> float:
        return rig.metrics.ipmi_errors.value(op="read_power", kind="auth")

    assert [rig.check("seat-03").verdict for _ in range(2)] == [Verdict.AUTH_FAILED] * 2
    assert logins_refused() == 2
    held = rig.check("seat-03")
    assert held.verdict == Verdict.AUTH_FAILED and "not retried" in held.detail
    assert "next try in 15 min" in held.detail and "wrong-pass1" not in held.detail
    assert logins_refused() == 2  # no login was attempted
    rig.store.servers.update(server_id=server.id, ipmi_password=Secret(bmc.password))
    assert rig.check("seat-03").verdict == Verdict.OK


def test_ipmi15_disabled_with_probe_is_dbc_path_broken(rig_factory, ipmi_sim) -> None:
    broken, fine = ipmi_sim(initial_power="on", ipmi15=False), ipmi_sim(initial_power="on")
    rig = rig_factory(dbc_path_probe=True)
    add_server(rig.store, "seat-03", broken)
    add_server(rig.store, "seat-04", fine)
    report = rig.monitor.run_pass()
    by_uuid = {r.uuid: r for r in report.results}
    assert by_uuid["seat-03"].verdict == Verdict.DBC_PATH_BROKEN
    assert by_uuid["seat-03"].dbc_path_ok is False and by_uuid["seat-03"].power == "on"
    assert "Unable to establish" in by_uuid["seat-03"].detail
    assert (by_uuid["seat-04"].verdict, by_uuid["seat-04"].dbc_path_ok) == (Verdict.OK, True)
    # The witness: the DBC node's own way (no -I: IPMI 1.5 lan) fails only on the first.
    assert run_ipmitool(broken, "chassis", "power", "status", interface=None).returncode != 0
    assert run_ipmitool(fine, "chassis", "power", "status", interface=None).returncode == 0
    assert rig.metrics.check_errors.value(source="dbc_path", kind="failed") == 1


def test_ipmi15_only_bmc_is_unsupported(rig_factory, ipmi_sim) -> None:
    bmc = ipmi_sim(initial_power="off", ipmi20=False)
    rig = rig_factory(dbc_path_probe=True)
    add_server(rig.store, "seat-05", bmc)
    check = rig.check("seat-05")
    assert check.verdict == Verdict.UNSUPPORTED
    assert "IPMI 1.5" in check.detail
    assert check.dbc_path_ok is True  # the DBC node's IPMI 1.5 way still works
    assert run_ipmitool(bmc, "chassis", "power", "status").returncode != 0  # no lanplus


def test_power_flipped_behind_our_back_is_mismatch_after_two_passes(rig_factory,
                                                                     ipmi_sim) -> None:
    bmc = ipmi_sim(initial_power="off")
    rig = rig_factory(transition_grace_s=0.0)
    add_server(rig.store, "seat-06", bmc)
    (result,) = rig.actions.power(uuids=["seat-06"], action="on", actor="alice")
    assert (result.verified, result.code) == (True, "verified")
    assert rig.check("seat-06").verdict == Verdict.OK
    bmc.set_power("off")  # someone pulled it down without the agent
    first = rig.check("seat-06")
    assert first.verdict == Verdict.OK
    assert "unconfirmed" in first.reasons and "power_differs_from_request" in first.reasons
    second = rig.check("seat-06")
    assert second.verdict == Verdict.MISMATCH and second.changed
    assert second.reasons == ("power_differs_from_request",)
    assert run_ipmitool(bmc, "chassis", "power", "status").stdout.strip() == \
        "Chassis Power is off"
    assert [e.result for e in rig.verdict_events("seat-06")] == ["ok", "mismatch"]


def test_discrepancy_right_after_an_action_is_transitioning(rig_factory, ipmi_sim) -> None:
    bmc = ipmi_sim(initial_power="on")
    rig = rig_factory(transition_grace_s=60.0)
    add_server(rig.store, "seat-07", bmc)
    assert rig.check("seat-07").verdict == Verdict.OK
    (result,) = rig.actions.power(uuids=["seat-07"], action="off", actor="alice")
    assert result.verified
    bmc.set_power("on")  # the machine is not (yet) where staff asked
    check = rig.check("seat-07")
    assert (check.verdict, check.reasons) == (Verdict.TRANSITIONING, ("action_in_progress",))
    assert "staff asked off" in check.detail
    assert [e.result for e in rig.verdict_events("seat-07")] == ["ok", "transitioning"]
    bmc.set_power("off")
    assert rig.check("seat-07").verdict == Verdict.OK  # reached: no longer transitioning
