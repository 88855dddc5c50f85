"""Public compositional benchmarks by name: ``get_benchmark("sugarcrepe/swap_att", root)``.

Loaders only read files a user downloaded (nothing is fetched), check that every image
exists before any scoring starts, and fail naming the file, record and key at fault. An
image name that leaves its image folder (absolute, ``../``, a symlink resolving outside
it) is never opened: its item is a counted ``path_outside_root`` skip (`common.image_ref`).
Names and the files each expects under ``root``:

    sugarcrepe/{add_att,add_obj,replace_att,replace_obj,replace_rel,swap_att,swap_obj}
        <split>.json, val2017/
    aro/{vg_relation,vg_attribution}
        visual_genome_{relation,attribution}.json, images/
    whatsup/{controlled_a,controlled_b}
        controlled_{images,clevr}_dataset.json, controlled_{images,clevr}/
    whatsup/{coco_spatial_one,coco_spatial_two,gqa_spatial_one,gqa_spatial_two}
        {coco,vg}_qa_{one,two}_obj.json, val2017/ or vg_images/
    negbench/{coco_mcq,voc_mcq,synthetic_mcq}
        {COCO_val,VOC2007,synthetic}_mcq_llama3.1_rephrased.csv; images by basename in root
    winoground
        examples.jsonl or metadata.jsonl, images/
    clevr_bind/{single_object,two_object,rel}   (option split=train|val|gen, default gen)
        <task>/<split>.csv or rel/<split>.json, <task>/images/...

Common options: ``image_dir`` (where the images are, overriding the default above),
``check_images`` (default True), ``prefix`` (prepended to every candidate, e.g. DCSM's
"An image of "). NegBench also takes ``columns`` (see `negbench.McqColumns`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from components.evaluation.benchmark import Benchmark, BenchmarkError
from components.evaluation.loaders import aro, clevr_bind, negbench, sugarcrepe, whatsup
from components.evaluation.loaders.winoground import load_winoground

Loader = Callable[..., Benchmark]

BENCHMARKS: dict[str, Loader] = {
    **{f"sugarcrepe/{s}": partial(sugarcrepe.load_sugarcrepe, split=s) for s in sugarcrepe.SPLITS},
    **{f"aro/{s}": partial(aro.load_aro, subset=s) for s in aro.FILES},
    **{f"whatsup/{s}": partial(whatsup.load_whatsup, subset=s) for s in whatsup.SUBSETS},
    **{f"negbench/{s}": partial(negbench.load_negbench, subset=s) for s in negbench.FILES},
    "winoground": load_winoground,
    **{
        f"clevr_bind/{t}": partial(clevr_bind.load_clevr_bind, task=t)
        for t in ("single_object", "two_object", "rel")
    },
}


def benchmark_names() -> list[str]:
    """Every name `get_benchmark` accepts, for configs and error messages."""
    return sorted(BENCHMARKS)


def get_benchmark(name: str, root: str | Path, prefix: str = "", **options: Any) -> Benchmark:
    """Load the public benchmark ``name`` from the user's directory ``root``."""
    if name not in BENCHMARKS:
        raise BenchmarkError(f"unknown benchmark {name!r}; known: {benchmark_names()}")
    loader = BENCHMARKS[name]
    if options.get("image_dir") is not None:
        options["image_dir"] = Path(options["image_dir"])
    try:
        inspect.signature(loader).bind(Path(root), **options)
    except TypeError as err:
        raise BenchmarkError(
            f"bad options {sorted(options)} for benchmark {name!r}: {err}"
        ) from err
    benchmark = loader(Path(root), **options)
    return benchmark.map_texts(lambda text: prefix + text) if prefix else benchmark
