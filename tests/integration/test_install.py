"""packaging/install.sh into a throwaway root, and the systemd units through systemd-analyze.

The test machine has no package index (tests talk to 127.0.0.0/8 only) and no ``wheel``
package, so the test builds the project's wheel itself, the way setuptools would (packages
with ``__init__.py`` under the include patterns, their .py files and the package-data
patterns of pyproject.toml, the console scripts), and the installer's pip resolves the
dependencies from this test's own environment (``PYTHONPATH``; ``--offline`` forbids any
index). Everything else is the real script: venv, pip install, relocation into the final
paths, ``bm-agent init``, unit install, ``upgrade-check``; then the installed console
script runs from the staged venv.
"""

from __future__ import annotations

import base64
import configparser
import fnmatch
import hashlib
import importlib.metadata
import os
import shutil
import site
import stat
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT_DIR = Path(__file__).resolve().parents[2]
INSTALL = ROOT_DIR / "packaging" / "install.sh"
UNINSTALL = ROOT_DIR / "packaging" / "uninstall.sh"
AGENT_UNIT = ROOT_DIR / "packaging" / "bm-agent.service"
HOOK_UNIT = ROOT_DIR / "packaging" / "bm-hook.service"
PREFIX = "/opt/bm-agent"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None,
    reason="systemd-analyze missing (Debian package systemd; scripts/install-system-deps.sh)")


# --- a setuptools-like wheel, built with the standard library -------------------------


def _packages(src: Path, patterns: list[str]) -> list[str]:
    found = []
    for top in sorted(p for p in src.iterdir() if (p / "__init__.py").is_file()):
        stack = [top]
        while stack:  # like setuptools.find_packages: stop at directories without __init__
            here = stack.pop()
            name = here.relative_to(src).as_posix().replace("/", ".")
            if any(fnmatch.fnmatchcase(name, pat) for pat in patterns):
                found.append(name)
            stack += [d for d in here.iterdir() if (d / "__init__.py").is_file()]
    return found


def _wheel_files(src: Path, project: dict, tool: dict) -> dict[str, bytes]:
    data = tool.get("package-data", {})
    files: dict[str, bytes] = {}
    for package in _packages(src, tool["packages"]["find"]["include"]):
        folder = src / package.replace(".", "/")
        for path in sorted(folder.glob("*.py")):
            files[path.relative_to(src).as_posix()] = path.read_bytes()
        for pattern in data.get(package, []):
            for path in sorted(folder.glob(pattern)):
                if path.is_file():
                    files[path.relative_to(src).as_posix()] = path.read_bytes()
    return files


def _metadata(project: dict) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}",
             f"Version: {project['version']}", f"Summary: {project['description']}",
             f"Requires-Python: {project['requires-python']}"]
    lines += [f"Requires-Dist: {dep}" for dep in project["dependencies"]]
    return "\n".join(lines) + "\n"


def build_wheel(src: Path, out_dir: Path) -> Path:
    """Build the project's py3-none-any wheel from ``src`` into ``out_dir``."""
    pyproject = tomllib.loads((src / "pyproject.toml").read_text())
    project, tool = pyproject["project"], pyproject["tool"]["setuptools"]
    dist = f"{project['name'].replace('-', '_')}-{project['version']}"
    files = _wheel_files(src, project, tool)
    scripts = "".join(f"{name} = {target}\n" for name, target in project["scripts"].items())
    files[f"{dist}.dist-info/METADATA"] = _metadata(project).encode()
    files[f"{dist}.dist-info/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: bm-agent-tests\n"
                                        b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    files[f"{dist}.dist-info/entry_points.txt"] = f"[console_scripts]\n{scripts}".encode()
    record = [f"{name},sha256={_digest(body)},{len(body)}" for name, body in files.items()]
    files[f"{dist}.dist-info/RECORD"] = ("\n".join([*record, f"{dist}.dist-info/RECORD,,"])
                                         + "\n").encode()
    wheel = out_dir / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return wheel


def _digest(body: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()


# --- running the installer ---------------------------------------------------------


def _dependency_path() -> str:
    """This environment's site-packages: where the staged venv's pip finds the dependencies."""
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
             *site.getsitepackages()}
    return os.pathsep.join(sorted(p for p in paths if Path(p).is_dir()))


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BM_AGENT_", "PIP_"))}
    env.update(PYTHONPATH=_dependency_path(), PIP_NO_INDEX="1", PIP_NO_CACHE_DIR="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CONFIG_FILE=os.devnull,
               LANG="C.UTF-8", HOME=str(tmp_path))
    env.pop("PIP_FIND_LINKS", None)
    return env


def run_install(root: Path, wheel: Path, tmp_path: Path, *extra: str
                ) -> subprocess.CompletedProcess[str]:
    """Run install.sh staged into ``root``; fail with its output if it fails."""
    done = subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), "--wheel", str(wheel), "--offline",
         "--python", sys.executable, "--node-url", "http://127.0.0.1:5002", *extra],
        capture_output=True, text=True, timeout=300, env=_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def staged_cli(root: Path, tmp_path: Path, *args: str, config: bool = True
               ) -> subprocess.CompletedProcess[str]:
    """Run the installed ``bm-agent`` console script with the staged venv's interpreter."""
    venv = root / PREFIX.lstrip("/")
    env = {**_env(tmp_path),
           "BM_AGENT_STORE_PATH": str(root / "var/lib/bm-agent/agent.db"),
           "BM_AGENT_SECRETS_KEY_FILE": str(root / "etc/bm-agent/secrets.key")}
    cfg = ["--config", str(root / "etc/bm-agent/agent.toml")] if config else []
    return subprocess.run([str(venv / "bin/python"), str(venv / "bin/bm-agent"), *cfg, *args],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)


def _missing_dependencies() -> list[str]:
    project = tomllib.loads((ROOT_DIR / "pyproject.toml").read_text())["project"]
    missing = []
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue  # e.g. pywin32 (sys_platform == 'win32'): not for this machine
        name = requirement.name
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = _missing_dependencies()
    if missing:  # `make` installs them (pip install -e .[dev]); offline there is no index
        pytest.skip(f"project dependencies not installed here: {', '.join(missing)}")
    return build_wheel(ROOT_DIR, tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """One staged install shared by the read-only tests of this module."""
    work = tmp_path_factory.mktemp("staged")
    root = work / "root"
    run_install(root, wheel, work)
    return root


def copy_of(staged: Path, tmp_path: Path) -> Path:
    """A private copy of the staged install (the venv is relocatable: paths are final)."""
    root = tmp_path / "root"
    shutil.copytree(staged, root, symlinks=True)
    return root


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# --- the tree ----------------------------------------------------------------------


@pytest.mark.slow
def test_install_lays_out_venv_config_state_and_unit(staged: Path) -> None:
    venv = staged / "opt/bm-agent"
    assert (venv / "pyvenv.cfg").is_file() and (venv / "bin/bm-agent").is_file()
    assert _mode(staged / "etc/bm-agent") == 0o750
    assert _mode(staged / "var/lib/bm-agent") == 0o750
    assert _mode(staged / "etc/bm-agent/agent.toml") == 0o640
    assert _mode(staged / "etc/bm-agent/secrets.key") == 0o600
    assert _mode(staged / "etc/bm-agent/initial-admin-password") == 0o600
    assert _mode(staged / "var/lib/bm-agent/agent.db") == 0o600
    unit = staged / "etc/systemd/system/bm-agent.service"
    assert _mode(unit) == 0o644 and unit.read_text() == AGENT_UNIT.read_text()
    assert os.readlink(staged / "usr/local/bin/bm-agent") == f"{PREFIX}/bin/bm-agent"
    assert (venv / "share/doc/bm-agent/operations.md").is_file()


@pytest.mark.slow
def test_staged_files_name_the_final_paths_not_the_staging_root(staged: Path) -> None:
    config = (staged / "etc/bm-agent/agent.toml").read_text()
    assert 'path = "/var/lib/bm-agent/agent.db"' in config
    assert 'key_file = "/etc/bm-agent/secrets.key"' in config
    assert 'url = "http://127.0.0.1:5002"' in config
    venv = staged / "opt/bm-agent"
    assert (venv / "bin/bm-agent").read_text().splitlines()[0] == f"#!{PREFIX}/bin/python"
    for path in [*venv.joinpath("bin").iterdir(), venv / "pyvenv.cfg"]:
        if path.is_file() and not path.is_symlink():
            assert str(staged) not in path.read_text(errors="replace"), path


@pytest.mark.slow
def test_installed_console_script_runs_from_the_venv(staged: Path, tmp_path: Path) -> None:
    done = staged_cli(staged, tmp_path, "--help", config=False)
    assert done.returncode == 0, done.stderr
    assert "backup" in done.stdout and "upgrade-check" in done.stdout
    venv = staged / "opt/bm-agent"
    where = subprocess.run([str(venv / "bin/python"), "-c", "import agent; print(agent.__file__)"],
                           capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path,
                           timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr


@pytest.mark.slow
def test_installed_package_has_its_data_files(staged: Path) -> None:
    site_dir = next((staged / "opt/bm-agent/lib").glob("python3*/site-packages"))
    for name in ("agent/locales/en.json", "agent/locales/zh_CN.json",
                 "agent/web/templates/page.html", "agent/web/static/app.css"):
        assert (site_dir / name).is_file(), name
    assert (site_dir / "agent/api/app.py").is_file()


@pytest.mark.slow
def test_staged_store_opens_with_the_admin_and_checks_clean(staged: Path, tmp_path: Path
                                                            ) -> None:
    done = staged_cli(staged, tmp_path, "--json", "users", "list")
    assert done.returncode == 0, done.stderr
    assert '"admin"' in done.stdout
    check = staged_cli(staged, tmp_path, "upgrade-check")
    assert check.returncode == 0, check.stderr


# --- upgrade -----------------------------------------------------------------------


@pytest.mark.slow
def test_reinstall_upgrades_in_place_keeps_data_and_backs_up(staged: Path, wheel: Path,
                                                              tmp_path: Path) -> None:
    root = copy_of(staged, tmp_path)
    key = (root / "etc/bm-agent/secrets.key").read_bytes()
    password = (root / "etc/bm-agent/initial-admin-password").read_text()
    again = run_install(root, wheel, tmp_path)
    assert "keeping /etc/bm-agent/agent.toml" in again.stdout
    assert (root / "etc/bm-agent/secrets.key").read_bytes() == key
    assert (root / "etc/bm-agent/initial-admin-password").read_text() == password
    backups = list((root / "var/lib/bm-agent/backups").glob("pre-upgrade-*.db"))
    assert len(backups) == 1 and _mode(backups[0]) == 0o600
    assert '"admin"' in staged_cli(root, tmp_path, "--json", "users", "list").stdout


@pytest.mark.slow
def test_install_refuses_to_go_on_over_a_newer_store(staged: Path, wheel: Path,
                                                      tmp_path: Path) -> None:
    root = copy_of(staged, tmp_path)
    db = root / "var/lib/bm-agent/agent.db"
    subprocess.run(["sqlite3", str(db), "PRAGMA user_version = 999;"], check=True, timeout=30)
    done = subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), "--wheel", str(wheel), "--offline",
         "--python", sys.executable, "--no-backup"],
        capture_output=True, text=True, timeout=300, env=_env(tmp_path), cwd=tmp_path)
    assert done.returncode != 0
    assert "999" in done.stderr and "not restarted" in done.stderr


@pytest.mark.slow
def test_uninstall_removes_the_program_and_keeps_the_data(staged: Path, tmp_path: Path) -> None:
    root = copy_of(staged, tmp_path)
    done = subprocess.run(["bash", str(UNINSTALL), "--root", str(root)], capture_output=True,
                          text=True, timeout=60, env=_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert not (root / "opt/bm-agent").exists()
    assert not (root / "etc/systemd/system/bm-agent.service").exists()
    assert not (root / "usr/local/bin/bm-agent").is_symlink()
    assert (root / "var/lib/bm-agent/agent.db").is_file()
    assert (root / "etc/bm-agent/secrets.key").is_file()
    purge = subprocess.run(["bash", str(UNINSTALL), "--root", str(root), "--purge"],
                           capture_output=True, text=True, timeout=60, env=_env(tmp_path))
    assert purge.returncode == 0, purge.stderr
    assert not (root / "var/lib/bm-agent").exists() and not (root / "etc/bm-agent").exists()


# --- systemd units -----------------------------------------------------------------


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def test_agent_unit_is_hardened_as_specified() -> None:
    service = _unit(AGENT_UNIT)["Service"]
    expected = {
        "User": "bm-agent", "Restart": "on-failure", "ProtectSystem": "strict",
        "ReadWritePaths": "/var/lib/bm-agent", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
        "ProtectHome": "yes", "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter": "@system-service", "StandardOutput": "journal",
        "StandardError": "journal",
        "ExecStart": f"{PREFIX}/bin/bm-agent --config /etc/bm-agent/agent.toml serve",
    }
    assert {key: service.get(key) for key in expected} == expected
    assert service["RestartPreventExitStatus"] == "2"  # config errors: a restart cannot help


def _analyze_root(tmp_path: Path) -> Path:
    """A root with systemd's own units (default dependencies) for ``verify --root``."""
    root = tmp_path / "analyze-root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    return root


@needs_analyze
@pytest.mark.slow
def test_installed_units_pass_systemd_analyze_verify(staged: Path, tmp_path: Path) -> None:
    # verify resolves ExecStart inside --root: the agent's is the real staged console script;
    # bm-hook (installed on the GPU PCs, not here) is the same distribution's script.
    root = _analyze_root(tmp_path)
    shutil.copytree(staged / "opt", root / "opt", symlinks=True)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    shutil.copy(staged / "etc/systemd/system/bm-agent.service", units)
    shutil.copy(HOOK_UNIT, units)
    (root / "usr/local/bin").mkdir(parents=True)
    os.symlink(f"{PREFIX}/bin/bm-hook", root / "usr/local/bin/bm-hook")
    for unit in ("bm-agent.service", "bm-hook.service"):
        done = subprocess.run([SYSTEMD_ANALYZE, "verify", f"--root={root}", unit],
                              capture_output=True, text=True, timeout=120)
        assert (done.returncode, done.stderr) == (0, ""), f"{unit}: {done.stderr}"


@needs_analyze
def test_verify_rejects_a_unit_whose_binary_is_missing(tmp_path: Path) -> None:
    # The check above is meaningful: the same verify fails without the installed script.
    root = _analyze_root(tmp_path)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    shutil.copy(AGENT_UNIT, units)
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", f"--root={root}", "bm-agent.service"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "bm-agent" in done.stderr


@needs_analyze
def test_agent_unit_security_exposure_is_low() -> None:
    done = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=true", "--threshold=25",
                           str(AGENT_UNIT)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "Overall exposure level for bm-agent.service: 1." in done.stdout
