"""bm-hook's [state] dir over real runs (emulator node + simulated DeepLink on loopback),
and ``python -m boot_hooks --check`` as a technician runs it.

Diskless PCs lose everything on their system disk at each reset: with no [state] dir the
hook still publishes (memory only, said once in the log); with one, the last code's hash
and a rotating bm-hook.log persist across runs; with one it cannot use (the per-machine
disk is not mounted), it warns and still publishes.
"""

import hashlib
import subprocess

import pytest

from baremetal.emulator.deeplink_client import SimulatedDeepLink
from boot_hooks.errors import ExitCode
from tests.support.emulator import start_emulator
from tests.support.hook_run import register_pc, run_hook, write_hook_config, write_key
from tests.support.procs import python_module

DEVICE_ID = "721345678"
FIRST_CODE = "FirstBoot01"
PC_IP = "127.0.0.47"


@pytest.fixture
def pc(spawn, tmp_path):
    """An emulator node with this PC registered and its DeepLink connected."""
    emu = start_emulator(spawn, tmp_path)
    node_id, key = register_pc(emu, PC_IP)
    dl = SimulatedDeepLink((emu.deeplink_host, emu.deeplink_port), device_id=DEVICE_ID,
                           password=FIRST_CODE, source_ip=PC_IP, reconnect=True)
    dl.start()
    assert dl.wait_until(lambda d: d.connected, 5)
    yield emu, node_id, key, dl
    dl.stop()


def config(tmp_path, pc, state=None):
    emu, node_id, key, _dl = pc
    sections = {
        "node": {"url": emu.url},
        "server": {"node_id": node_id, "key_file": write_key(tmp_path / "server.key", key)},
        "deadlines": {"node_s": 5, "deeplink_s": 10, "confirm_s": 5, "call_s": 2},
    }
    if state is not None:
        sections["state"] = state
    return write_hook_config(tmp_path / "hook.toml", sections)


def test_no_state_dir_runs_in_memory_and_says_so(spawn, tmp_path, pc):
    run = run_hook(spawn, config(tmp_path, pc))
    assert run.returncode == ExitCode.OK, run.log
    assert run.log.count("no [state] dir: last code and log kept in memory for this boot only") == 1
    assert "state memory" in run.log
    assert pc[3].password != FIRST_CODE


def test_the_state_dir_keeps_the_last_code_and_the_log_across_runs(spawn, tmp_path, pc):
    state_dir = tmp_path / "per-machine"
    path = config(tmp_path, pc, {"dir": str(state_dir)})
    first = run_hook(spawn, path)
    assert first.returncode == ExitCode.OK, first.log
    first_hash, first_code = (state_dir / "last-code").read_text(), pc[3].password
    second = run_hook(spawn, path)
    assert second.returncode == ExitCode.OK, second.log
    assert (state_dir / "last-code").read_text() != first_hash
    assert pc[3].password not in (first_code, FIRST_CODE)
    log = (state_dir / "bm-hook.log").read_text()
    assert log.count("done: node") == 2 and "no [state] dir" not in log
    for secret in (pc[2], first_code, pc[3].password):
        assert secret not in log and secret not in (state_dir / "last-code").read_text()
    assert (state_dir.stat().st_mode & 0o777) == 0o700


def test_an_unusable_state_dir_warns_and_still_publishes(spawn, tmp_path, pc):
    (tmp_path / "not-a-disk").write_text("x")
    run = run_hook(spawn, config(tmp_path, pc, {"dir": str(tmp_path / "not-a-disk" / "bm")}))
    assert run.returncode == ExitCode.OK, run.log
    assert "WARNING [state] dir" in run.log and "is not usable (cannot create it" in run.log
    assert pc[3].password != FIRST_CODE


def check(*args, env=None):
    return subprocess.run(python_module("boot_hooks", "--check", *args), capture_output=True,
                          text=True, timeout=30, env=env, check=False)


def test_check_on_a_good_pc_exits_zero(tmp_path):
    seed = hashlib.sha256(b"state-dir check token").hexdigest()
    token = tmp_path / "hook-token.key"
    token.write_text(f"hook_token={seed}\n")
    token.chmod(0o600)
    path = write_hook_config(tmp_path / "hook.toml", {
        "agent": {"url": "http://127.0.0.1:9", "token_key_file": str(token)},
        "state": {"dir": str(tmp_path / "state")}})
    done = check("--config", path, "--for-image")
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    out = done.stdout.splitlines()
    assert out[0] == f"OK       config {path}: loaded"
    assert out[-1] == "result: OK"
    assert all(line.split()[0] in ("OK", "WARNING") for line in out[:-1])
    assert seed not in done.stdout + done.stderr


def test_check_lists_every_problem_and_exits_two(tmp_path):
    token = tmp_path / "hook-token.key"
    token.write_text("node_private_key=" + "ab" * 32 + "\n")
    token.chmod(0o644)
    path = write_hook_config(tmp_path / "hook.toml", {
        "agent": {"url": "http://127.0.0.1:9", "token_key_file": str(token)}})
    done = check("--config", path)
    assert done.returncode == ExitCode.CONFIG
    problems = [line for line in done.stdout.splitlines() if line.startswith("PROBLEM ")]
    assert len(problems) == 3, done.stdout
    assert "readable by others; chmod 600 it" in problems[0]
    assert "holds a 'node_private_key=' line" in problems[1]
    assert "agent mode needs a per-machine place" in problems[2]
    assert done.stdout.splitlines()[-1].startswith("result: 3 problem(s)")
    assert "ab" * 32 not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_for_image_alone_is_a_usage_error():
    done = subprocess.run(python_module("boot_hooks", "--for-image"), capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == ExitCode.CONFIG
    assert "--for-image goes with --check" in done.stderr
