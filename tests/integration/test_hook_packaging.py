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


def test_unit_is_a_oneshot_after_network_online():
    parsed = unit()
    assert parsed["Unit"]["After"] == "network-online.target"
    assert parsed["Unit"]["Wants"] == "network-online.target"
    assert parsed["Service"]["Type"] == "oneshot"
    assert parsed["Service"]["ExecStart"].endswith("bm-hook --config /etc/bm-hook/hook.toml")
    assert parsed["Install"]["WantedBy"] == "multi-user.target"


def test_unit_does_not_restart_on_config_or_auth_errors():
    prevented = set(unit()["Service"]["RestartPreventExitStatus"].split())
    assert prevented == {str(int(ExitCode.CONFIG)), str(int(ExitCode.AUTH_REFUSED))}


def test_unit_timeout_covers_the_default_deadlines():
    d = Deadlines()
    assert int(unit()["Service"]["TimeoutStartSec"]) > d.node_s + 2 * d.deeplink_s + d.confirm_s


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
