"""packaging/deb/build.sh: the .deb's metadata, file list, maintainer scripts and payload.

Built offline like the install test (the project's wheel built by the test, dependencies
from this environment); the package is then inspected with dpkg-deb and its payload
extracted and run. Installing it for real (maintainer scripts as root on a live system)
is left to a throwaway machine: the scripts are syntax-checked here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_install import ROOT_DIR, _env, _missing_dependencies, build_wheel

BUILD = ROOT_DIR / "packaging" / "deb" / "build.sh"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb missing (Debian only)"),
]


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = _missing_dependencies()
    if missing:
        pytest.skip(f"project dependencies not installed here: {', '.join(missing)}")
    work = tmp_path_factory.mktemp("deb")
    wheel = build_wheel(ROOT_DIR, work)
    done = subprocess.run(["bash", str(BUILD), "--out", str(work / "dist"), "--python",
                           sys.executable, "--wheel", str(wheel), "--offline"],
                          capture_output=True, text=True, timeout=300, env=_env(work), cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    [package] = (work / "dist").glob("bm-agent_*.deb")
    return package


def _dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], capture_output=True, text=True, check=True,
                          timeout=120).stdout


def test_control_names_the_package_and_its_interpreter(deb: Path) -> None:
    fields = dict(line.split(": ", 1) for line in _dpkg_deb("--field", str(deb)).splitlines()
                  if ": " in line and not line.startswith(" "))
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert fields["Package"] == "bm-agent" and fields["Version"] == "0.1.0"
    assert fields["Depends"].startswith(version) and "adduser" in fields["Depends"]
    assert deb.name == f"bm-agent_0.1.0_{fields['Architecture']}.deb"


def test_payload_holds_program_unit_and_docs_but_no_state_or_secret(deb: Path) -> None:
    listing = _dpkg_deb("--contents", str(deb))
    names = {line.split()[5].rstrip("/") for line in listing.splitlines()}
    for wanted in ("./opt/bm-agent/bin/bm-agent", "./usr/lib/systemd/system/bm-agent.service",
                   "./opt/bm-agent/share/doc/bm-agent/operations.md", "./usr/bin/bm-agent"):
        assert wanted in names, wanted
    assert not any(n.startswith(("./etc/bm-agent", "./var/lib/bm-agent", "./usr/local"))
                   for n in names)
    assert "root/root" in listing and "./usr/bin/bm-agent -> /opt/bm-agent/bin/bm-agent" in listing


def test_maintainer_scripts_are_valid_sh(deb: Path, tmp_path: Path) -> None:
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "--control", str(deb), str(control)], check=True, timeout=60)
    for script in ("preinst", "postinst", "prerm", "postrm"):
        path = control / script
        assert path.stat().st_mode & 0o111, script
        assert subprocess.run(["sh", "-n", str(path)], timeout=30).returncode == 0, script


def test_extracted_payload_runs(deb: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "--extract", str(deb), str(root)], check=True, timeout=120)
    venv = root / "opt/bm-agent"
    assert str(tmp_path) not in (venv / "bin/bm-agent").read_text()
    done = subprocess.run([str(venv / "bin/python"), str(venv / "bin/bm-agent"), "--help"],
                          capture_output=True, text=True, timeout=60, env=_env(tmp_path),
                          cwd=tmp_path)
    assert done.returncode == 0 and "upgrade-check" in done.stdout, done.stderr
