"""Slowloris bench: one host holds 2,000 half-sent requests; does ``/healthz`` still answer?

``python -m tests.bench.slowloris [--seconds 30] [--connections 2000] [--soft-limit 1024]``;
``main()`` returns what it prints.

Two runs, same attack, same machine:

- ``guarded``: the real ``bm-agent serve`` (``agent.api.conn_guard``: 64 connections per
  address, 10 s header deadline, limit_concurrency, raised open-files limit, throttled
  accept() errors);
- ``unguarded``: the same agent served the way ``cmd_serve`` did before security issue 10
  (plain ``uvicorn.Config``, no limits; ``--serve-unguarded``, internal).

Both start with a soft open-files limit of ``--soft-limit`` (1024: systemd's default). The
attacker (this process, from 127.0.0.2) opens ``--connections`` connections, each sending
request headers without the final blank line, and holds them; in the third run
(``guarded_reconnecting``) it also reopens every one the agent closed, once a second (a
connection flood: ~2,000 connects/s from this same 2-core machine). Meanwhile ``/healthz`` is probed from 127.0.0.3 every 0.2 s (5 s timeout; a
timeout or error counts as a failure). Reported: healthz p50/p99/max, failures, the
agent's log growth, its open file descriptors (sampled once a second: the peak, which
includes the burst of accepted-then-closed sockets, and the last sample).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from tests.support.agentproc import AgentProc, start_agent
from tests.support.procs import Proc
from tests.support.slowloris import HalfOpen, probe_healthz, raise_own_open_files

__all__ = ["main", "run_one"]

SECONDS, CONNECTIONS, SOFT_LIMIT = 30.0, 2000, 1024
ATTACKER_IP, PROBE_IP = "127.0.0.2", "127.0.0.3"
PROBE_EVERY_S, PROBE_TIMEOUT_S = 0.2, 5.0


def _serve_unguarded(config_path: str) -> None:
    """Serve the agent exactly as ``cmd_serve`` did before the guard (the bench's baseline)."""
    import logging

    import uvicorn

    from agent.api.app import create_app
    from agent.app import Agent
    from agent.config import load_settings

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings(config_path)
    app = create_app(Agent.build(settings), background=True)
    config = uvicorn.Config(app, host=settings.api.host, port=settings.api.port, workers=1,
                            log_level="info", access_log=False, lifespan="on",
                            log_config=None, proxy_headers=False)
    uvicorn.Server(config).run()


def _probe(url: str, seconds: float) -> list[float | None]:
    results: list[float | None] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        results.append(probe_healthz(url, PROBE_IP, timeout_s=PROBE_TIMEOUT_S))
        time.sleep(max(0.0, PROBE_EVERY_S - (time.monotonic() - started)))
    return results


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _attack(agent: AgentProc, connections: int, seconds: float,
            reconnect: bool) -> dict[str, Any]:
    port = int(agent.url.rsplit(":", 1)[1])
    attacker = HalfOpen("127.0.0.1", port, ATTACKER_IP)
    process = psutil.Process(agent.proc.popen.pid)
    log_before = len(agent.log().encode())
    probes: list[float | None] = []
    prober = threading.Thread(target=lambda: probes.extend(_probe(agent.url, seconds)))
    attacker.open(connections, timeout_s=0.5)
    prober.start()
    fds_max, reopened, closed_first = process.num_fds(), 0, None
    fds_last = fds_max
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            time.sleep(1.0)
            fds_last = process.num_fds()
            fds_max = max(fds_max, fds_last)
            if closed_first is None:
                closed_first = attacker.closed_by_server()
            if reconnect:
                reopened += attacker.top_up(connections)
    finally:
        prober.join()
        attacker.close()
    log = agent.log()
    ok = [p for p in probes if p is not None]
    return {
        "probes": len(probes), "healthz_failures": len(probes) - len(ok),
        "healthz_p50_ms": round(1000 * statistics.median(ok), 1) if ok else None,
        "healthz_p99_ms": round(1000 * _percentile(ok, 0.99), 1) if ok else None,
        "healthz_max_ms": round(1000 * max(ok), 1) if ok else None,
        "attacker_closed_within_1s": closed_first, "attacker_reopened": reopened,
        "attacker_connect_failures": attacker.connect_failures,
        "agent_fds_max": fds_max, "agent_fds_last": fds_last,
        "log_growth_bytes": len(log.encode()) - log_before,
        "log_tracebacks": log.count("Traceback"),
    }


def run_one(kind: str, *, seconds: float = SECONDS, connections: int = CONNECTIONS,
            soft_limit: int = SOFT_LIMIT, reconnect: bool = False) -> dict[str, Any]:
    """Start one agent (``guarded`` or ``unguarded``), attack it, return the figures."""
    command = None if kind == "guarded" else \
        [sys.executable, "-m", "tests.bench.slowloris", "--serve-unguarded"]
    procs: list[Proc] = []
    with tempfile.TemporaryDirectory(prefix="bm-slowloris-") as tmp:
        work = Path(tmp)

        def spawn(args: list[str], name: str = "proc", env: dict[str, str] | None = None
                  ) -> Proc:
            procs.append(Proc(args, work / f"{name}-{len(procs)}.log", env=env))
            return procs[-1]

        try:
            agent = start_agent(spawn, work, open_files_soft=soft_limit, command=command,
                                users={}, config={"check.interval_s": 60.0,
                                                  "check.jitter_s": 5.0})
            return {"kind": kind, "reconnect": reconnect,
                    **_attack(agent, connections, seconds, reconnect)}
        finally:
            for proc in reversed(procs):
                proc.stop()


def main(seconds: float = SECONDS, connections: int = CONNECTIONS,
         soft_limit: int = SOFT_LIMIT) -> dict[str, Any]:
    """Run the attack against the guarded agent, then against the unguarded baseline."""
    raise_own_open_files(4 * connections)
    result: dict[str, Any] = {"seconds": seconds, "connections": connections,
                              "agent_soft_limit_at_start": soft_limit}
    for name, kind, reconnect in (("guarded", "guarded", False),
                                  ("guarded_reconnecting", "guarded", True),
                                  ("unguarded", "unguarded", False)):
        result[name] = run_one(kind, seconds=seconds, connections=connections,
                               soft_limit=soft_limit, reconnect=reconnect)
    return result


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--soft-limit", type=int, default=SOFT_LIMIT)
    parser.add_argument("--only", choices=("guarded", "unguarded"))
    parser.add_argument("--reconnect", action="store_true",
                        help="with --only: reopen closed connections every second")
    parser.add_argument("--serve-unguarded", action="store_true", help="(internal)")
    parser.add_argument("--config", help="(internal) with --serve-unguarded")
    args = parser.parse_args()
    if args.serve_unguarded:
        _serve_unguarded(args.config)
        return
    if args.only:
        raise_own_open_files(4 * args.connections)
        print(json.dumps(run_one(args.only, seconds=args.seconds,
                                 connections=args.connections, soft_limit=args.soft_limit,
                                 reconnect=args.reconnect), indent=2))
        return
    print(json.dumps(main(args.seconds, args.connections, args.soft_limit), indent=2))


if __name__ == "__main__":
    _cli()
