"""Prometheus text exposition (format 0.0.4) without dependencies; thread-safe.

``Metrics`` owns every family the agent exports and the methods that feed them:

- ``observe_ipmi(addr, op, seconds, error_kind)``: pass it as ``BmcClient(on_call=...)``;
  feeds the IPMI latency histogram and the error counters by class;
- ``observe_pass(...)``, ``set_verdict_counts(...)``, ``set_bmc_last_success(...)``,
  ``count_check_error(...)``: fed by the monitor;
- ``observe_action(action, result)``: fed by staff actions;
- ``count_hook_refusal(code)``: the API counts every refused hook relay request;
- ``observe_http(route, status, seconds)``: the API calls it once per request (``route`` is
  the route template, e.g. ``/api/v1/servers/{uuid}``, never the raw path: bounded labels);
- ``render()``: the text for ``GET /metrics`` (serve it with ``CONTENT_TYPE``).

The primitives (``Counter``, ``Gauge``, ``Histogram``) are generic; label values are
escaped (backslash, double quote, newline) and HELP text too (backslash, newline).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from baremetal.ipmi.client import BmcAddress

__all__ = ["CONTENT_TYPE", "Counter", "Gauge", "Histogram", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_PASS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_IPMI_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

LabelValues = tuple[str, ...]


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _labels_text(names: Sequence[str], values: Sequence[str],
                 extra: tuple[str, str] | None = None) -> str:
    pairs = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True)]
    if extra is not None:
        pairs.append(f'{extra[0]}="{_escape_label(extra[1])}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


class _Family:
    """A named metric with a fixed list of label names."""

    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._lock = threading.Lock()

    def _key(self, labels: Mapping[str, object]) -> LabelValues:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {sorted(labels)}")
        return tuple(str(labels[n]) for n in self.label_names)

    def header(self) -> list[str]:
        """HELP and TYPE lines."""
        return [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        """Sample lines (overridden)."""
        return []

    def render(self) -> list[str]:
        """HELP, TYPE and sample lines."""
        return self.header() + self.samples()


class Counter(_Family):
    """A monotonically increasing count per label set."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[LabelValues, float] = {}

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        """Add ``amount`` (>= 0)."""
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: object) -> float:
        """Return the current value (0 when never incremented)."""
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def samples(self) -> list[str]:
        """Sample lines, sorted by label values."""
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels_text(self.label_names, k)} {_number(v)}" for k, v in items]


class Gauge(_Family):
    """A value that goes up and down per label set."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[LabelValues, float] = {}

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

    def samples(self) -> list[str]:
        """Sample lines, sorted by label values."""
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels_text(self.label_names, k)} {_number(v)}" for k, v in items]


class Histogram(_Family):
    """Cumulative buckets, sum and count per label set."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] = _IPMI_BUCKETS) -> None:
        super().__init__(name, help_text, labels)
        if "le" in self.label_names:
            raise ValueError("'le' is reserved for histogram buckets")
        self.buckets = tuple(sorted(float(b) for b in buckets))
        self._series: dict[LabelValues, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, **labels: object) -> None:
        """Record one observation."""
        key = self._key(labels)
        with self._lock:
            counts, totals = self._series.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
            index = next((i for i, b in enumerate(self.buckets) if value <= b), len(self.buckets))
            counts[index] += 1
            totals[0] += value

    def count(self, **labels: object) -> int:
        """Return the number of observations of one label set."""
        with self._lock:
            series = self._series.get(self._key(labels))
        return sum(series[0]) if series else 0

    def samples(self) -> list[str]:
        """Sample lines, sorted by label values."""
        with self._lock:
            items = sorted((k, (list(c), t[0])) for k, (c, t) in self._series.items())
        lines: list[str] = []
        for key, (counts, total) in items:
            running = 0
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                running += count
                labels = _labels_text(self.label_names, key, ("le", _number(bound)))
                lines.append(f"{self.name}_bucket{labels} {running}")
            plain = _labels_text(self.label_names, key)
            lines.append(f"{self.name}_sum{plain} {_number(total)}")
            lines.append(f"{self.name}_count{plain} {running}")
        return lines


class Metrics:
    """Every metric the agent exports, with the feeding methods the pieces call."""

    def __init__(self) -> None:
        p = "bm_agent_"
        self.pass_duration = Histogram(
            p + "check_pass_duration_seconds", "Duration of one cross-check pass.",
            buckets=_PASS_BUCKETS)
        self.pass_last_duration = Gauge(
            p + "check_pass_last_duration_seconds", "Duration of the newest cross-check pass.")
        self.pass_last_end = Gauge(
            p + "check_pass_last_end_timestamp_seconds", "When the newest pass ended (Unix).")
        self.passes = Counter(p + "check_passes_total", "Cross-check passes by outcome.",
                              ("outcome",))
        self.pass_overruns = Counter(
            p + "check_pass_overruns_total", "Passes that took longer than the interval.")
        self.verdicts = Gauge(p + "servers_by_verdict", "Servers per current verdict.",
                              ("verdict",))
        self.bmc_last_success = Gauge(
            p + "bmc_last_success_timestamp_seconds",
            "Last time the BMC of a server answered an IPMI read (Unix).", ("uuid",))
        self.ipmi_latency = Histogram(
            p + "ipmi_call_duration_seconds", "Duration of IPMI calls, failed ones included.",
            ("op",), buckets=_IPMI_BUCKETS)
        self.ipmi_errors = Counter(p + "ipmi_errors_total", "Failed IPMI calls by error class.",
                                   ("op", "kind"))
        self.check_errors = Counter(
            p + "check_errors_total",
            "Failed checks other than IPMI reads (dbc_path, client_node, monitor).",
            ("source", "kind"))
        self.actions = Counter(p + "actions_total", "Staff actions by result.",
                               ("action", "result"))
        self.http_requests = Counter(p + "http_requests_total", "HTTP requests by route and "
                                     "status.", ("route", "status"))
        self.http_latency = Histogram(p + "http_request_duration_seconds",
                                      "Duration of HTTP requests.", ("route",),
                                      buckets=_HTTP_BUCKETS)
        self.password_attempts = Counter(
            p + "password_attempts_total",
            "Password attempts (login, token, password change) by outcome: ok and failed "
            "were hashed; rate_limited and busy were refused before any hash.",
            ("purpose", "outcome"))
        self.hook_refusals = Counter(p + "hook_refusals_total",
                                     "Boot-hook relay requests refused, by contract code.",
                                     ("code",))
        self._families: tuple[_Family, ...] = (
            self.pass_duration, self.pass_last_duration, self.pass_last_end, self.passes,
            self.pass_overruns, self.verdicts, self.bmc_last_success, self.ipmi_latency,
            self.ipmi_errors, self.check_errors, self.actions, self.http_requests,
            self.http_latency, self.password_attempts, self.hook_refusals)

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

    # --- exposition --------------------------------------------------------------------

    def render(self) -> str:
        """Return the whole exposition text (ends with a newline)."""
        lines: list[str] = []
        for family in self._families:
            lines += family.render()
        return "\n".join(lines) + "\n"
