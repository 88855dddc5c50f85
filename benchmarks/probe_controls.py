"""Which fit can measure binding? The controls on ColorShape codes alone, no images.

    python benchmarks/probe_controls.py [scenes=6000] [family=linear] [epochs=40] [lr=0.1]
        [weight_decay=1e-6] [step_size=16] [gamma=0.3] [batch_size=256] [standardize=true]

Samples balanced ColorShape object/feature codes from the world's own F-code splits
(4 : 1 : 1 scenes, test F codes unseen) and fits the three controls of every
probe_binding run (zero input, feature code, object code) with the given fit. Prints val
CE (what defaults are chosen on) and the test scores. Seconds per setting on a quiet core.
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import sys
import time

import numpy as np
import torch

from components.data.worlds import get_world
from components.probes.binding_info import BindingSplit, FitConfig, ProbeOptions, measure_binding
from components.probes.controls import CONTROLS, control_inputs


def sample_codes(world, split: str, count: int, seed: int) -> BindingSplit:
    """``count`` scenes' codes drawn as the world draws them (uniform F, then O given F)."""
    rng = np.random.default_rng(seed)
    feature_codes = world.feature_codes_by_split[split]
    objects = np.zeros((count, world.space.num_objects), np.uint8)
    features = np.zeros((count, len(feature_codes[0])), np.uint8)
    for i in range(count):
        bits = feature_codes[rng.integers(len(feature_codes))]
        objects[i, world.sample_objects(rng, bits)] = 1
        features[i] = [int(b) for b in bits]
    return BindingSplit(None, objects, features)


def main(argv: list[str]) -> None:
    args = dict(a.split("=", 1) for a in argv)
    scenes, family = int(args.pop("scenes", 6000)), args.pop("family", "linear")
    defaults = {"epochs": 40, "lr": 0.1, "weight_decay": 1e-6, "step_size": 16, "gamma": 0.3}
    defaults["batch_size"] = 256
    types = {k: type(v) for k, v in vars(FitConfig()).items()}
    values = {**defaults, **args}
    fit = FitConfig(
        **{k: (v.lower() == "true") if types[k] is bool else types[k](v) for k, v in values.items()}
    )
    torch.set_num_threads(1)
    world = get_world("colorshape")
    sizes = {"train": scenes * 4 // 6, "val": scenes // 6, "test": scenes // 6}
    codes = {s: sample_codes(world, s, n, seed) for seed, (s, n) in enumerate(sizes.items())}
    entropies = world.entropies("test")
    print(f"{family} {fit} scenes {sizes}; test H(O) {entropies['H_O']:.2f}")
    for control in CONTROLS:
        started = time.perf_counter()
        splits = {
            s: BindingSplit(control_inputs(c, control), c.object_code, c.feature_code)
            for s, c in codes.items()
        }
        scores, _ = measure_binding(
            splits, family, entropies, groups=(8, 8), options=ProbeOptions(), fit=fit
        )
        print(
            f"{control:>12}: val CE_O {scores['fit_O']['val_bits']:.2f} "
            f"CE_F {scores['fit_F']['val_bits']:.2f} | test B_O {scores['B_O']:.2f} "
            f"beta {scores['beta']:.3f} B* {scores['B_star']:.2f} "
            f"beta* {scores['beta_star']:.3f} | {time.perf_counter() - started:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
