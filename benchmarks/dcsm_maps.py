"""Do a backbone's dense similarity maps carry binding that transfers to held-out objects?

    python benchmarks/dcsm_maps.py [features=DIR] [checkpoint=DIR] [data=DIR] [steps=4000]
        [batch_size=64] [lr=3e-3] [channels=16] [split=val_heldout]

DCSM can only read what its frozen backbone's token x patch maps contain. This trains a
DCSM head pairwise (same image; positive caption vs its hard negative, logistic loss) on a
train_dcsm feature cache, so nothing but the maps decides, and reports pair accuracy on the
training pairs and on held-out swap_att / swap_rel / replace_rel of ``split``: val_heldout
by default, since a benchmark that informs a choice must not read a final split. Training accuracy
near 1 with held-out accuracy near 0.5 means the maps let the head memorise scenes but hold
no binding signal that generalises: a better backbone, not a better head, is what helps.

It first measures whether the maps are local at all: for every colour and shape word of a
held-out two-object caption, is the word's column higher, on average, over its own object's
patches (the rendered bounding box) than over the other object's? 0.5 is a map with no
word-to-region alignment, below 0.5 one that points at the wrong object.
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import random
import sys
from pathlib import Path

import pyarrow.parquet as pq
import torch
import torch.nn.functional as F

from components.data.shards import read_shards
from components.evaluation import load_image
from components.evaluation.synthetic import synthetic_suites
from components.models.backbone import Backbone
from components.models.batching import decode_image
from components.models.dcsm.dcsm import DCSM
from components.models.dcsm.dcsm_maps import word_spans
from components.models.dense_tokens import decode_array, dense_image_tokens, dense_text_tokens
from components.models.loading import load_backbone
from components.training.feature_cache import feature_files

DATA = "datasets/clevr_pairs-n6000-c0.7-s0-64px"
SUITES = ["swap_att", "swap_rel", "replace_rel"]
Pairs = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def box_patches(box: list[float], grid: int) -> torch.Tensor:
    """(grid * grid,) bool: patches whose centre lies in a normalised (x0, y0, x1, y1) box."""
    centres = (torch.arange(grid) + 0.5) / grid
    inside_x = (centres >= box[0]) & (centres <= box[2])
    inside_y = (centres >= box[1]) & (centres <= box[3])
    return (inside_y[:, None] & inside_x[None, :]).flatten()


def word_localisation(backbone: Backbone, split: Path, limit: int) -> dict[str, float]:
    """Share of colour / shape words whose map column favours their own object's patches."""
    rows = read_shards(split, columns=["image", "caption", "objects"]).to_pylist()
    rows = [r for r in rows if len(r["objects"]) == 2][:limit]
    grid = backbone.model.visual.grid_size[0]
    hits: dict[str, list[bool]] = {"colour": [], "shape": []}
    for row in rows:
        pixels = backbone.preprocess(decode_image(row["image"]))[None]
        patches = dense_image_tokens(backbone, pixels)[0, backbone.num_prefix_tokens :]
        words = dense_text_tokens(backbone, backbone.tokenize([row["caption"]]))[0][0]
        maps = patches @ words.T  # (N, L)
        first = {}
        for word, start, _ in word_spans(backbone.tokenizer, row["caption"]):
            first.setdefault(word, start)
        regions = [box_patches(o["bbox"], grid) for o in row["objects"]]
        for k, obj in enumerate(row["objects"]):
            for kind, word in zip(("colour", "shape"), obj["values"], strict=True):
                column = first.get(word)
                own, other = regions[k], regions[1 - k]
                if column is None or not own.any() or not other.any():
                    continue
                hits[kind].append(bool(maps[own, column].mean() > maps[other, column].mean()))
    return {kind: sum(h) / max(len(h), 1) for kind, h in hits.items()}


def pair_scores(model: DCSM, images: torch.Tensor, texts: torch.Tensor, columns: torch.Tensor):
    """Score image k with text k only: (n, Ni, D) x (n, Lt, D) -> (n,)."""
    diagonal = torch.arange(len(images))
    return model.score_pairs(images, texts, columns, torch.stack([diagonal, diagonal], 1))


def pair_accuracy(model: DCSM, pairs: Pairs) -> float:
    images, positives, negatives, pos_columns, neg_columns = pairs
    with torch.no_grad():
        better = pair_scores(model, images, positives, pos_columns) > pair_scores(
            model, images, negatives, neg_columns
        )
    return better.float().mean().item()


def cached_pairs(model: DCSM, rows: list[dict], kinds: list[str]) -> list[tuple[dict, dict]]:
    """(row, negative) for every caption negative of ``kinds`` in a feature cache."""
    return [(r, n) for r in rows for n in r["negatives"] or [] if n["kind"] in kinds]


def stack_pairs(model: DCSM, pairs: list[tuple[dict, dict]]) -> Pairs:
    ni, lt, d = *model.map_size, model.backbone.embed_dim

    def tokens(blob: bytes, length: int) -> torch.Tensor:
        return torch.from_numpy(decode_array(blob, (length, d)).copy())

    return (
        torch.stack([tokens(r["image_tokens"], ni) for r, _ in pairs]),
        torch.stack([tokens(r["caption_tokens"], lt) for r, _ in pairs]),
        torch.stack([tokens(n["caption_tokens"], lt) for _, n in pairs]),
        model.functional([r["caption"] for r, _ in pairs]),
        model.functional([n["caption"] for _, n in pairs]),
    )


def heldout_pairs(model: DCSM, split: Path, limit: int) -> dict[str, Pairs]:
    """Fresh dense features of each suite's (image, positive, negative)."""
    out = {}
    for name, bench in synthetic_suites(split, SUITES, limit).items():
        images = [load_image(item.images[0]) for item in bench.items]
        positives = [item.texts[item.correct_text[0]] for item in bench.items]
        negatives = [item.texts[1 - item.correct_text[0]] for item in bench.items]
        image_tokens, text_tokens = model.dense_features(images, positives + negatives)
        n = len(images)
        out[name] = (
            image_tokens,
            text_tokens[:n],
            text_tokens[n:],
            model.functional(positives),
            model.functional(negatives),
        )
    return out


def main(argv: list[str]) -> None:
    options = dict(arg.split("=", 1) for arg in argv)
    data = Path(options.get("data", DATA))
    checkpoint = options.get("checkpoint", "outputs/train_occlip/clip/checkpoint")
    features = options.get("features")
    if not features:
        caches = sorted((data / "features").iterdir())
        if len(caches) != 1:
            raise SystemExit(f"pass features=DIR, the cache of {checkpoint}; found {caches}")
        features = str(caches[0])
    steps, batch_size = int(options.get("steps", 4000)), int(options.get("batch_size", 64))
    torch.manual_seed(0)
    model = DCSM(
        load_backbone({"checkpoint": checkpoint}),
        channels=int(options.get("channels", 16)),
        dropout=0.0,
        logit_dropout=False,
    )
    train = cached_pairs(model, pq.read_table(feature_files(features)).to_pylist(), SUITES)
    limit = int(options.get("limit", 300))
    split = options.get("split", "val_heldout")
    local = word_localisation(model.backbone, data / split, limit)
    test = heldout_pairs(model, data / split, limit)
    optimizer = torch.optim.Adam(model.head.parameters(), lr=float(options.get("lr", 3e-3)))
    rng = random.Random(0)
    model.head.train()
    for _ in range(steps):
        images, positives, negatives, pos_columns, neg_columns = stack_pairs(
            model, rng.sample(train, batch_size)
        )
        margin = pair_scores(model, images, positives, pos_columns) - pair_scores(
            model, images, negatives, neg_columns
        )
        loss = F.softplus(-margin).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.head.eval()
    train_accuracy = pair_accuracy(model, stack_pairs(model, rng.sample(train, 2000)))
    print(f"\n{checkpoint}: words on their own object ({split}, chance 0.5)\n")
    print("| word | localised |\n|---|---|")
    for kind, share in local.items():
        print(f"| {kind} | {share:.3f} |")
    print(f"\n{len(train)} training pairs, {steps} steps of {batch_size}\n")
    print("| pairs | accuracy |\n|---|---|")
    print(f"| train (2000 sampled) | {train_accuracy:.3f} |")
    for name, pairs in test.items():
        print(f"| {split} {name} | {pair_accuracy(model, pairs):.3f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
