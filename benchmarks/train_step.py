"""OC-CLIP vs CLIP training step time at the same backbone and batch, and the share of a
Ray Train step spent waiting for data (streaming + decode + collate).

    python benchmarks/train_step.py out=DIR [batch=32] [steps=30] [backbone=tiny]
        [image_size=0] [ray_steps=100] [profile=0] [models=clip,occlip]
        [device=cpu] [amp=1] [compile=0] [occlip.KEY=VALUE ...]
    python benchmarks/train_step.py out=DIR backbone=ViT-B-16 image_size=224 batch=8 \
        steps=3 ray_steps=0                        # the ratio at ViT-B/16 shapes (random init)
    python benchmarks/train_step.py out=DIR backbone=ViT-B-16 image_size=224 batch=128 \
        steps=20 ray_steps=0 device=cuda models=clip,negclip,occlip,dcsm   # GPU step times

In-process step times (forward + backward + AdamW, one thread, collate excluded) alternate
CLIP and OC-CLIP steps, so load from other processes on a shared machine falls on both
alike; the ratio is of their medians. The Ray Train part runs the real loop (decode stage,
1 CPU worker) for ``ray_steps`` steps per model on one epoch of rows, and reads the
loop's steady-state data-wait share (the pipeline's start-up, paid once, is excluded and
reported as ``startup_seconds``). ``profile=1`` writes torch.profiler's top operators per
model to DIR/profile_<model>.txt. ``device=cuda`` times the same steps on a GPU, bf16
autocast on unless ``amp=0`` and ``torch.compile`` with ``compile=1``, synchronising around
each step; ``models=`` adds NegCLIP and DCSM (a step of DCSM's scorer on cached dense features,
which are computed first on the same device). OC-CLIP is the model make run trains: the
``occlip`` block of pipelines/configs/train_occlip.yaml, with ``occlip.KEY=VALUE`` on top.
Everything lands in DIR/results.json.
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import torch
import yaml

from components.data.synthetic import SceneRowBuilder, SyntheticSpec
from components.models.registry import create_model
from components.training.loop import TrainConfig, to_device
from components.training.optim import build_optimizer
from components.training.progress import quiet_library_logs
from components.training.trainer import ScalingSettings, fit

MODELS = ("clip", "occlip")  # the ratio the issue targets; models= adds negclip and dcsm
DISTINCT_ROWS = 256  # rendered once, repeated to fill a Ray run's epoch
CPU = torch.device("cpu")
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "pipelines/configs/train_occlip.yaml"


def occlip_options(options: dict[str, str]) -> dict:
    """OC-CLIP's options of the default pipeline config (the model make run trains, not the
    constructor's defaults), then ``occlip.num_default_tokens=1`` and the like, typed by YAML."""
    defaults = yaml.safe_load(DEFAULT_CONFIG.read_text()).get("occlip") or {}
    return defaults | {
        key.removeprefix("occlip."): yaml.safe_load(value)
        for key, value in options.items()
        if key.startswith("occlip.")
    }


def backbone_spec(options: dict[str, str]) -> dict:
    spec = {"name": options.get("backbone", "tiny")}
    if int(options.get("image_size", 0)):
        spec["image_size"] = int(options["image_size"])
    return spec


def model_rows(model, rows: list[dict], backbone: dict, device: torch.device) -> list[dict]:
    """What each model's collate reads: shard rows, or DCSM's cached dense features of them
    (computed here on ``device`` at the model's context length, as the cache job would)."""
    if model.name != "dcsm":
        return rows
    from components.training.feature_cache import ShardFeatures

    table = pa.Table.from_pylist(rows).select(["id", "image", "caption", "negatives"])
    features = ShardFeatures(backbone, model.context_length, device=str(device))
    return features(table).to_pylist()


class StepTimer:
    """One optimiser step of a model on a fixed collated batch, as the training loop runs it:
    bf16 autocast around the loss on CUDA (``amp``), backward outside it, AdamW.

    ``compile`` wraps the loss in ``torch.compile`` (the loop's ``train.compile``)."""

    def __init__(
        self,
        name: str,
        rows: list[dict],
        backbone: dict,
        device: torch.device,
        amp: bool,
        compile: bool,
        options: dict,
    ) -> None:
        torch.manual_seed(0)
        self.model = create_model(name, backbone, **options).to(device)
        self.optimizer = build_optimizer(self.model, 1e-4, 1e-4, 0.0)
        self.batch = to_device(
            self.model.collate(model_rows(self.model, rows, backbone, device)), device
        )
        self.loss = torch.compile(self.model.loss) if compile else self.model.loss
        self.device, self.amp = device, amp and device.type == "cuda"

    def __call__(self) -> float:
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            loss, _ = self.loss(self.batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start


def in_process_steps(
    rows: list[dict],
    batch: int,
    steps: int,
    backbone: dict,
    out: Path | None,
    models: tuple[str, ...] = MODELS,
    device: torch.device = CPU,
    amp: bool = False,
    compile: bool = False,
    occlip: dict | None = None,
) -> dict[str, float]:
    """Median seconds per step of each model, steps interleaved; optional profile tables."""
    timers = {
        name: StepTimer(
            name, rows[:batch], backbone, device, amp, compile, occlip_for(name, occlip)
        )
        for name in models
    }
    for _ in range(3 if compile else 1):  # warm-up: allocator, lazy inits, compilation
        for timer in timers.values():
            timer()
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(steps):
        for name, timer in timers.items():
            times[name].append(timer())
    if out is not None:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
        for name, timer in timers.items():
            with profile(activities=activities) as prof:
                for _ in range(3):
                    timer()
            sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
            table = prof.key_averages().table(sort_by=sort, row_limit=15)
            (out / f"profile_{name}.txt").write_text(f"{name}: 3 steps\n{table}\n")
    return {name: statistics.median(values) for name, values in times.items()}


def occlip_for(name: str, occlip: dict | None) -> dict:
    return dict(occlip or {}) if name == "occlip" else {}


def ray_loop(
    table: pa.Table, batch: int, steps: int, backbone: dict, occlip: dict | None = None
) -> dict[str, dict]:
    """The real Ray Train loop on 1 CPU worker: seconds per step, data wait, start-up."""
    import ray.data

    from components.platform.runtime import init_ray

    quiet_library_logs()
    init_ray()
    repeats = -(-(steps + 1) * batch // table.num_rows)  # one epoch covers every step
    dataset = ray.data.from_arrow(pa.concat_tables([table] * repeats))
    results = {}
    for name in MODELS:
        config = TrainConfig(
            steps=steps, batch_size=batch, warmup_steps=1, checkpoint_every=steps, log_every=steps
        )
        with tempfile.TemporaryDirectory() as storage:
            result = fit(
                {"name": name, "backbone": backbone, **occlip_for(name, occlip)},
                config,
                dataset,
                ScalingSettings(num_workers=1),
                storage,
                f"bench-{name}",
            )
        results[name] = {
            key: result.metrics[key]
            for key in ("seconds_per_step", "data_wait_fraction", "startup_seconds")
        }
    return results


def main(argv: list[str]) -> dict:
    options = dict(arg.split("=", 1) for arg in argv)
    if "out" not in options:
        raise SystemExit("usage: python benchmarks/train_step.py out=DIR [key=value ...]")
    out = Path(options["out"])
    out.mkdir(parents=True, exist_ok=True)
    batch, steps = int(options.get("batch", 32)), int(options.get("steps", 30))
    ray_steps = int(options.get("ray_steps", 100))
    backbone = backbone_spec(options)
    occlip = occlip_options(options)
    device = torch.device(options.get("device", "cpu"))
    models = tuple(options.get("models", ",".join(MODELS)).split(","))
    amp, compile = options.get("amp", "1") == "1", options.get("compile", "0") == "1"
    if device.type == "cpu":
        torch.set_num_threads(1)  # as in the Train worker (1 CPU)
    table = SceneRowBuilder(SyntheticSpec("clevr_pairs", 0, 0.7, 64), "train").table(
        list(range(max(batch, DISTINCT_ROWS)))
    )
    profile_dir = out if options.get("profile", "0") == "1" else None
    seconds = in_process_steps(
        table.to_pylist(), batch, steps, backbone, profile_dir, models, device, amp, compile, occlip
    )
    table = table.select(["image", "caption", "graph"])
    results = {
        "backbone": backbone,
        "batch": batch,
        "occlip_options": occlip,
        "in_process": {
            "seconds_per_step": seconds,
            "steps": steps,
            "device": str(device),
            "threads": torch.get_num_threads() if device.type == "cpu" else None,
            "amp_bf16": amp and device.type == "cuda",
            "compile": compile,
        },
        "step_ratio_occlip_clip": seconds["occlip"] / seconds["clip"],
    }
    if device.type == "cuda":
        results["in_process"]["gpu"] = torch.cuda.get_device_name()
        results["in_process"]["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    write_results(out, results)  # the in-process numbers survive a failed Ray part
    if ray_steps:
        loop = ray_loop(table, batch, ray_steps, backbone, occlip)
        results["ray_train"] = {"steps": ray_steps, **loop}
        results["seconds_per_step"] = {m: loop[m]["seconds_per_step"] for m in MODELS}
        results["data_wait_fraction"] = {m: loop[m]["data_wait_fraction"] for m in MODELS}
        results["ray_step_ratio_occlip_clip"] = (
            loop["occlip"]["seconds_per_step"] / loop["clip"]["seconds_per_step"]
        )
    else:
        results["seconds_per_step"] = seconds
    write_results(out, results)
    print(json.dumps(results, indent=2))
    return results


def write_results(out: Path, results: dict) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
