"""Benchmark bm-hook: wall time and peak memory of one boot-time run.

``python -m tests.bench.hook`` starts the emulator (node + DeepLink LAN service), a
simulated DeepLink connected from 127.0.0.N, registers the PC, then runs the hook as a
subprocess several times once both peers answer, in direct mode (relay node and a
0.4.1.6 node with the fake SDK) and in agent mode (through the contract stand-in
agent). Wall time counts the whole process (interpreter start, imports, every step);
peak memory is the child's ``ru_maxrss`` from ``wait4``. ``main()`` returns the dict
it prints.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.signing

from baremetal.emulator.deeplink_client import SimulatedDeepLink
from tests.support.emulator import start_emulator
from tests.support.hook_agent_standin import AgentStandin, NodePublisher, RegisteredServer
from tests.support.hook_run import HookRun, register_pc, run_hook, write_hook_config, write_key
from tests.support.hook_sdk_fake import FakeDeepLinkSdk
from tests.support.ports import free_port
from tests.support.procs import Proc

RUNS = 10
TARGET_S = 1.0


def _summary(runs: list[HookRun]) -> dict[str, Any]:
    failed = [r.returncode for r in runs if r.returncode != 0]
    if failed:
        raise RuntimeError(f"hook failed with {failed}: {runs[0].log[-1500:]}")
    times = [r.elapsed_s for r in runs]
    return {
        "runs": len(runs),
        "wall_s_median": round(statistics.median(times), 3),
        "wall_s_min": round(min(times), 3),
        "wall_s_max": round(max(times), 3),
        "peak_rss_mib_max": round(max(r.peak_rss_kib for r in runs) / 1024, 1),
        "under_target": max(times) < TARGET_S,
    }


def _deeplink(emu: Any, ip: str) -> SimulatedDeepLink:
    dl = SimulatedDeepLink((emu.deeplink_host, emu.deeplink_port), device_id="721345678",
                           password="FirstBoot01", source_ip=ip, reconnect=True)
    dl.start()
    if not dl.wait_until(lambda d: d.connected, 5):
        raise RuntimeError("simulated DeepLink did not connect")
    return dl


def _direct(tmp: Path, **sections: dict[str, Any]) -> str:
    return write_hook_config(tmp / "hook.toml", {
        "deadlines": {"node_s": 5, "deeplink_s": 10, "confirm_s": 5, "call_s": 2},
        "state": {"file": str(tmp / "last-code")}, **sections,
    })


def bench_direct_relay(spawn: Callable[..., Proc], tmp: Path) -> dict[str, Any]:
    """Direct mode on a 0.4.1.8 node, sdk = none."""
    emu = start_emulator(spawn, tmp)
    _node_id, key = register_pc(emu, "127.0.0.61")
    dl = _deeplink(emu, "127.0.0.61")
    try:
        config = _direct(tmp, node={"url": emu.url},
                         server={"key_file": write_key(tmp / "server.key", key)})
        return _summary([run_hook(spawn, config) for _ in range(RUNS)])
    finally:
        dl.stop()


def bench_direct_legacy(spawn: Callable[..., Proc], tmp: Path) -> dict[str, Any]:
    """Direct mode on a 0.4.1.6 node with the SDK (set locally, then store on the node)."""
    emu = start_emulator(spawn, tmp, node_version="0.4.1.6")
    _node_id, key = register_pc(emu, "127.0.0.62")
    sock_dir = tempfile.mkdtemp(prefix="bmh-")
    try:
        with FakeDeepLinkSdk(f"{sock_dir}/sdk") as sdk:
            config = _direct(tmp, node={"url": emu.url},
                             server={"key_file": write_key(tmp / "server.key", key)},
                             deeplink={"sdk": f"unix:{sdk.path}"})
            return _summary([run_hook(spawn, config) for _ in range(RUNS)])
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)


def bench_agent(spawn: Callable[..., Proc], tmp: Path) -> dict[str, Any]:
    """Agent mode through the stand-in agent, which signs and reads back via the node."""
    emu = start_emulator(spawn, tmp)
    node_id, key = register_pc(emu, "127.0.0.63")
    dl = _deeplink(emu, "127.0.0.63")
    token = hashlib.sha256(b"bench cafe token").hexdigest()
    public = bytes(nacl.signing.SigningKey(bytes.fromhex(token)).verify_key).hex()
    agent = AgentStandin(public, [RegisteredServer(node_id, "127.0.0.63", key)],
                         NodePublisher(emu.url)).start(free_port())
    try:
        config = _direct(tmp, node={"url": emu.url}, agent={
            "url": agent.url, "token_key_file": write_key(tmp / "token", token),
            "source_ip": "127.0.0.63"})
        return _summary([run_hook(spawn, config) for _ in range(RUNS)])
    finally:
        agent.stop()
        dl.stop()


def main() -> dict[str, Any]:
    """Run every scenario; print and return the results."""
    results: dict[str, Any] = {"target_wall_s": TARGET_S}
    for name, scenario in (("direct_relay_0.4.1.8", bench_direct_relay),
                           ("direct_legacy_0.4.1.6_sdk", bench_direct_legacy),
                           ("agent_relay_0.4.1.8", bench_agent)):
        tmp = Path(tempfile.mkdtemp(prefix=f"bm-hook-bench-{name[:6]}-"))
        started: list[Proc] = []

        def spawn(args: list[str], name: str = "proc", env: dict[str, str] | None = None,
                  _tmp: Path = tmp, _started: list[Proc] = started) -> Proc:
            proc = Proc(args, _tmp / f"{name}-{len(_started)}.log", env=env)
            _started.append(proc)
            return proc

        try:
            results[name] = scenario(spawn, tmp)
        finally:
            for proc in reversed(started):
                proc.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
