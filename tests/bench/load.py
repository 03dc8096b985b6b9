"""Load bench: 500 servers on real BMCs, one pass per 60 s, 50 API requests/s, for 10 minutes.

``python -m tests.bench.load [--minutes 10] [--servers 500] [--rps 50] [--interval 60]``;
``main()`` returns what it prints (``run()`` takes the same knobs, for the short test).

What runs, all on loopback:
- the node: ``bm-node-emulator``; the agent registers every server with it (outbox, batches);
- the BMCs: one ``ipmi_sim`` process per server (power on; ~0.7 MiB unique memory each, so
  500 are cheap). Without ipmi_sim (no openipmi package) the servers share a few fake BMCs
  (``bmc_kind`` and ``bmc_processes`` in the result say which);
- the agent: the real ``bm-agent serve`` (``Agent.build`` + ``create_app(background=True)``)
  with the production check settings (interval 60 s, jitter 5 s, pool 32, deadline 3 s);
- the load: a separate loader process (``--load``) with an open-loop schedule of ``rps``
  requests/s over a fixed mix (server list, dashboard grid, server detail, events, metrics)
  with a viewer's bearer token on keep-alive connections; latency is measured from the
  scheduled send time (no coordinated omission).

Every ``SAMPLE_EVERY_S`` the bench samples the agent's process (psutil: RSS, threads, open
fds, CPU) and ``/healthz`` (the newest pass: start, duration, overran). The first
``warmup_s`` (the first minute, at most a fifth of the run) is warm-up: memory growth and
slope are measured after it. ``BOUNDS`` are the limits the result is checked against.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import requests

from agent.models import Role
from tests.peers.ipmisim import ipmi_sim_binary, start_ipmi_sim_fleet, stop_fleet
from tests.support.agentproc import AgentProc, start_agent
from tests.support.bmc import start_fake_bmc
from tests.support.emulator import start_emulator
from tests.support.procs import Proc, python_module

__all__ = ["BOUNDS", "MIX", "load", "main", "run", "thread_limit"]

SERVERS, RPS, MINUTES, INTERVAL_S = 500, 50.0, 10.0, 60.0
POOL_SIZE, DEADLINE_S = 32, 3.0
SAMPLE_EVERY_S = 5.0
WORKERS = 12
FAKE_BMCS = 10  # the fallback without ipmi_sim: servers share this many fake BMCs
VIEWER, PASSWORD = "load", "load-pass-8d1f"
# name, path ({uuid}: a random imported server), weight
MIX = (("list", "/api/v1/servers", 25), ("grid", "/ui/api/grid", 25),
       ("detail", "/api/v1/servers/{uuid}?history=20", 30),
       ("events", "/api/v1/events?limit=50", 10), ("metrics", "/metrics", 10))
# The limits a run is judged by (see BENCHMARKS.md). Threads, by design: the pass's check
# pool (pool_size, only during a pass), the IPMI client's workers (pool_size + 16, kept),
# anyio's worker threads for plain-def routes (40 tokens), and at most 16 others (main,
# monitor, registry worker, housekeeping, grid refresh, pyghmi's I/O thread, ...).
# Memory: RSS grows while the store fills up to its history cap (100 readings per server)
# and SQLite's page caches warm, then stays flat (30-minute run: flat from minute 10);
# rss_max_mib caps it at 500 servers, the growth figure catches a leak within a run.
BOUNDS = {"rss_growth_after_warmup_mib": 20.0, "rss_max_mib": 160.0, "other_threads": 16,
          "fds_max": 256, "pass_overruns": 0, "server_errors": 0}
ANYIO_THREADS, EXTRA_BMC_WORKERS = 40, 16


def thread_limit(pool_size: int) -> int:
    """Most threads the agent may run with ``[check] pool_size`` (see BOUNDS)."""
    return 2 * pool_size + EXTRA_BMC_WORKERS + ANYIO_THREADS + int(BOUNDS["other_threads"])


HEADER = "uuid,ip,os,desc,ipmi_hostname,ipmi_username,ipmi_password,ipmi_port,labels"


# -- the loader (a separate process) -----------------------------------------------------

def _worker(host: str, port: int, token: str, jobs: queue.Queue[Any],
            out: list[tuple[str, float, int]]) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    base = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    while (job := jobs.get()) is not None:
        scheduled, name, path = job
        headers = {**base, "Accept-Encoding": "gzip"} if name == "grid" else base
        try:
            conn.request("GET", path, headers=headers)
            answer = conn.getresponse()
            answer.read()
            status = answer.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
            status = 0
        out.append((name, time.perf_counter() - scheduled, status))


def _percentiles(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    if not ms:
        return {}

    def pct(fraction: float) -> float:
        return round(ms[min(len(ms) - 1, int(fraction * len(ms)))], 2)
    return {"p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "max_ms": round(ms[-1], 2)}


def _summary(out: list[tuple[str, float, int]], elapsed: float) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for _name, _lat, status in out:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    per_endpoint = {name: {"requests": sum(1 for n, _l, _s in out if n == name),
                           **_percentiles([lat * 1000 for n, lat, _s in out if n == name])}
                    for name, _path, _w in MIX}
    return {"requests": len(out), "achieved_rps": round(len(out) / elapsed, 1),
            "statuses": statuses, **_percentiles([lat * 1000 for _n, lat, _s in out]),
            "server_errors": sum(1 for _n, _l, s in out if s >= 500),
            "transport_errors": sum(1 for _n, _l, s in out if s == 0),
            "per_endpoint": per_endpoint}


def load(url: str, token: str, rps: float, duration: float, uuids: list[str]) -> dict[str, Any]:
    """Open-loop load over ``MIX``: ``rps`` requests/s for ``duration`` s; percentiles in ms."""
    host, port = url.split("//", 1)[1].split(":")
    jobs: queue.Queue[Any] = queue.Queue()
    out: list[tuple[str, float, int]] = []
    threads = [threading.Thread(target=_worker, daemon=True,
                                args=(host, int(port), token, jobs, out))
               for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    rng = random.Random(11)  # a reproducible request mix
    names = [(name, path) for name, path, _w in MIX]
    weights = [w for _n, _p, w in MIX]
    start = time.perf_counter()
    for n in range(int(rps * duration)):
        due = start + n / rps
        time.sleep(max(0.0, due - time.perf_counter()))
        name, path = rng.choices(names, weights)[0]
        jobs.put((due, name, path.replace("{uuid}", rng.choice(uuids))))
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join(30)
    return _summary(out, time.perf_counter() - start)


# -- the café under load -----------------------------------------------------------------

def _start_bmcs(count: int, work: Path, stoppers: list[Callable[[], None]]
                ) -> tuple[str, list[Any]]:
    """Start the BMC peers; return their kind and one peer per server."""
    if ipmi_sim_binary():
        fleet = start_ipmi_sim_fleet(count, work / "bmcs", initial_power="on")
        stoppers.append(lambda: stop_fleet(fleet))
        return "ipmi_sim", list(fleet)
    fakes = [start_fake_bmc(work / f"fake{i}", initial_power="on")
             for i in range(min(FAKE_BMCS, count))]
    stoppers.extend(fake.stop for fake in fakes)
    return "fakebmc", [fakes[i % len(fakes)] for i in range(count)]


def _import(agent: AgentProc, peers: list[Any]) -> list[str]:
    """Import one server per peer (and queue their registration); return the uuids."""
    uuids = [f"ld-{n + 1:04d}" for n in range(len(peers))]
    rows = [HEADER] + [
        f"{uuid},127.1.{n // 250}.{n % 250 + 1},win10,seat {n + 1},127.0.0.1,{peer.user},"
        f"{peer.password},{peer.port},zone={('vip', 'std', 'esports')[n % 3]}"
        for n, (uuid, peer) in enumerate(zip(uuids, peers, strict=True))]
    answer = agent.post("/api/v1/servers/import", user="loadop", params={"register": "true"},
                        data=("\n".join(rows) + "\n").encode(),
                        headers={"Content-Type": "text/csv"})
    report = answer.json()
    if answer.status_code != 200 or len(report["created"]) != len(peers):
        raise RuntimeError(f"import failed: {answer.status_code} {answer.text[:500]}")
    return uuids


def _first_full_pass(agent: AgentProc, count: int, timeout: float) -> dict[str, Any]:
    """Wait until a pass over every server ended and the outbox drained; return health."""
    def ready() -> dict[str, Any] | None:
        health: dict[str, Any] = agent.get("/healthz", user=None).json()
        last = health.get("last_pass") or {}
        waiting = sum(v for k, v in health.get("outbox", {}).items() if k != "done")
        return health if last.get("servers") == count and not waiting else None
    return agent.wait_for(ready, timeout, f"a pass over {count} servers and registration")


def _metric_values(agent: AgentProc, name: str) -> dict[str, float]:
    """Return ``{label text: value}`` of one metric family from ``/metrics``."""
    text = agent.get("/metrics", user=VIEWER).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line[len(name):].rpartition(" ")
            values[labels.strip("{}")] = float(value)
    return values


def _sample(proc: psutil.Process, agent: AgentProc, t0: float) -> dict[str, Any]:
    with proc.oneshot():
        cpu = proc.cpu_times()
        sample = {"t": round(time.monotonic() - t0, 1),
                  "rss_mib": round(proc.memory_info().rss / 2**20, 2),
                  "threads": proc.num_threads(), "fds": proc.num_fds(),
                  "cpu_s": round(cpu.user + cpu.system, 2)}
    try:
        health = requests.get(agent.url + "/healthz", timeout=10).json()
        sample["last_pass"] = health.get("last_pass")
    except (requests.RequestException, ValueError):
        sample["last_pass"] = None
    return sample


def _sampler(proc: psutil.Process, agent: AgentProc, stop: threading.Event,
             samples: list[dict[str, Any]]) -> None:
    """Sample every SAMPLE_EVERY_S; after each new pass, also the verdict counts."""
    t0, seen = time.monotonic(), None
    while True:
        sample = _sample(proc, agent, t0)
        started = (sample["last_pass"] or {}).get("started_at")
        if started != seen:
            seen = started
            sample["verdicts"] = {k.split('"')[1]: int(v) for k, v in _metric_values(
                agent, "bm_agent_servers_by_verdict").items() if v}
        samples.append(sample)
        if stop.wait(SAMPLE_EVERY_S):
            if not samples[-1].get("final"):
                samples.append({**_sample(proc, agent, t0), "final": True})
            return


def _run_loader(agent: AgentProc, rps: float, duration: float, uuids: list[str],
                work: Path) -> dict[str, Any]:
    uuid_file = work / "uuids.json"
    uuid_file.write_text(json.dumps(uuids))
    args = python_module("tests.bench.load", "--load", agent.url, "--token",
                         agent.tokens[VIEWER], "--rps", str(rps), "--duration", str(duration),
                         "--uuids", str(uuid_file))
    done = subprocess.run(args, capture_output=True, text=True, timeout=duration + 120,
                          check=True, cwd=Path(__file__).resolve().parents[2])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- figures -----------------------------------------------------------------------------

def _slope_per_hour(points: list[tuple[float, float]]) -> float:
    if len(points) < 3:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in points) / var * 3600


def _passes(samples: list[dict[str, Any]]) -> dict[str, Any]:
    seen: dict[float, dict[str, Any]] = {}
    for sample in samples:  # the first sample after a pass carries its verdict counts
        if sample["last_pass"]:
            seen.setdefault(sample["last_pass"]["started_at"],
                            {**sample["last_pass"], "verdicts": sample.get("verdicts", {})})
    starts = sorted(seen)
    durations = [seen[t]["duration_s"] for t in starts]
    return {"count": len(seen), "max_s": round(max(durations, default=0.0), 3),
            "mean_s": round(statistics.fmean(durations), 3) if durations else None,
            "overran": sum(1 for p in seen.values() if p["overran"]),
            "start_gap_max_s": round(max((b - a for a, b in itertools.pairwise(starts)),
                                         default=0.0), 1),
            "durations_s": [round(d, 2) for d in durations],
            "not_ok_per_pass": [sum(n for v, n in seen[t]["verdicts"].items() if v != "ok")
                                for t in starts],
            "verdicts_per_pass": [seen[t]["verdicts"] for t in starts]}


def _figures(samples: list[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    warm = [s for s in samples if s["t"] >= warmup_s] or samples[-1:]
    rss = [s["rss_mib"] for s in samples]
    head = statistics.fmean(s["rss_mib"] for s in warm[:3])
    tail = statistics.fmean(s["rss_mib"] for s in warm[-3:])
    cpu = samples[-1]["cpu_s"] - samples[0]["cpu_s"]
    span = max(samples[-1]["t"] - samples[0]["t"], 1e-9)
    return {
        "rss_mib": {"start": rss[0], "after_warmup": round(head, 2), "end": rss[-1],
                    "max": max(rss)},
        "rss_growth_after_warmup_mib": round(tail - head, 2),
        # a leak keeps growing; warm-up (per-thread SQLite caches, a growing store) levels off
        "rss_growth_second_half_mib": round(tail - statistics.fmean(
            s["rss_mib"] for s in warm[len(warm) // 2:][:3]), 2),
        "rss_slope_mib_per_h": round(_slope_per_hour([(s["t"], s["rss_mib"]) for s in warm]), 2),
        "threads": {"start": samples[0]["threads"], "after_warmup": warm[0]["threads"],
                    "max": max(s["threads"] for s in samples), "end": samples[-1]["threads"]},
        "fds": {"start": samples[0]["fds"], "max": max(s["fds"] for s in samples),
                "end": samples[-1]["fds"]},
        "cpu_percent_avg": round(100 * cpu / span, 1),
    }


def _judge(result: dict[str, Any]) -> dict[str, bool]:
    agent, passes, http = result["agent"], result["passes"], result["load"]
    return {
        "rss_growth": agent["rss_growth_after_warmup_mib"]
        < BOUNDS["rss_growth_after_warmup_mib"],
        "rss_max": agent["rss_mib"]["max"] < BOUNDS["rss_max_mib"],
        "threads": agent["threads"]["max"] <= thread_limit(result["pool_size"]),
        "fds": agent["fds"]["max"] <= BOUNDS["fds_max"],
        "no_overrun": passes["overran"] == 0 and result["overruns_metric"] == 0
        and passes["max_s"] < result["interval_s"],
        "no_server_error": http["server_errors"] == 0 and http["transport_errors"] == 0,
        # every BMC is a healthy peer: every verdict of every pass should be ok
        "all_verdicts_ok": not any(passes["not_ok_per_pass"]),
    }


def _overruns(agent: AgentProc) -> float:
    return sum(_metric_values(agent, "bm_agent_check_pass_overruns_total").values())


def run(*, servers: int = SERVERS, minutes: float = MINUTES, rps: float = RPS,
        interval_s: float = INTERVAL_S, work: Path | None = None) -> dict[str, Any]:
    """Start the café, hold the load for ``minutes``, return the figures and the verdicts."""
    if work is not None:
        return _run_in(work, servers, minutes, rps, interval_s)
    with tempfile.TemporaryDirectory(prefix="bm-load-") as tmp:
        return _run_in(Path(tmp), servers, minutes, rps, interval_s)


def _run_in(work: Path, servers: int, minutes: float, rps: float,
            interval_s: float) -> dict[str, Any]:
    procs: list[Proc] = []
    stoppers: list[Callable[[], None]] = []

    def spawn(args: list[str], name: str = "proc", env: dict[str, str] | None = None) -> Proc:
        procs.append(Proc(args, work / f"{name}-{len(procs)}.log", env=env))
        return procs[-1]
    try:
        emu = start_emulator(spawn, work, client=False, deeplink=False)
        kind, peers = _start_bmcs(servers, work, stoppers)
        agent = start_agent(
            spawn, work, node_url=emu.url, node_dat=emu.data_dir / "dat" / "node.dat",
            hook=False, users={VIEWER: (Role.VIEWER, PASSWORD),
                               "loadop": (Role.OPERATOR, PASSWORD)},
            config={"check.interval_s": interval_s, "check.jitter_s": min(5.0, interval_s / 10),
                    "check.pool_size": POOL_SIZE, "check.deadline_s": min(DEADLINE_S,
                                                                          interval_s / 4),
                    "log.level": "WARNING"})
        uuids = _import(agent, peers)
        _first_full_pass(agent, servers, timeout=2 * interval_s + 60)
        return _hold(agent, work, kind, len({id(p) for p in peers}), uuids, minutes, rps,
                     interval_s)
    finally:
        for proc in reversed(procs):
            proc.stop()
        for stop in stoppers:
            stop()


def _hold(agent: AgentProc, work: Path, kind: str, bmc_processes: int, uuids: list[str],
          minutes: float, rps: float, interval_s: float) -> dict[str, Any]:
    duration = minutes * 60
    samples: list[dict[str, Any]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sampler, daemon=True,
                               args=(psutil.Process(agent.proc.pid), agent, stop, samples))
    sampler.start()
    try:
        http = _run_loader(agent, rps, duration, uuids, work)
    finally:
        stop.set()
        sampler.join(30)
    warmup_s = min(60.0, duration / 5)
    result: dict[str, Any] = {
        "servers": len(uuids), "bmc_kind": kind, "bmc_processes": bmc_processes,
        "minutes": minutes, "rps_target": rps, "interval_s": interval_s,
        "pool_size": POOL_SIZE, "thread_limit": thread_limit(POOL_SIZE), "warmup_s": warmup_s,
        "load": http,
        "agent": _figures(samples, warmup_s), "passes": _passes(samples),
        "overruns_metric": _overruns(agent), "bounds": BOUNDS,
        "ipmi_errors": _metric_values(agent, "bm_agent_ipmi_errors_total"),
        "agent_alive": agent.proc.alive(),
        "rss_by_minute_mib": [s["rss_mib"] for s in samples[:: max(1, int(60 / SAMPLE_EVERY_S))]],
    }
    result["within_bounds"] = _judge(result)
    return result


def main(minutes: float = MINUTES, servers: int = SERVERS, rps: float = RPS,
         interval_s: float = INTERVAL_S) -> dict[str, Any]:
    """Run the full load bench (defaults: 500 servers, 50 req/s, 10 minutes)."""
    return run(servers=servers, minutes=minutes, rps=rps, interval_s=interval_s)


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=MINUTES)
    parser.add_argument("--servers", type=int, default=SERVERS)
    parser.add_argument("--rps", type=float, default=RPS)
    parser.add_argument("--interval", type=float, default=INTERVAL_S)
    parser.add_argument("--load", metavar="URL", help="(internal) be the loader process")
    parser.add_argument("--token", default="")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--uuids", default="")
    args = parser.parse_args()
    if args.load:
        uuids = json.loads(Path(args.uuids).read_text())
        print(json.dumps(load(args.load, args.token, args.rps, args.duration, uuids)))
        return
    print(json.dumps(main(args.minutes, args.servers, args.rps, args.interval), indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    _cli()
