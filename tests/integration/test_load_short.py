"""A short load run (``tests.bench.load``): 100 servers on real BMCs, 50 API requests/s, 60 s.

The full run (500 servers, one pass per 60 s, 10 minutes) is ``python -m tests.bench.load``;
this one keeps the same café and loader but passes every 10 s, so a minute holds ~6 passes
under load. The bounds are the bench's own (``BOUNDS``), loose enough for a shared 2-core
CI box yet meaningful: no pass overruns its interval, no 5xx or dropped connection, threads
within ``thread_limit`` (check pool, IPMI workers, anyio's workers, a few others), memory after warm-up not growing by 20 MiB,
and every healthy BMC read ``ok`` in every pass.
"""

from __future__ import annotations

import json

import pytest

from tests.bench import load

pytestmark = pytest.mark.slow

SERVERS, MINUTES, RPS, INTERVAL_S = 100, 1.0, 50.0, 10.0


def test_short_load_holds(tmp_path):
    result = load.run(servers=SERVERS, minutes=MINUTES, rps=RPS, interval_s=INTERVAL_S,
                      work=tmp_path)
    shown = json.dumps({k: v for k, v in result.items() if k != "rss_by_minute_mib"},
                       indent=1)
    print(shown)
    http, agent, passes = result["load"], result["agent"], result["passes"]
    assert result["agent_alive"], shown
    assert http["server_errors"] == 0 and http["transport_errors"] == 0, shown
    assert http["achieved_rps"] >= 0.9 * RPS, shown
    assert passes["count"] >= 4, shown
    assert passes["overran"] == 0 and result["overruns_metric"] == 0, shown
    assert passes["max_s"] < INTERVAL_S, shown
    assert not any(passes["not_ok_per_pass"]), shown
    assert agent["threads"]["max"] <= load.thread_limit(result["pool_size"]), shown
    assert agent["fds"]["max"] <= load.BOUNDS["fds_max"], shown
    assert agent["rss_growth_after_warmup_mib"] < load.BOUNDS["rss_growth_after_warmup_mib"], \
        shown
    assert all(result["within_bounds"].values()), shown
