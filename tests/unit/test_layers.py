"""The layer contracts (pyproject.toml [tool.importlinter]) hold, and lint-imports does catch a breach."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
    "lint-imports")

pytestmark = pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter is not installed")

CONTRACT = """\
[importlinter]
root_packages =
    agent
    baremetal

[importlinter:contract:protocol]
name = baremetal never imports agent
type = forbidden
source_modules = baremetal
forbidden_modules = agent
"""


def _lint(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def _tree(tmp_path: Path, client_source: str) -> Path:
    for package in ("agent", "baremetal"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text('"""Throw-away package."""\n')
    (tmp_path / "agent" / "app.py").write_text("import baremetal.client\n")
    (tmp_path / "baremetal" / "client.py").write_text(client_source)
    (tmp_path / ".importlinter").write_text(CONTRACT)
    return tmp_path


def test_project_contracts_are_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    result = _lint(_tree(tmp_path, "import json\n"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_forbidden_import_fails(tmp_path: Path) -> None:
    result = _lint(_tree(tmp_path, "import json\n\nfrom agent import app\n"))
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "baremetal.client -> agent" in result.stdout
