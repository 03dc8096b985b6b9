"""Prometheus metrics of the agent, through ``prometheus_client`` (text format 0.0.4).

``Metrics`` owns every family the agent exports, in its own ``CollectorRegistry`` (one per
``Agent``: tests build several in one process, so the library's global registry is never
used), and the methods that feed them:

- ``observe_ipmi(addr, op, seconds, error_kind)``: pass it as ``BmcClient(on_call=...)``;
  feeds the IPMI latency histogram and the error counters by class;
- ``observe_pass(...)``, ``set_verdict_counts(...)``, ``set_bmc_last_success(...)``,
  ``count_check_error(...)``: fed by the monitor;
- ``observe_action(action, result)``: fed by staff actions;
- ``count_hook_refusal(code)``: the API counts every refused hook relay request;
- ``count_hook_report(error)``: every accepted bm-hook failure report, by error name;
- ``observe_http(route, status, seconds)``: the API calls it once per request (``route`` is
  the route template, e.g. ``/api/v1/servers/{uuid}``, never the raw path: bounded labels);
- ``render()``: the text for ``GET /metrics`` (serve it with ``CONTENT_TYPE``).

``Counter``, ``Gauge`` and ``Histogram`` are thin typed wrappers: labels are passed as
keywords and checked against the family's label names (``ValueError`` otherwise), and
``value()`` / ``count()`` read a series back. Counters and histograms are the library's own;
a gauge is a custom collector so that ``replace()`` swaps the whole series set at once (a
scrape never sees half of it), the pattern the library documents for snapshot values.
Escaping of label values and HELP text, number formatting and the ``+Inf`` bucket are the
library's. ``*_created`` series are switched off (process-wide): the agent never exported them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client import Counter as _LibCounter
from prometheus_client import Histogram as _LibHistogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from baremetal.ipmi.client import BmcAddress

__all__ = ["CONTENT_TYPE", "Counter", "Gauge", "Histogram", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_PASS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_IPMI_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# prometheus_client leaves this one function unannotated.
disable_created_metrics()  # type: ignore[no-untyped-call]


class _Family:
    """A named metric with a fixed list of label names, in one registry."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str],
                 registry: CollectorRegistry | None) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._registry = registry if registry is not None else CollectorRegistry()

    def _labels(self, labels: Mapping[str, object]) -> dict[str, str]:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {sorted(labels)}")
        return {n: str(labels[n]) for n in self.label_names}

    def _sample(self, suffix: str, labels: Mapping[str, object]) -> float | None:
        return self._registry.get_sample_value(self.name + suffix, self._labels(labels))

    def _collector(self) -> Collector:
        raise NotImplementedError

    def render(self) -> list[str]:
        """HELP, TYPE and sample lines of this family alone."""
        return generate_latest(self._collector()).decode("utf-8").splitlines()

    def samples(self) -> list[str]:
        """Sample lines of this family alone."""
        return [line for line in self.render() if not line.startswith("#")]


class Counter(_Family):
    """A monotonically increasing count per label set (name ends in ``_total``)."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (), *,
                 registry: CollectorRegistry | None = None) -> None:
        if not name.endswith("_total"):
            raise ValueError(f"counter {name} must end in _total")
        super().__init__(name, help_text, labels, registry)
        self._metric = _LibCounter(name, help_text, self.label_names, registry=self._registry)

    def _collector(self) -> Collector:
        return self._metric

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        """Add ``amount`` (>= 0; ``ValueError`` otherwise)."""
        chosen = self._labels(labels)
        (self._metric.labels(**chosen) if chosen else self._metric).inc(amount)

    def value(self, **labels: object) -> float:
        """Return the current value (0 when never incremented)."""
        return self._sample("", labels) or 0.0


class Gauge(_Family):
    """A value that goes up and down per label set; a series exists once set."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (), *,
                 registry: CollectorRegistry | None = None) -> None:
        super().__init__(name, help_text, labels, registry)
        self._lock = threading.Lock()
        self._values: dict[tuple[str, ...], float] = {}
        self._registry.register(self)

    def _collector(self) -> Collector:
        return self

    def _key(self, labels: Mapping[str, object]) -> tuple[str, ...]:
        return tuple(self._labels(labels).values())

    def set(self, value: float, **labels: object) -> None:
        """Set the value of one label set."""
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def replace(self, values: Iterable[tuple[Mapping[str, object], float]]) -> None:
        """Replace every series at once (label sets not given disappear)."""
        fresh = {self._key(labels): float(value) for labels, value in values}
        with self._lock:
            self._values = fresh

    def value(self, **labels: object) -> float | None:
        """Return the current value, None when the series does not exist."""
        with self._lock:
            return self._values.get(self._key(labels))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield one gauge family, series sorted by labels (the library's collector protocol)."""
        family = GaugeMetricFamily(self.name, self.help, labels=self.label_names)
        with self._lock:
            items = sorted(self._values.items())
        for key, value in items:
            family.add_metric(list(key), value)
        yield family


class Histogram(_Family):
    """Cumulative buckets, sum and count per label set."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] = _IPMI_BUCKETS, *,
                 registry: CollectorRegistry | None = None) -> None:
        super().__init__(name, help_text, labels, registry)
        if "le" in self.label_names:
            raise ValueError("'le' is reserved for histogram buckets")
        self.buckets = tuple(sorted(float(b) for b in buckets))
        self._metric = _LibHistogram(name, help_text, self.label_names, registry=self._registry,
                                     buckets=self.buckets)

    def _collector(self) -> Collector:
        return self._metric

    def observe(self, value: float, **labels: object) -> None:
        """Record one observation."""
        chosen = self._labels(labels)
        (self._metric.labels(**chosen) if chosen else self._metric).observe(value)

    def count(self, **labels: object) -> int:
        """Return the number of observations of one label set."""
        return int(self._sample("_count", labels) or 0)


class Metrics:
    """Every metric the agent exports, with the feeding methods the pieces call."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        p = "bm_agent_"
        self.pass_duration = Histogram(
            p + "check_pass_duration_seconds", "Duration of one cross-check pass.",
            buckets=_PASS_BUCKETS, registry=r)
        self.pass_last_duration = Gauge(
            p + "check_pass_last_duration_seconds", "Duration of the newest cross-check pass.",
            registry=r)
        self.pass_last_end = Gauge(
            p + "check_pass_last_end_timestamp_seconds", "When the newest pass ended (Unix).",
            registry=r)
        self.passes = Counter(p + "check_passes_total", "Cross-check passes by outcome.",
                              ("outcome",), registry=r)
        self.pass_overruns = Counter(
            p + "check_pass_overruns_total", "Passes that took longer than the interval.",
            registry=r)
        self.verdicts = Gauge(p + "servers_by_verdict", "Servers per current verdict.",
                              ("verdict",), registry=r)
        self.bmc_last_success = Gauge(
            p + "bmc_last_success_timestamp_seconds",
            "Last time the BMC of a server answered an IPMI read (Unix).", ("uuid",), registry=r)
        self.ipmi_latency = Histogram(
            p + "ipmi_call_duration_seconds", "Duration of IPMI calls, failed ones included.",
            ("op",), buckets=_IPMI_BUCKETS, registry=r)
        self.ipmi_errors = Counter(p + "ipmi_errors_total", "Failed IPMI calls by error class.",
                                   ("op", "kind"), registry=r)
        self.check_errors = Counter(
            p + "check_errors_total",
            "Failed checks other than IPMI reads (dbc_path, client_node, monitor).",
            ("source", "kind"), registry=r)
        self.actions = Counter(p + "actions_total", "Staff actions by result.",
                               ("action", "result"), registry=r)
        self.http_requests = Counter(p + "http_requests_total", "HTTP requests by route and "
                                     "status.", ("route", "status"), registry=r)
        self.http_latency = Histogram(p + "http_request_duration_seconds",
                                      "Duration of HTTP requests.", ("route",),
                                      buckets=_HTTP_BUCKETS, registry=r)
        self.password_attempts = Counter(
            p + "password_attempts_total",
            "Password attempts (login, token, password change) by outcome: ok and failed "
            "were hashed; rate_limited and busy were refused before any hash.",
            ("purpose", "outcome"), registry=r)
        self.hook_refusals = Counter(p + "hook_refusals_total",
                                     "Boot-hook relay requests refused, by contract code.",
                                     ("code",), registry=r)
        self.hook_reports = Counter(p + "hook_failure_reports_total",
                                    "Failed boot-hook runs reported by the PCs, by error.",
                                    ("error",), registry=r)

    # --- feeding -----------------------------------------------------------------------

    def observe_ipmi(self, addr: BmcAddress, op: str, seconds: float,
                     error_kind: str | None) -> None:
        """``BmcClient`` ``on_call`` hook: latency per operation, errors per class."""
        family = op.split("_", 2)
        label = "_".join(family[:2]) if op.startswith("set_") else op  # set_boot_pxe -> set_boot
        self.ipmi_latency.observe(seconds, op=label)
        if error_kind is not None:
            self.ipmi_errors.inc(op=label, kind=error_kind)

    def observe_pass(self, duration_s: float, *, ended_at: float, failed: bool = False,
                     overran: bool = False) -> None:
        """Record one finished (or failed) pass."""
        self.pass_duration.observe(duration_s)
        self.pass_last_duration.set(duration_s)
        self.pass_last_end.set(ended_at)
        self.passes.inc(outcome="failed" if failed else "ok")
        if overran:
            self.pass_overruns.inc()

    def set_verdict_counts(self, counts: Mapping[Any, int]) -> None:
        """Replace the per-verdict gauge."""
        self.verdicts.replace(({"verdict": str(v)}, n) for v, n in counts.items())

    def set_bmc_last_success(self, by_uuid: Mapping[str, float]) -> None:
        """Replace the per-BMC last-success gauge (removed servers disappear)."""
        self.bmc_last_success.replace(({"uuid": u}, ts) for u, ts in by_uuid.items())

    def count_check_error(self, source: str, kind: str) -> None:
        """Count a failed DBC-path probe, client-node call or monitor failure."""
        self.check_errors.inc(source=source, kind=kind)

    def observe_action(self, action: str, result: str) -> None:
        """Count one staff action by its result."""
        self.actions.inc(action=action, result=result)

    def observe_http(self, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request (route template, status code) and its duration."""
        self.http_requests.inc(route=route, status=str(int(status)))
        self.http_latency.observe(seconds, route=route)

    def observe_password_attempt(self, purpose: str, outcome: str) -> None:
        """Count one password attempt (``PasswordGate.observe`` hook, agent.accounts.ratelimit)."""
        self.password_attempts.inc(purpose=purpose, outcome=outcome)

    def count_hook_refusal(self, code: str) -> None:
        """Count one refused boot-hook relay request by its contract code."""
        self.hook_refusals.inc(code=code)

    def count_hook_report(self, error: str) -> None:
        """Count one accepted boot-hook failure report by its error name."""
        self.hook_reports.inc(error=error)

    # --- exposition --------------------------------------------------------------------

    def render(self) -> str:
        """Return the whole exposition text (ends with a newline)."""
        return generate_latest(self.registry).decode("utf-8")
