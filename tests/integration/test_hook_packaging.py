"""bm-hook packaging: systemd unit, Windows scheduled task, installer, PyInstaller spec, docs."""

import configparser
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from boot_hooks.config import Deadlines
from boot_hooks.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "packaging" / "bm-hook.service"
TASK = ROOT / "packaging" / "windows" / "bm-hook-task.xml"
INSTALLER = ROOT / "packaging" / "windows" / "install.ps1"
SPEC = ROOT / "packaging" / "windows" / "bm-hook.spec"
DOC = ROOT / "docs" / "hook.md"
NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}


def unit():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(UNIT)
    return parser


def test_unit_runs_the_resident_hook_after_network_online():
    # Issue 12: the hook retries the rotation itself and stays resident (was Type=oneshot,
    # one run per start, retried by systemd's Restart=).
    parsed = unit()
    assert parsed["Unit"]["After"] == "network-online.target"
    assert parsed["Unit"]["Wants"] == "network-online.target"
    assert parsed["Service"]["Type"] == "exec"
    assert "RemainAfterExit" not in parsed["Service"]
    assert parsed["Service"]["ExecStart"].endswith(
        "bm-hook --resident --config /etc/bm-hook/hook.toml")
    assert parsed["Install"]["WantedBy"] == "multi-user.target"


def test_unit_restarts_crashes_but_not_a_config_that_does_not_load():
    # Issue 12: only exit 2 ends the process for good; auth refused (5) is retried inside
    # the resident loop now (staff may fix the key or IP), so it no longer exits with 5.
    service = unit()["Service"]
    assert service["Restart"] == "on-failure"
    assert set(service["RestartPreventExitStatus"].split()) == {str(int(ExitCode.CONFIG))}


def test_unit_gives_the_state_dir_and_stops_within_its_timeout():
    from boot_hooks.resident import STOP_GRACE_S

    service = unit()["Service"]
    assert service["StateDirectory"] == "bm-hook" and service["StateDirectoryMode"] == "0700"
    assert service["Environment"] == "BM_HOOK_STATE_DIR=/var/lib/bm-hook"
    # A stop abandons a running attempt after STOP_GRACE_S; systemd waits longer than that.
    assert int(service["TimeoutStopSec"]) > STOP_GRACE_S
    # Type=exec: a start timeout would not bound the retries anyway; none is set.
    assert "TimeoutStartSec" not in service


def test_unit_keeps_its_hardening():
    service = unit()["Service"]
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert service["UMask"] == "0077" and service["PrivateTmp"] == "yes"
    assert "AF_UNIX" in service["RestrictAddressFamilies"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_unit_passes_systemd_analyze_verify(tmp_path):
    # verify checks that ExecStart exists; point it at a binary that does.
    copy = tmp_path / "bm-hook.service"
    copy.write_text(UNIT.read_text().replace("/usr/local/bin/bm-hook", "/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_task_runs_at_boot_as_system_with_retry():
    root = ET.parse(TASK).getroot()
    assert root.find("t:Triggers/t:BootTrigger/t:Enabled", NS).text == "true"
    assert root.find("t:Principals/t:Principal/t:UserId", NS).text == "S-1-5-18"
    retry = root.find("t:Settings/t:RestartOnFailure", NS)
    assert int(retry.find("t:Count", NS).text) >= 3
    command = root.find("t:Actions/t:Exec/t:Command", NS).text
    arguments = root.find("t:Actions/t:Exec/t:Arguments", NS).text
    assert command.strip('"').endswith(r"\bm-hook\bm-hook.exe")
    assert "--config" in arguments and "--log-file" in arguments


def test_task_time_limit_covers_the_default_deadlines():
    limit = ET.parse(TASK).getroot().find("t:Settings/t:ExecutionTimeLimit", NS).text
    minutes = int(re.fullmatch(r"PT(\d+)M", limit).group(1))
    d = Deadlines()
    assert minutes * 60 > d.node_s + 2 * d.deeplink_s + d.confirm_s


def test_installer_registers_the_task_and_guards_the_image():
    text = INSTALLER.read_text()
    assert "Register-ScheduledTask" in text and "bm-hook-task.xml" in text
    assert "/inheritance:r" in text  # key directory ACL: SYSTEM + Administrators only
    assert "UTF8Encoding($false)" in text  # no BOM in hook.toml
    assert re.search(r"ForImage -and \$PSCmdlet\.ParameterSetName -eq 'Direct'", text)
    # The installer's exit-code table is the hook's.
    for code in ExitCode:
        assert re.search(rf"^\s*{int(code)} = '", text, re.M), code


def test_installer_paths_match_the_task_defaults():
    task = TASK.read_text()
    assert r"%ProgramFiles%\bm-hook" in task and r"%ProgramData%\bm-hook" in task
    assert r"Replace('%ProgramFiles%\bm-hook', $InstallDir)" in INSTALLER.read_text()


def test_spec_is_python_and_bundles_the_lazy_imports():
    text = SPEC.read_text()
    compile(text, str(SPEC), "exec")
    for module in ("boot_hooks.direct_flow", "boot_hooks.agent_flow", "sr25519", "nacl.signing"):
        assert f'"{module}"' in text
    assert '"agent"' in text  # excluded


def test_doc_lists_every_exit_code():
    text = DOC.read_text()
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \|", text, re.M), code
    assert "diskless" in text and "agent mode" in text
