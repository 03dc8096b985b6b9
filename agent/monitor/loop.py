"""The cross-check loop: every interval, every server, a bounded pool, deadlines, never dies.

``Monitor.run_pass()`` runs one pass now and returns a ``PassReport``:

1. load credentials, staff intents, prior verdicts (one read each) and rental state;
2. observe every server in a thread pool of ``[check] pool_size`` (``agent.monitor.reader``);
   servers whose last verdict was ``unreachable`` go first, as Ironic polls failing nodes
   first: their deadlines then run in parallel with the healthy reads instead of being
   added at the end of the pass. A server whose observation outlives its budget (every
   call has a deadline, so only a bug or a starved host can do that) is recorded as
   ``unreachable`` and the pass goes on without it;
3. judge each server (``agent.monitor.crosscheck.judge``: pure), store readings and verdicts in one
   transaction (``store.checks.record``, which also appends a ``verdict`` event for every
   change), update the metrics.

``start()`` runs passes on a daemon thread: the first after a random delay of up to
``jitter_s``, then every ``interval_s`` plus up to ``jitter_s``. Passes never overlap (a
lock also serialises ``run_pass`` called from the CLI or API); a pass that outruns the
interval is logged and recorded as a ``system`` event, and the next starts right after it.
A pass that fails (store down, a bug) is logged, counted and recorded as an event when
possible; the loop carries on. ``stop()`` ends the loop after the current pass.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.config import Settings, read_node_dat
from agent.errors import AgentError
from agent.metrics import Metrics
from agent.models import (
    ACTOR_MONITOR,
    CheckResult,
    EventKind,
    ServerCredentials,
    ServerIntent,
    VerdictChange,
    VerdictRecord,
)
from agent.monitor.crosscheck import (
    BootObservation,
    Expectation,
    Prior,
    Reading,
    Verdict,
    judge,
)
from agent.monitor.login_guard import AuthGuard
from agent.monitor.reader import Checker, Observation, reading_record
from agent.monitor.rental_source import RentalSource, rental_source
from agent.store import Store
from baremetal.dbc.client import Client
from baremetal.ipmi.client import BmcClient

__all__ = ["Monitor", "PassReport", "ServerCheck"]

_LOGGER = logging.getLogger(__name__)
_SLACK_S = 0.5
_HELD_TEXT = ("login refused twice with these credentials; not retried for now, so the BMC "
              "does not lock the account: correct the IPMI user or password to retry at once")
_REASON_TEXT = {
    "action_in_progress": "staff action in progress",
    "power_differs_from_request": "power differs from the staff request",
    "power_differs_from_dbc": "power differs from DBC's view",
    "boot_device_differs": "persistent boot device lost",
    "unconfirmed": "discrepancy not yet confirmed",
    "dbc_ipmitool_failed": "the DBC node's ipmitool command fails",
    "idle_power_off": "powered off by DBC's idle timer",
}


@dataclass(frozen=True)
class ServerCheck:
    """One server's outcome in one pass (what ``check --once`` prints)."""

    uuid: str
    node_id: str | None
    verdict: Verdict
    power: str | None
    bootdev: str | None
    boot: BootObservation | None
    detail: str
    reasons: tuple[str, ...] = ()
    dbc_path_ok: bool | None = None
    dbc_power_status: str | None = None
    latency_ms: float | None = None
    changed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (no secrets: none are part of a check)."""
        boot = self.boot
        return {
            "uuid": self.uuid, "node_id": self.node_id, "verdict": str(self.verdict),
            "power": self.power, "bootdev": self.bootdev,
            "boot": None if boot is None else {"device": boot.device, "valid": boot.valid,
                                               "persistent": boot.persistent,
                                               "uefi": boot.uefi},
            "detail": self.detail, "reasons": list(self.reasons),
            "dbc_path_ok": self.dbc_path_ok, "dbc_power_status": self.dbc_power_status,
            "latency_ms": self.latency_ms, "changed": self.changed,
        }


@dataclass(frozen=True)
class PassReport:
    """One pass: when it started (Unix), how long it took, every server's check."""

    started_at: float
    duration_s: float
    results: list[ServerCheck] = field(default_factory=list)
    overran: bool = False

    def counts(self) -> dict[str, int]:
        """Servers per verdict in this pass."""
        found: dict[str, int] = {}
        for result in self.results:
            found[str(result.verdict)] = found.get(str(result.verdict), 0) + 1
        return found


class Monitor:
    """Periodic cross-verification of every server (see the module docstring)."""

    def __init__(self, *, store: Store, bmc: BmcClient, settings: Settings,
                 client_node: Client | None, metrics: Metrics,
                 clock: Callable[[], float] = time.time, manager_id: str | None = None,
                 ipmitool: str = "ipmitool") -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        check = settings.check
        if client_node is not None and manager_id is None:
            manager_id = _manager_id(settings)
        self._checker = Checker(bmc=bmc, deadline_s=check.deadline_s,
                                dbc_path_probe=check.dbc_path_probe, client_node=client_node,
                                manager_id=manager_id, ipmitool=ipmitool, metrics=metrics,
                                clock=clock)
        self._rentals = rental_source(settings)
        self._auth_guard = AuthGuard(hold_s=check.auth_retry_after_s)
        self._pass_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._random = random.Random()  # noqa: S311 - jitter, not security
        self.last_pass: PassReport | None = None

    @property
    def rentals(self) -> RentalSource | None:
        """The rental source (chain, then rentals file); None when neither is configured."""
        return self._rentals

    # --- loop --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background loop (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="monitor", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop the loop; waits for the pass in progress (at most ``timeout_s``)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)

    def _loop(self) -> None:
        check = self._settings.check
        next_start = time.monotonic() + self._random.uniform(0, check.jitter_s)
        while not self._stop.wait(max(0.0, next_start - time.monotonic())):
            started = time.monotonic()
            self._guarded_pass()
            now = time.monotonic()
            next_start = max(started + check.interval_s, now) + \
                self._random.uniform(0, check.jitter_s)

    def _guarded_pass(self) -> None:
        try:
            self.run_pass()
        except Exception as exc:  # the loop must survive anything one pass does
            _LOGGER.exception("cross-check pass failed")
            self._metrics.count_check_error("monitor", type(exc).__name__)
            self._metrics.observe_pass(0.0, ended_at=self._clock(), failed=True)
            self._system_event("pass_failed", {"error": type(exc).__name__,
                                               "message": _error_text(exc)})

    # --- one pass ----------------------------------------------------------------------

    def run_pass(self) -> PassReport:
        """Observe, judge and record every server once; return the report."""
        with self._pass_lock:
            started_at, started = self._clock(), time.monotonic()
            creds = self._store.servers.all_credentials()
            intents = self._store.intents.all()
            priors = self._store.checks.verdicts()
            creds.sort(key=lambda c: _failing_first(priors.get(c.server_id)))
            observations = self._observe_all(creds)
            results, checks = self._judge_all(creds, observations, intents, priors)
            changes = self._store.checks.record(
                results=results, keep_per_server=self._settings.store.readings_per_server)
            changed = {c.uuid for c in changes if c.changed}
            checks = [_with_changed(c, c.uuid in changed) for c in checks]
            duration = time.monotonic() - started
            report = PassReport(started_at=started_at, duration_s=duration, results=checks,
                                overran=duration > self._settings.check.interval_s)
            self._after_pass(report, creds, changes)
            self.last_pass = report
            return report

    def _observe_all(self, creds: list[ServerCredentials]) -> dict[int, Observation]:
        self._auth_guard.forget_except({c.server_id for c in creds})
        held: dict[int, Observation] = {}
        for cred in creds:
            left = self._auth_guard.hold_left_s(cred)
            if left is not None:
                held[cred.server_id] = self._failed(
                    cred, "auth", f"{_HELD_TEXT} (next try in {left / 60:.0f} min)")
        observed = self._observe_pool([c for c in creds if c.server_id not in held])
        for cred in creds:
            if cred.server_id in observed:
                failed = observed[cred.server_id].reading.ipmi_error == "auth"
                self._auth_guard.record(cred, auth_failed=failed)
        return {**held, **observed}

    def _observe_pool(self, creds: list[ServerCredentials]) -> dict[int, Observation]:
        if not creds:
            return {}
        size = min(self._settings.check.pool_size, len(creds))
        pool = concurrent.futures.ThreadPoolExecutor(size, thread_name_prefix="check")
        try:
            futures = {pool.submit(self._checker.observe, c): c for c in creds}
            waves = -(-len(creds) // size)  # worst case: every wave spends the full budget
            budget = waves * self._checker.per_server_budget_s + _SLACK_S
            done, late = concurrent.futures.wait(futures, timeout=budget)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        found: dict[int, Observation] = {}
        for future in done:
            cred = futures[future]
            try:
                found[cred.server_id] = future.result()
            except Exception as exc:  # a bug for one server must not lose the others
                _LOGGER.exception("check of %s failed", cred.uuid)
                self._metrics.count_check_error("monitor", type(exc).__name__)
                found[cred.server_id] = self._failed(cred, "protocol",
                                                     f"check failed: {type(exc).__name__}")
        for future in late:
            cred = futures[future]
            _LOGGER.error("check of %s outlived its %.1f s budget", cred.uuid, budget)
            self._metrics.count_check_error("monitor", "late")
            found[cred.server_id] = self._failed(cred, "timeout",
                                                 "check did not finish within the pass budget")
        return found

    def _failed(self, cred: ServerCredentials, kind: str, detail: str) -> Observation:
        return Observation(uuid=cred.uuid, server_id=cred.server_id, ts=self._clock(),
                           reading=Reading(ipmi_error=kind, ipmi_error_detail=detail))

    def _judge_all(self, creds: list[ServerCredentials], observations: Mapping[int, Observation],
                   intents: Mapping[int, ServerIntent], priors: Mapping[int, VerdictRecord],
                   ) -> tuple[list[CheckResult], list[ServerCheck]]:
        check = self._settings.check
        now = self._clock()
        results: list[CheckResult] = []
        checks: list[ServerCheck] = []
        rented = self._rentals.rented_many([c.node_id for c in creds]) if self._rentals else {}
        for cred in creds:
            obs = observations[cred.server_id]
            expectation = self._expectation(cred, intents.get(cred.server_id), now,
                                            rented.get(cred.node_id or ""))
            prior = priors.get(cred.server_id)
            judgement = judge(obs.reading, expectation,
                              Prior(prior.verdict, prior.discrepant_passes) if prior else Prior(),
                              grace_s=check.transition_grace_s,
                              confirmations=check.mismatch_confirmations)
            results.append(CheckResult(reading=reading_record(obs), verdict=judgement.verdict,
                                       reasons=judgement.reasons,
                                       discrepant_passes=judgement.discrepant_passes))
            checks.append(_server_check(cred, obs, judgement.verdict, judgement.reasons,
                                        expectation))
        return results, checks

    def _expectation(self, cred: ServerCredentials, intent: ServerIntent | None,
                     now: float, rented: bool | None) -> Expectation:
        if intent is None:
            return Expectation(rented=rented)
        stamps = [t for t in (intent.power_at, intent.boot_at) if t is not None]
        age = now - max(stamps) if stamps else None
        return Expectation(power=intent.power, boot_device=intent.boot_device,
                           boot_persistent=intent.boot_persistent, action_age_s=age,
                           rented=rented)

    def _after_pass(self, report: PassReport, creds: list[ServerCredentials],
                    changes: list[VerdictChange]) -> None:
        for change in changes:
            if change.changed:
                _LOGGER.info("server %s: %s -> %s %s", change.uuid, change.previous,
                             change.current.verdict, ",".join(change.current.reasons))
        uuids = {c.server_id: c.uuid for c in creds}
        last_ok = {uuids[c.server_id]: c.current.last_ok_at for c in changes
                   if c.current.last_ok_at is not None and c.server_id in uuids}
        self._metrics.set_bmc_last_success(last_ok)
        self._metrics.set_verdict_counts(self._store.checks.verdict_counts())
        self._metrics.observe_pass(report.duration_s, ended_at=self._clock(),
                                   overran=report.overran)
        if report.overran:
            interval = self._settings.check.interval_s
            _LOGGER.warning("cross-check pass over %d servers took %.1f s, longer than the "
                            "%.1f s interval", len(report.results), report.duration_s, interval)
            self._system_event("pass_overrun", {"duration_s": round(report.duration_s, 3),
                                                "interval_s": interval,
                                                "servers": len(report.results)})

    def _system_event(self, action: str, detail: dict[str, Any]) -> None:
        try:
            self._store.events.append(actor=ACTOR_MONITOR, kind=EventKind.SYSTEM,
                                      action=action, result="failed" if "error" in detail
                                      else "warning", detail=detail)
        except Exception:  # the store itself may be what failed
            _LOGGER.exception("cannot record the %s event", action)


def _manager_id(settings: Settings) -> str | None:
    try:
        return read_node_dat(settings.node.node_dat).node_id
    except AgentError as exc:
        _LOGGER.warning("client-node power_status disabled: %s", exc.message())
        return None


def _failing_first(prior: VerdictRecord | None) -> int:
    return 0 if prior is not None and prior.verdict == Verdict.UNREACHABLE else 1


def _error_text(exc: Exception) -> str:
    return exc.message() if isinstance(exc, AgentError) else type(exc).__name__


def _with_changed(check: ServerCheck, changed: bool) -> ServerCheck:
    return check if check.changed == changed else dataclasses.replace(check, changed=changed)


def _server_check(cred: ServerCredentials, obs: Observation, verdict: Verdict,
                  reasons: tuple[str, ...], expectation: Expectation) -> ServerCheck:
    reading = obs.reading
    boot = reading.boot
    dbc = reading.dbc_path
    return ServerCheck(
        uuid=cred.uuid, node_id=cred.node_id, verdict=verdict, power=reading.power,
        bootdev=boot.device if boot else None, boot=boot,
        detail=_detail(obs, verdict, reasons, expectation), reasons=reasons,
        dbc_path_ok=dbc.ok if dbc else None, dbc_power_status=reading.dbc_power_status,
        latency_ms=obs.latency_ms)


def _detail(obs: Observation, verdict: Verdict, reasons: tuple[str, ...],
            expectation: Expectation) -> str:
    """One line for people: what was seen, and why the verdict is what it is."""
    reading = obs.reading
    if reading.ipmi_error is not None:
        parts = [f"ipmi {reading.ipmi_error}: {reading.ipmi_error_detail}".rstrip(": ")]
    else:
        boot = reading.boot
        parts = [f"power {reading.power}", f"boot {boot.device if boot else 'unknown'}"
                 + (" persistent" if boot and boot.persistent else "")
                 + (" uefi" if boot and boot.uefi else "")]
        if expectation.power is not None and reading.power != expectation.power:
            parts.append(f"staff asked {expectation.power}")
    if reading.dbc_path is not None:
        parts.append(f"dbc path {'ok' if reading.dbc_path.ok else 'FAILS'}: "
                     f"{reading.dbc_path.message}")
    if reading.dbc_power_status is not None:
        parts.append(f"DBC says: {reading.dbc_power_status}")
    if verdict == Verdict.EXPECTED_OFF or expectation.rented is not None:
        parts.append("rented" if expectation.rented else "not rented")
    parts += [_REASON_TEXT.get(r, r) for r in reasons if not r.startswith("ipmi_")]
    parts += list(obs.notes)
    return "; ".join(parts)
