"""Faults the run platform answers for every entry point: no hang, no silent number, one line."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import field

import pytest

from components.platform.cli import cli
from components.platform.config import ConfigError, InputError, check_path, load_config
from components.platform.outputs import LOCK, OutputLockedError, run_lock
from components.platform.processes import process_alive, process_start_ticks
from components.platform.storage import brace_count, expand_braces


@dataclasses.dataclass
class Settings:
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    seed: int = 0
    lr: float = 1e-3
    steps: int = 10


@pytest.mark.parametrize(
    ("override", "allowed"),
    [
        ("seeds=[0,0]", "distinct seeds"),
        ("seeds=[]", "a non-empty list of seeds"),
        ("seed=-1", "an integer seed in"),
        ("seed=100000000000000000000000", "an integer seed in"),
        ("lr=.nan", "a finite number"),
        ("lr=.inf", "a finite number"),
        ("steps=100000000000000000000", "an integer of at most"),
    ],
)
def test_bad_seeds_and_non_finite_numbers_are_one_line_before_any_work(override, allowed):
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=f"^{key}=.* is not allowed: {allowed}"):
        load_config(Settings, [override])


def test_good_values_still_load():
    config = load_config(Settings, ["seeds=[3,1,2]", "lr=0.5"])
    assert config.seeds == [3, 1, 2] and math.isclose(config.lr, 0.5)


@pytest.fixture
def silent_server():
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held, stop = [], threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_a_storage_uri_that_never_answers_is_one_line_within_the_timeout(
    monkeypatch, silent_server
):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):  # the S3 fixture may set either
        monkeypatch.setenv(name, f"http://127.0.0.1:{silent_server}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("BINDKIT_STORAGE_TIMEOUT_S", "2")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"^data=.*did not answer within 2 s"):
        check_path("data", "s3://bucket/shards")
    assert time.monotonic() - started < 6


def test_a_huge_brace_range_is_refused_before_it_is_listed():
    pattern = "s3://b/shard-{00000..99999999}.tar"
    assert brace_count(pattern) == 100_000_000
    started = time.monotonic()
    with pytest.raises(ValueError, match="expands to 100000000 paths"):
        expand_braces(pattern)
    assert time.monotonic() - started < 1
    assert expand_braces("a{1..3}{x,y}") == ["a1x", "a1y", "a2x", "a2y", "a3x", "a3y"]
    assert brace_count("a{1..3}{x,y}") == 6


def test_a_lock_whose_pid_was_reused_by_another_process_is_taken_over(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        true_start = process_start_ticks(other.pid)
        assert process_alive(other.pid, true_start)
        assert not process_alive(other.pid, true_start + 1)
        stale = {
            "pid": other.pid,
            "pid_start": true_start + 1,
            "host": socket.gethostname(),
            "started": 0,
        }
        (tmp_path / LOCK).write_text(json.dumps(stale))
        with run_lock(tmp_path) as record:
            assert record["pid"] == os.getpid()
        live = {**stale, "pid_start": true_start}
        (tmp_path / LOCK).write_text(json.dumps(live))
        with pytest.raises(OutputLockedError, match=f"pid {other.pid}"), run_lock(tmp_path):
            pass
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("train.steps=-1 is not allowed: >= 1"), 2),
        (InputError("checkpoint /x: config.json is not JSON"), 2),
        (FileNotFoundError("/data/missing: no such file, folder or matching files"), 2),
        (OSError("AWS Error ACCESS_DENIED during HeadBucket"), 1),
    ],
)
def test_an_expected_failure_is_one_line_and_its_exit_code(capsys, error, code):
    def main(argv):
        raise error

    with pytest.raises(SystemExit) as exit_info:
        cli(main, [])
    assert exit_info.value.code == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err


def test_debug_keeps_the_traceback_and_a_bug_is_not_hidden():
    def main(argv):
        raise FileNotFoundError("x")

    with pytest.raises(FileNotFoundError):
        cli(main, ["--debug"])

    def buggy(argv):
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        cli(buggy, [])


def test_a_job_that_sets_the_tracking_uri_in_its_runtime_env_is_not_refused_by_init_ray(
    monkeypatch,
):
    from components.platform.runtime import without_job_keys

    job = {
        "runtime_env": {
            "env_vars": {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"},
            "working_dir": ".",
        }
    }
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps(job))
    env = {
        "env_vars": {"MLFLOW_TRACKING_URI": "sqlite:///x.db", "A": "1"},
        "worker_process_setup_hook": "m.f",
    }
    assert without_job_keys(env) == {"env_vars": {"A": "1"}, "worker_process_setup_hook": "m.f"}
    monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR")
    assert without_job_keys(env) == env


def test_an_empty_override_is_the_empty_string():
    @dataclasses.dataclass
    class Paths:
        checkpoint: str = "x"

    assert load_config(Paths, ["checkpoint="]).checkpoint == ""
    assert load_config(Paths, ["--checkpoint="]).checkpoint == ""


def test_a_bare_key_that_lives_in_a_block_suggests_the_block_key():
    from pipelines.train_occlip import TrainOcclipConfig

    with pytest.raises(ConfigError, match=r"unknown key 'steps' .*did you mean 'train.steps'\?$"):
        load_config(TrainOcclipConfig, ["steps=10"])
