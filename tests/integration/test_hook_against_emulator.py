"""bm-hook end to end on loopback: emulator (node + DeepLink LAN service), a simulated
DeepLink connected from 127.0.0.N, and the hook as a subprocess.

Direct mode (the PC's own key) on a >= 0.4.1.7 node and on a 0.4.1.6 node, DeepLink
connecting late, node down, wrong key, and no secret in the hook's log; agent mode
through the contract stand-in agent (the real agent endpoint test comes with the agent).
"""

import hashlib
import re
import shutil
import subprocess
import tempfile

import nacl.signing
import pytest

from baremetal.dbc.client import Client, NodeKeyAuth
from baremetal.emulator.deeplink_client import SimulatedDeepLink
from baremetal.signing import new_node_keypair
from boot_hooks.errors import ExitCode
from tests.support.emulator import start_emulator
from tests.support.hook_agent_standin import AgentStandin, NodePublisher, RegisteredServer
from tests.support.hook_run import register_pc, run_hook, write_hook_config, write_key
from tests.support.hook_sdk_fake import FakeDeepLinkSdk
from tests.support.ports import free_port
from tests.support.procs import python_module

CODE = re.compile(r"[A-Za-z0-9]{6,16}")
DEVICE_ID = "721345678"
FIRST_CODE = "FirstBoot01"


def direct_config(tmp_path, emu, node_id, key, **overrides):
    sections = {
        "node": {"url": emu.url},
        "server": {"node_id": node_id, "key_file": write_key(tmp_path / "server.key", key)},
        "deeplink": {"sdk": "none"},
        "deadlines": {"node_s": 5, "deeplink_s": 10, "confirm_s": 5, "call_s": 2},
        "state": {"file": str(tmp_path / "last-code")},
    }
    for section, table in overrides.items():
        sections.setdefault(section, {}).update(table)
    return write_hook_config(tmp_path / "hook.toml", sections)


@pytest.fixture
def deeplinks():
    started = []

    def _start(emu, source_ip, **kwargs):
        dl = SimulatedDeepLink((emu.deeplink_host, emu.deeplink_port), device_id=DEVICE_ID,
                               password=FIRST_CODE, source_ip=source_ip, reconnect=True,
                               **kwargs)
        dl.start()
        started.append(dl)
        return dl

    yield _start
    for dl in started:
        dl.stop()


def assert_no_secret(log, *secrets):
    for secret in secrets:
        assert secret and secret not in log, "a secret leaked into the hook's log"


def test_direct_mode_on_a_relay_node(spawn, tmp_path, deeplinks):
    emu = start_emulator(spawn, tmp_path)
    node_id, key = register_pc(emu, "127.0.0.23")
    dl = deeplinks(emu, "127.0.0.23")
    assert dl.wait_until(lambda d: d.connected, 5)
    run = run_hook(spawn, direct_config(tmp_path, emu, node_id, key))
    assert run.returncode == ExitCode.OK, run.log
    new_code = dl.password
    assert new_code != FIRST_CODE and CODE.fullmatch(new_code)
    info = Client(emu.url, timeout_s=5).get_deeplink(node_id, auth=NodeKeyAuth(key))
    assert (info.device_id, info.device_password) == (DEVICE_ID, new_code)
    assert "done: node" in run.log and "...5678" in run.log
    assert_no_secret(run.log, key, FIRST_CODE, new_code)


def test_second_boot_makes_another_code(spawn, tmp_path, deeplinks):
    emu = start_emulator(spawn, tmp_path)
    node_id, key = register_pc(emu, "127.0.0.24")
    dl = deeplinks(emu, "127.0.0.24")
    assert dl.wait_until(lambda d: d.connected, 5)
    config = direct_config(tmp_path, emu, node_id, key)
    assert run_hook(spawn, config).returncode == ExitCode.OK
    first = dl.password
    assert run_hook(spawn, config).returncode == ExitCode.OK
    assert dl.password not in (first, FIRST_CODE)


def test_direct_mode_with_the_sdk_on_a_relay_node(spawn, tmp_path, deeplinks):
    emu = start_emulator(spawn, tmp_path)
    node_id, key = register_pc(emu, "127.0.0.25")
    dl = deeplinks(emu, "127.0.0.25")
    sock_dir = tempfile.mkdtemp(prefix="bmh-")
    try:
        with FakeDeepLinkSdk(f"{sock_dir}/sdk", linked=dl) as sdk:
            config = direct_config(tmp_path, emu, node_id, key,
                                   deeplink={"sdk": f"unix:{sdk.path}"})
            run = run_hook(spawn, config)
            assert run.returncode == ExitCode.OK, run.log
            assert sdk.passwords_set == []  # the node relayed it; the SDK was only read
            assert sdk.calls[:3] == ["auth", "getServerConnState", "getDeviceInfo"]
            assert_no_secret(run.log, key, FIRST_CODE, dl.password)
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)


def test_legacy_node_sets_deeplink_locally_and_stores_both(spawn, tmp_path):
    emu = start_emulator(spawn, tmp_path, node_version="0.4.1.6")
    node_id, key = register_pc(emu, "127.0.0.26")
    sock_dir = tempfile.mkdtemp(prefix="bmh-")
    try:
        with FakeDeepLinkSdk(f"{sock_dir}/sdk", device_id=DEVICE_ID, password=FIRST_CODE) as sdk:
            config = direct_config(tmp_path, emu, node_id, key,
                                   deeplink={"sdk": f"unix:{sdk.path}"})
            run = run_hook(spawn, config)
            assert run.returncode == ExitCode.OK, run.log
            [new_code] = sdk.passwords_set
            assert new_code != FIRST_CODE and CODE.fullmatch(new_code)
            assert "legacy store" in run.log
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)
    info = Client(emu.url, timeout_s=5).get_deeplink(node_id, auth=NodeKeyAuth(key))
    assert (info.device_id, info.device_password) == (DEVICE_ID, new_code)
    assert_no_secret(run.log, key, FIRST_CODE, new_code)


@pytest.mark.slow
def test_deeplink_connecting_5s_late_still_succeeds(spawn, tmp_path, deeplinks):
    emu = start_emulator(spawn, tmp_path)
    node_id, key = register_pc(emu, "127.0.0.27")
    dl = deeplinks(emu, "127.0.0.27", connect_delay=5.0)
    run = run_hook(spawn, direct_config(tmp_path, emu, node_id, key))
    assert run.returncode == ExitCode.OK, run.log
    assert 4.5 <= run.elapsed_s < 10.0  # DeepLink started just before the hook
    assert "still waiting" in run.log
    assert dl.password != FIRST_CODE


def test_deeplink_never_connecting_gives_the_deeplink_code(spawn, tmp_path):
    emu = start_emulator(spawn, tmp_path)
    node_id, key = register_pc(emu, "127.0.0.28")
    config = direct_config(tmp_path, emu, node_id, key, deadlines={"deeplink_s": 1.5})
    run = run_hook(spawn, config)
    assert run.returncode == ExitCode.DEEPLINK_UNREACHABLE, run.log
    assert "deeplink service not connected" in run.log


def test_deeplink_refusing_the_code_is_not_confirmed(spawn, tmp_path, deeplinks):
    emu = start_emulator(spawn, tmp_path)
    node_id, key = register_pc(emu, "127.0.0.33")
    dl = deeplinks(emu, "127.0.0.33", reject_passwords=True)
    assert dl.wait_until(lambda d: d.connected, 5)
    config = direct_config(tmp_path, emu, node_id, key, deadlines={"confirm_s": 1.0})
    run = run_hook(spawn, config)
    assert run.returncode == ExitCode.NOT_CONFIRMED, run.log
    assert dl.rejected == 1 and dl.password == FIRST_CODE
    assert run.elapsed_s < 1.0 + 2.0


def test_node_down_gives_the_node_code_within_the_deadline(spawn, tmp_path):
    keypair = new_node_keypair()
    url = f"http://127.0.0.1:{free_port()}"
    config = write_hook_config(tmp_path / "hook.toml", {
        "node": {"url": url},
        "server": {"key_file": write_key(tmp_path / "server.key", keypair.private_key)},
        "deadlines": {"node_s": 2, "call_s": 1},
        "state": {"file": str(tmp_path / "last-code")},
    })
    run = run_hook(spawn, config)
    assert run.returncode == ExitCode.NODE_UNREACHABLE, run.log
    assert 2.0 <= run.elapsed_s < 2.0 + 2.0
    assert_no_secret(run.log, keypair.private_key)


def test_wrong_key_is_refused_by_the_node(spawn, tmp_path, deeplinks):
    emu = start_emulator(spawn, tmp_path)
    node_id, key = register_pc(emu, "127.0.0.29")
    dl = deeplinks(emu, "127.0.0.29")
    assert dl.wait_until(lambda d: d.connected, 5)
    wrong = new_node_keypair().private_key
    run = run_hook(spawn, direct_config(tmp_path, emu, node_id, wrong))
    assert run.returncode == ExitCode.AUTH_REFUSED, run.log
    assert "does not belong to node_id" in run.log
    assert dl.password == FIRST_CODE
    assert_no_secret(run.log, key, wrong, FIRST_CODE)


def test_registered_ip_of_another_pc_is_caught(spawn, tmp_path, deeplinks):
    """The node's session for our registered IP is another DeepLink: do not publish."""
    emu = start_emulator(spawn, tmp_path)
    node_id, key = register_pc(emu, "127.0.0.30")
    other = deeplinks(emu, "127.0.0.30")  # a different PC holds that IP
    assert other.wait_until(lambda d: d.connected, 5)
    sock_dir = tempfile.mkdtemp(prefix="bmh-")
    try:
        with FakeDeepLinkSdk(f"{sock_dir}/sdk", device_id="999000111") as sdk:
            config = direct_config(tmp_path, emu, node_id, key,
                                   deeplink={"sdk": f"unix:{sdk.path}"})
            run = run_hook(spawn, config)
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)
    assert run.returncode == ExitCode.NOT_CONFIRMED, run.log
    assert "registered IP is another PC's" in run.log
    assert other.password == FIRST_CODE  # nothing was pushed to the other PC


def test_agent_mode_end_to_end_through_the_node(spawn, tmp_path, deeplinks):
    """Hook -> stand-in agent (contract-exact) -> emulator node -> simulated DeepLink."""
    emu = start_emulator(spawn, tmp_path)
    node_id, key = register_pc(emu, "127.0.0.31")
    dl = deeplinks(emu, "127.0.0.31")
    assert dl.wait_until(lambda d: d.connected, 5)
    token = hashlib.sha256(b"e2e cafe token").hexdigest()
    public = bytes(nacl.signing.SigningKey(bytes.fromhex(token)).verify_key).hex()
    agent = AgentStandin(public, [RegisteredServer(node_id, "127.0.0.31", key)],
                         NodePublisher(emu.url)).start(free_port())
    try:
        config = write_hook_config(tmp_path / "hook.toml", {
            "node": {"url": emu.url},
            "agent": {"url": agent.url, "token_key_file": write_key(tmp_path / "tok", token),
                      "source_ip": "127.0.0.31"},
            "deadlines": {"node_s": 5, "deeplink_s": 10, "confirm_s": 5, "call_s": 2},
            "state": {"file": str(tmp_path / "last-code")},
        })
        run = run_hook(spawn, config)
    finally:
        agent.stop()
    assert run.returncode == ExitCode.OK, run.log
    assert dl.password != FIRST_CODE and CODE.fullmatch(dl.password)
    assert node_id in agent.rotations
    assert_no_secret(run.log, key, token, FIRST_CODE, dl.password)


def test_help_documents_the_exit_codes():
    out = subprocess.run(python_module("boot_hooks", "--help"), capture_output=True, text=True,
                         timeout=30, check=True).stdout
    for code in ExitCode:
        assert f"  {int(code)}  " in out


def test_hook_time_once_node_and_deeplink_answer(spawn, tmp_path, deeplinks):
    """The whole run, process start included, stays under 1 s once both peers answer."""
    emu = start_emulator(spawn, tmp_path)
    node_id, key = register_pc(emu, "127.0.0.32")
    dl = deeplinks(emu, "127.0.0.32")
    assert dl.wait_until(lambda d: d.connected, 5)
    config = direct_config(tmp_path, emu, node_id, key)
    times = []
    for _ in range(3):
        run = run_hook(spawn, config)
        assert run.returncode == ExitCode.OK, run.log
        times.append(run.elapsed_s)
    assert min(times) < 1.0, times
