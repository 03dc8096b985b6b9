"""`bm-hook --resident` as a real process against the real bm-node-emulator (issue 12).

DeepLink's local SDK (a Unix-socket fake, tests/support/hook_sdk_fake.py) appears only
after several single-attempt deadlines have passed: the resident hook logs each failed
attempt, rotates once the SDK is there, stays resident, and exits 0 on SIGTERM. A
configuration error ends retrying at once (still resident); a config file that does not
load exits 2 (systemd's RestartPreventExitStatus).
"""

import os
import re
import shutil
import signal
import sys
import tempfile
import time

import pytest

from baremetal.emulator.deeplink_client import SimulatedDeepLink
from boot_hooks.errors import ExitCode
from tests.support.emulator import start_emulator
from tests.support.hook_run import register_pc, write_hook_config, write_key
from tests.support.hook_sdk_fake import FakeDeepLinkSdk
from tests.support.procs import python_module
from tests.support.wait import wait_for

DEVICE_ID = "721345678"
FIRST_CODE = "FirstBoot01"
SDK_APPEARS_AFTER_S = 3.0  # six single-attempt DeepLink deadlines (deeplink_s = 0.5)
FAILED = re.compile(r"attempt (\d+) failed \(exit 4, deeplink_unreachable\): .*; "
                    r"next try in 1\.0 s")


@pytest.fixture
def sock_dir():
    path = tempfile.mkdtemp(prefix="bmh-")  # short: AF_UNIX paths are limited to 108 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


def resident_config(tmp_path, emu, node_id, key, sdk_path, **overrides):
    sections = {
        "node": {"url": emu.url},
        "server": {"node_id": node_id, "key_file": write_key(tmp_path / "server.key", key)},
        "deeplink": {"sdk": f"unix:{sdk_path}"},
        "deadlines": {"node_s": 5, "deeplink_s": 0.5, "confirm_s": 5, "call_s": 0.5},
        # No fast phase here (its 5 s first backoff is the unit tests' business, on a
        # virtual clock): one attempt a second.
        "service": {"retry_s": 0.001, "slow_retry_s": 1},
        "state": {"file": str(tmp_path / "last-code")},
    }
    for section, table in overrides.items():
        sections.setdefault(section, {}).update(table)
    return write_hook_config(tmp_path / "hook.toml", sections)


def start_resident(spawn, config):
    return spawn(python_module("boot_hooks", "--resident", "--config", config), name="resident")


def sigterm_and_wait(proc, timeout=5.0):
    os.kill(proc.pid, signal.SIGTERM)
    return proc.popen.wait(timeout)


def test_resident_hook_waits_for_a_late_deeplink_sdk_then_rotates(spawn, tmp_path, sock_dir):
    emu = start_emulator(spawn, tmp_path)
    node_id, key = register_pc(emu, "127.0.0.61")
    dl = SimulatedDeepLink((emu.deeplink_host, emu.deeplink_port), device_id=DEVICE_ID,
                           password=FIRST_CODE, source_ip="127.0.0.61", reconnect=True)
    dl.start()
    sdk = FakeDeepLinkSdk(f"{sock_dir}/sdk", linked=dl)
    try:
        assert dl.wait_until(lambda d: d.connected, 5)
        proc = start_resident(spawn, resident_config(tmp_path, emu, node_id, key, sdk.path))
        started = time.monotonic()
        wait_for(lambda: FAILED.search(proc.log()), 10, what="a first failed attempt",
                 alive=proc.alive, detail=proc.log)
        time.sleep(max(0.0, started + SDK_APPEARS_AFTER_S - time.monotonic()))
        sdk.start()
        wait_for(lambda: "done: node" in proc.log(), 10, what="the rotation",
                 alive=proc.alive, detail=proc.log)
        log = proc.log()
        failed = [int(n) for n in FAILED.findall(log)]
        assert len(failed) >= 2 and failed == list(range(1, len(failed) + 1)), log
        assert f"attempt {len(failed) + 1} done: node {node_id}" in log
        assert "fast retries over" in log
        assert dl.password != FIRST_CODE
        time.sleep(0.5)
        assert proc.alive(), "the resident hook must stay up after the rotation"
        assert "resident: idle until stopped" in proc.log()
        assert sigterm_and_wait(proc) == ExitCode.OK
        assert "resident: exit 0 on signal" in proc.log()
        for secret in (key, FIRST_CODE, dl.password):
            assert secret not in proc.log()
    finally:
        sdk.stop()
        dl.stop()


def test_resident_hook_stops_retrying_on_a_config_error(spawn, tmp_path, sock_dir):
    emu = start_emulator(spawn, tmp_path)
    node_id, key = register_pc(emu, "127.0.0.62")
    config = resident_config(tmp_path, emu, node_id, key, f"{sock_dir}/sdk",
                             server={"key_file": str(tmp_path / "missing.key")})
    proc = start_resident(spawn, config)
    wait_for(lambda: "resident: idle until stopped" in proc.log(), 10, what="the idle phase",
             alive=proc.alive, detail=proc.log)
    time.sleep(1.5)  # longer than slow_retry_s: no second attempt comes
    log = proc.log()
    assert "attempt 1 failed (exit 2, config)" in log and "not retrying" in log
    assert "attempt 2" not in log
    assert proc.alive()
    assert sigterm_and_wait(proc) == ExitCode.OK


def test_resident_hook_with_an_unloadable_config_exits_2(spawn, tmp_path):
    config = tmp_path / "hook.toml"
    config.write_text("[service]\nslow_retry_s = 0\n")
    proc = start_resident(spawn, str(config))
    assert proc.popen.wait(10) == ExitCode.CONFIG
    assert "[service] slow_retry_s must be positive" in proc.log()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_stops_it_too(spawn, tmp_path):
    emu = start_emulator(spawn, tmp_path)
    node_id, key = register_pc(emu, "127.0.0.63")
    config = resident_config(tmp_path, emu, node_id, key, "/nonexistent/sdk")
    proc = start_resident(spawn, config)
    wait_for(lambda: FAILED.search(proc.log()), 10, what="a failed attempt",
             alive=proc.alive, detail=proc.log)
    os.kill(proc.pid, signal.SIGINT)
    assert proc.popen.wait(5) == ExitCode.OK
