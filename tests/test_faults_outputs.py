"""Output folders: manifests refuse stale reruns, locks keep two runs apart (issue 22 1, 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.platform.config import ConfigError
from components.platform.outputs import (
    LOCK,
    MANIFEST,
    OutputLockedError,
    OutputMismatchError,
    check_manifest,
    run_lock,
)

SPEC = {"world": "clevr", "seed": 0, "coverage": 0.7, "image_size": 48}


def test_first_run_writes_manifest_before_work(tmp_path):
    out = tmp_path / "w"
    assert check_manifest(out, SPEC) is False
    assert json.loads((out / MANIFEST).read_text()) == SPEC


def test_rerun_with_same_manifest_resumes(tmp_path):
    check_manifest(tmp_path, SPEC)
    (tmp_path / "part-00000.parquet").write_bytes(b"x")
    assert check_manifest(tmp_path, dict(SPEC)) is True
    assert (tmp_path / "part-00000.parquet").exists()


def test_rerun_with_other_seed_and_image_size_refuses_naming_keys(tmp_path):
    check_manifest(tmp_path, SPEC)
    with pytest.raises(OutputMismatchError) as err:
        check_manifest(tmp_path, {**SPEC, "seed": 1, "image_size": 3})
    message = str(err.value)
    assert "\n" not in message
    assert "image_size: 48 -> 3" in message and "seed: 0 -> 1" in message
    assert "coverage" not in message
    assert isinstance(err.value, ConfigError)  # pipelines turn it into exit 2


def test_nested_manifest_difference_names_dotted_key(tmp_path):
    check_manifest(tmp_path, {"grid": {"coverage": [0.1, 0.5]}})
    with pytest.raises(OutputMismatchError, match=r"grid\.coverage"):
        check_manifest(tmp_path, {"grid": {"coverage": [0.1, 0.9]}})


def test_overwrite_clears_old_outputs_and_writes_new_manifest(tmp_path):
    check_manifest(tmp_path, SPEC)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "part-00000.parquet").write_bytes(b"old")
    new = {**SPEC, "seed": 5}
    assert check_manifest(tmp_path, new, overwrite=True) is False
    assert not (tmp_path / "train").exists()
    assert json.loads((tmp_path / MANIFEST).read_text())["seed"] == 5


def test_nonempty_folder_without_manifest_refuses(tmp_path):
    (tmp_path / "card.json").write_text("{}")
    with pytest.raises(OutputMismatchError, match="no manifest.json"):
        check_manifest(tmp_path, SPEC)


def test_out_that_is_a_file_is_a_config_error(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_manifest(target, SPEC)
    with pytest.raises(ConfigError, match="is a file"), run_lock(target):
        pass


def test_manifest_on_uri(tmp_path):
    uri = f"file://{tmp_path}/remote"
    check_manifest(uri, SPEC)
    assert check_manifest(uri, SPEC) is True
    with pytest.raises(OutputMismatchError, match="coverage"):
        check_manifest(uri, {**SPEC, "coverage": 0.2})


def _hold_lock_in_subprocess(out) -> subprocess.Popen:
    code = (
        "import sys, time\n"
        "from components.platform.outputs import run_lock\n"
        f"with run_lock({str(out)!r}):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_run_refuses_with_holder_pid_and_start_time(tmp_path):
    proc = _hold_lock_in_subprocess(tmp_path)
    try:
        with pytest.raises(OutputLockedError) as err, run_lock(tmp_path):
            pass
        assert f"pid {proc.pid}" in str(err.value)
        assert "started 20" in str(err.value) and "\n" not in str(err.value)
    finally:
        proc.kill()
        proc.wait()


def test_stale_lock_of_killed_run_is_taken_over(tmp_path):
    proc = _hold_lock_in_subprocess(tmp_path)
    proc.kill()  # kill -9: the lock file stays behind
    proc.wait()
    assert (tmp_path / LOCK).exists()
    with run_lock(tmp_path) as record:
        assert record["pid"] == os.getpid()
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK).exists()


def test_lock_is_reentrant_in_one_process_and_released(tmp_path):
    with run_lock(tmp_path):
        with run_lock(tmp_path):
            assert (tmp_path / LOCK).exists()
        assert (tmp_path / LOCK).exists()
    assert not (tmp_path / LOCK).exists()


def test_overwrite_keeps_the_lock_of_the_running_build(tmp_path):
    with run_lock(tmp_path):
        check_manifest(tmp_path, SPEC)
        check_manifest(tmp_path, {**SPEC, "seed": 9}, overwrite=True)
        assert (tmp_path / LOCK).exists()


def test_lock_start_time_is_recent(tmp_path):
    with run_lock(tmp_path) as record:
        assert abs(record["started"] - time.time()) < 5


# -- every pipeline: bad values end before Ray with one line and exit 2 (issue 22 item 2) --
ROOT = Path(__file__).resolve().parents[1]
BUILD_SYNTHETIC = ROOT / "pipelines" / "build_synthetic.py"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("coverage=1.5", "coverage=1.5"),
        ("image_size=3", "image_size=3"),
        ("num_scenes=0", "num_scenes=0"),
        ("rows_per_shard=0", "rows_per_shard=0"),
        ("world=clevrr", "world='clevrr'"),
    ],
    ids=["coverage_1.5", "image_size_3", "num_scenes_0", "rows_per_shard_0", "unknown_world"],
)
def test_bad_build_synthetic_value_is_one_line_config_error(tmp_path, override, named):
    from pipelines.build_synthetic import main

    with pytest.raises(ConfigError) as err:
        main([f"out={tmp_path / 'w'}", override])
    assert named in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "w").exists()  # refused before anything was written


def test_out_a_file_exits_2_with_one_line_and_no_traceback(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(BUILD_SYNTHETIC), f"out={target}", "num_scenes=10"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"error: out={target} is a file; out= must be a folder (new or empty)"
    )
    assert time.perf_counter() - started < 30  # before Ray starts (Ray alone takes ~20 s here)


def test_debug_flag_shows_the_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BUILD_SYNTHETIC), f"out={tmp_path}", "coverage=1.5", "--debug"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "InvalidValue" in done.stderr


def test_dash_dash_key_value_and_typo_hint(tmp_path):
    from components.platform.config import load_config
    from pipelines.build_synthetic import BuildSyntheticConfig

    config = load_config(BuildSyntheticConfig, ["--seed=4", "image_size=32"])
    assert (config.seed, config.image_size) == (4, 32)
    with pytest.raises(ConfigError, match="did you mean 'coverage'"):
        load_config(BuildSyntheticConfig, ["--coverag=0.5"])


# -- builders and sweeps: a rerun with other settings refuses (issue 22 item 1) --------------


@pytest.mark.slow
def test_build_synthetic_rerun_with_other_seed_refuses_then_overwrite_rebuilds(
    ray_cluster, tmp_path
):
    from components.data.build import build_synthetic
    from components.data.synthetic import SyntheticSpec

    out = tmp_path / "w"
    first = build_synthetic(SyntheticSpec("clevr_pairs", 0, 0.5, 16), 24, out, rows_per_shard=12)
    before = sorted(p.stat().st_mtime_ns for p in out.rglob("*.parquet"))
    with pytest.raises(OutputMismatchError, match=r"image_size: 16 -> 32.*seed: 0 -> 1"):
        build_synthetic(SyntheticSpec("clevr_pairs", 1, 0.5, 32), 24, out, rows_per_shard=12)
    assert sorted(p.stat().st_mtime_ns for p in out.rglob("*.parquet")) == before
    again = build_synthetic(
        SyntheticSpec("clevr_pairs", 1, 0.5, 32), 24, out, rows_per_shard=12, overwrite=True
    )
    assert again["build"]["rows_skipped"] == 0 and again["build"]["rows_written"] == 24
    card = json.loads((out / "card.json").read_text())
    assert (card["seed"], card["image_size"]) == (1, 32) != (first["seed"], first["image_size"])
    assert json.loads((out / MANIFEST).read_text())["seed"] == 1


def test_sweep_rerun_with_changed_grid_refuses_and_keeps_old_report(tmp_path):
    from components.platform.config import load_config
    from components.platform.outputs import config_manifest
    from tune.sweep_coverage import DEFAULT_CONFIG, SweepCoverageConfig, main

    smoke = DEFAULT_CONFIG.parent / "smoke" / "sweep_coverage.yaml"
    argv = ["--config", str(smoke), f"out={tmp_path}"]
    check_manifest(tmp_path, config_manifest(load_config(SweepCoverageConfig, argv)))
    (tmp_path / "report.md").write_text("the old sweep's report")
    with pytest.raises(OutputMismatchError, match="coverages"):
        main([*argv, "coverages=[0.5]", "resume=false"])  # resume is not part of the grid
    assert (tmp_path / "report.md").read_text() == "the old sweep's report"


def test_second_pipeline_into_a_live_out_refuses_with_exit_2(tmp_path):
    proc = _hold_lock_in_subprocess(tmp_path)
    try:
        done = subprocess.run(
            [sys.executable, str(BUILD_SYNTHETIC), f"out={tmp_path}", "num_scenes=10"],
            capture_output=True,
            text=True,
        )
    finally:
        proc.kill()
        proc.wait()
    assert done.returncode == 2
    assert f"is in use by pid {proc.pid}" in done.stderr
    assert "Traceback" not in done.stderr
