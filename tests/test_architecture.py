"""The layers of docs/architecture.md hold, and the check that guards them can fail.

`lint-imports` reads the contracts in pyproject.toml; these tests run it on the repository
and on a copy with one deliberate upward import, so a contract that silently stopped
matching anything (a renamed package, a typo in a layer) is caught too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
ENTRY_FOLDERS = ("components", "pipelines", "tune", "benchmarks", "datasets", "tests")
# The lazy registries are the one place a module is imported from a string.
LAZY_REGISTRIES = {"components/parsing/registry.py", "components/models/registry.py"}


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}  # analyse this tree, not the installed one
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _python_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


def test_the_layer_contracts_hold_on_the_repository():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "BROKEN" not in result.stdout
    assert len(re.findall(r" KEPT$", result.stdout, flags=re.M)) == 5


@pytest.mark.parametrize(
    ("module", "statement", "contract"),
    [
        ("components/platform/upward.py", "import components.models.backbone", "layers of"),
        ("components/models/upward.py", "import ray.train", "models import neither"),
        ("components/parsing/upward.py", "import components.data.schema", "layers of"),
        ("pipelines/upward.py", "import pipelines.train_occlip", "no pipeline imports"),
    ],
)
def test_a_deliberate_upward_import_breaks_its_contract(tmp_path, module, statement, contract):
    for folder in ("components", "pipelines", "tune"):
        shutil.copytree(
            ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / module).write_text(f'"""A deliberate layer violation."""\n\n{statement}\n')
    result = _lint(tmp_path)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith(" BROKEN")]
    assert any(line.startswith(contract) for line in broken), result.stdout[-3000:]


def test_no_file_edits_sys_path():
    edits = [
        str(p.relative_to(ROOT))
        for p in _python_files(*ENTRY_FOLDERS)
        if re.search(r"sys\.path\.(insert|append|extend)|sys\.path\s*\+?=", p.read_text())
        and p.name != "test_architecture.py"
    ]
    assert edits == []


def test_project_modules_are_imported_from_strings_only_in_the_lazy_registries():
    found = []
    for path in _python_files("components", "pipelines", "tune"):
        rel = str(path.relative_to(ROOT))
        text = path.read_text()
        if rel not in LAZY_REGISTRIES and re.search(r"import_module\(|__import__\(", text):
            found.append(rel)
    assert found == []
