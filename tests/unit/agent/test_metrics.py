"""agent.metrics: Prometheus text format, escaping, histogram arithmetic, thread safety."""

from __future__ import annotations

import re
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.metrics import CONTENT_TYPE, Counter, Gauge, Histogram, Metrics
from baremetal.ipmi.client import BmcAddress

# One sample line: name, optional {labels}, value (text format 0.0.4).
_SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})?'
                     r" (NaN|[+-]Inf|-?[0-9.e+-]+)$")


def _parse_ok(text: str) -> None:
    assert text.endswith("\n")
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("counter", "gauge", "histogram")
            assert name not in typed, f"TYPE twice for {name}"
            typed.add(name)
            continue
        assert _SAMPLE.match(line), line
        base = re.split(r"[{ ]", line, maxsplit=1)[0]
        assert any(base == n or base in (f"{n}_bucket", f"{n}_sum", f"{n}_count")
                   for n in typed), f"sample before its TYPE line: {line}"


def value_of(text: str, sample: str, **labels: str) -> float | None:
    """The value of one sample, read back by the Prometheus parser (label order and number
    spelling are the exporter's: prometheus_client sorts label names and writes ``1.0``)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == sample and found.labels == labels:
                return found.value
    return None


def test_every_family_has_help_and_type_even_when_empty() -> None:
    text = Metrics().render()
    _parse_ok(text)
    for name in ("bm_agent_check_pass_duration_seconds", "bm_agent_servers_by_verdict",
                 "bm_agent_bmc_last_success_timestamp_seconds",
                 "bm_agent_ipmi_call_duration_seconds", "bm_agent_ipmi_errors_total",
                 "bm_agent_actions_total", "bm_agent_http_requests_total"):
        assert f"# HELP {name} " in text
        assert f"# TYPE {name} " in text
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def test_label_values_and_help_are_escaped() -> None:
    gauge = Gauge("g", 'help with \\ and\nnewline', ("k",))
    gauge.set(1.5, k='a"b\\c\nd')
    lines = gauge.render()
    assert lines[0] == "# HELP g help with \\\\ and\\nnewline"
    assert lines[2] == 'g{k="a\\"b\\\\c\\nd"} 1.5'
    assert value_of("\n".join(lines) + "\n", "g", k='a"b\\c\nd') == 1.5


def test_counter_rejects_decrease_and_wrong_labels() -> None:
    counter = Counter("c_total", "c", ("a",))
    counter.inc(a="x")
    counter.inc(2, a="x")
    assert counter.value(a="x") == 3
    with pytest.raises(ValueError):
        counter.inc(-1, a="x")
    with pytest.raises(ValueError):
        counter.inc(b="x")
    assert counter.render()[2] == 'c_total{a="x"} 3.0'  # the library spells floats


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    hist = Histogram("h_seconds", "h", ("op",), buckets=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        hist.observe(value, op="read")
    lines = hist.samples()
    assert lines == [
        'h_seconds_bucket{le="0.1",op="read"} 2.0',
        'h_seconds_bucket{le="1.0",op="read"} 3.0',
        'h_seconds_bucket{le="+Inf",op="read"} 4.0',
        'h_seconds_count{op="read"} 4.0',
        'h_seconds_sum{op="read"} 3.65',
    ]  # prometheus_client's spelling: label names sorted, floats, count before sum
    with pytest.raises(ValueError):
        Histogram("x", "x", ("le",))


def test_gauge_replace_drops_missing_series() -> None:
    metrics = Metrics()
    metrics.set_bmc_last_success({"a": 100.0, "b": 200.0})
    metrics.set_bmc_last_success({"b": 300.0})
    text = metrics.render()
    assert 'bm_agent_bmc_last_success_timestamp_seconds{uuid="a"}' not in text
    assert value_of(text, "bm_agent_bmc_last_success_timestamp_seconds", uuid="b") == 300


def test_feeding_methods_reach_the_text() -> None:
    metrics = Metrics()
    addr = BmcAddress(host="127.0.0.1", port=623, username="u", password="topsecret1")
    metrics.observe_ipmi(addr, "read_power", 0.004, None)
    metrics.observe_ipmi(addr, "set_boot_pxe", 3.0, "timeout")
    metrics.observe_pass(0.42, ended_at=1700000000.5, overran=True)
    metrics.set_verdict_counts({"ok": 3, "unreachable": 1})
    metrics.count_check_error("dbc_path", "failed")
    metrics.observe_action("power_on", "verified")
    metrics.observe_http("/api/v1/servers/{uuid}", 404, 0.012)
    text = metrics.render()
    _parse_ok(text)
    assert value_of(text, "bm_agent_ipmi_call_duration_seconds_count", op="read_power") == 1
    assert value_of(text, "bm_agent_ipmi_errors_total", op="set_boot", kind="timeout") == 1
    assert value_of(text, "bm_agent_check_pass_last_duration_seconds") == 0.42
    assert value_of(text, "bm_agent_check_pass_last_end_timestamp_seconds") == 1700000000.5
    assert value_of(text, "bm_agent_check_pass_overruns_total") == 1
    assert value_of(text, "bm_agent_servers_by_verdict", verdict="ok") == 3
    assert value_of(text, "bm_agent_check_errors_total", source="dbc_path", kind="failed") == 1
    assert value_of(text, "bm_agent_actions_total", action="power_on", result="verified") == 1
    assert value_of(text, "bm_agent_http_requests_total", route="/api/v1/servers/{uuid}",
                    status="404") == 1
    assert "topsecret1" not in text


def test_concurrent_updates_are_not_lost() -> None:
    metrics = Metrics()

    def work() -> None:
        for _ in range(2000):
            metrics.observe_http("/healthz", 200, 0.001)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert metrics.http_requests.value(route="/healthz", status="200") == 16000
    assert metrics.http_latency.count(route="/healthz") == 16000
