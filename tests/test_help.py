"""--help on every entry point: fast, exit 0, every config key with a description (issue 23.1)."""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.platform.confighelp import ROOT, entry_scripts, reference_markdown, schema_of_script

SCRIPTS = entry_scripts()
HELP_SECONDS = 2.0


def _help(script: Path) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=ROOT
    )
    return done, time.perf_counter() - started


def _leaf_keys(config: object, prefix: str = "") -> list[str]:
    """Dotted keys of a config instance, read at run time (the truth --help must match)."""
    keys = []
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if dataclasses.is_dataclass(value):
            keys += _leaf_keys(value, f"{prefix}{item.name}.")
        else:
            keys.append(prefix + item.name)
    return keys


def test_every_folder_has_entry_points():
    folders = {p.parent.name for p in SCRIPTS}
    assert folders == {"pipelines", "tune", "benchmarks"}
    assert len(SCRIPTS) >= 15


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_help_exits_zero_fast_without_torch_or_ray(script):
    done, seconds = _help(script)
    assert done.returncode == 0, done.stderr
    assert seconds < HELP_SECONDS, f"{script.name} --help took {seconds:.2f} s"
    assert done.stdout.startswith(f"usage: python {script.relative_to(ROOT)}")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "script",
    [s for s in SCRIPTS if schema_of_script(s) is not None],
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_help_lists_every_dataclass_field_with_a_description(script):
    module = importlib.import_module(f"{script.parent.name}.{script.stem}")
    schema = getattr(module, schema_of_script(script)[1].name)
    keys = _leaf_keys(schema())
    text = _help(script)[0].stdout
    lines = text.splitlines()
    for key in keys:
        rows = [i for i, line in enumerate(lines) if line.startswith(f"  {key} (")]
        assert rows, f"{script.name} --help misses {key}"
        description = lines[rows[0] + 1].strip()
        assert description and description != "(undocumented)", f"{key} has no description"


def test_train_occlip_help_groups_sections_and_shows_yaml_defaults():
    text = _help(ROOT / "pipelines" / "train_occlip.py")[0].stdout
    assert "\ntrain:" in text and "\nsynthetic:" in text
    assert "  train.steps (int, default 600" in text
    assert "--key=value" in text


def test_configuration_reference_is_in_sync():
    current = (ROOT / "docs" / "configuration.md").read_text()
    assert current == reference_markdown(SCRIPTS), (
        "docs/configuration.md is stale: run `python -m components.platform.confighelp`"
    )


def test_readme_is_usage_first_and_short():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    headings = [line for line in readme.splitlines() if line.startswith("## ")]
    expected = ["## The two commands", "## Your own data", "## Your own model", "## On a cluster"]
    expected += ["## Sweeps", "## Configuration reference", "## What happens on bad input"]
    positions = [headings.index(h) for h in expected]
    assert positions == sorted(positions)
    assert "make test" in readme and "docs/results.md" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
