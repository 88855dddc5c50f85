"""Do a backbone's dense similarity maps carry binding that transfers to held-out objects?

    python benchmarks/dcsm_maps.py [features=DIR] [checkpoint=DIR] [data=DIR] [steps=4000]
        [batch_size=64] [lr=3e-3] [channels=16]

DCSM can only read what its frozen backbone's token x patch maps contain. This trains a
DCSM head pairwise (same image; positive caption vs its hard negative, logistic loss) on a
train_dcsm feature cache, so nothing but the maps decides, and reports pair accuracy on the
training pairs and on ``test_heldout`` swap_att / swap_rel / replace_rel. Training accuracy
near 1 with held-out accuracy near 0.5 means the maps let the head memorise scenes but hold
no binding signal that generalises: a better backbone, not a better head, is what helps.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pyarrow.parquet as pq
import torch
import torch.nn.functional as F

from components.evaluation import load_image
from components.evaluation.synthetic import synthetic_suites
from components.models.dcsm import DCSM
from components.models.dcsm_maps import normalize_maps, replace_functional
from components.models.features import decode_array, feature_files, load_backbone

DATA = "datasets/clevr_pairs-n6000-c0.7-s0-64px"
SUITES = ["swap_att", "swap_rel", "replace_rel"]
Pairs = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def pair_scores(model: DCSM, images: torch.Tensor, texts: torch.Tensor, columns: torch.Tensor):
    """Score image k with text k only: (n, Ni, D) x (n, Lt, D) -> (n,)."""
    maps = torch.einsum("nid,nld->nil", images.float(), texts.float())[None]  # (1, n, Ni, Lt)
    maps = replace_functional(maps, columns, model.signatures)
    return model.head(normalize_maps(maps, model.options["normalize"])[0])


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
    features = options.get("features") or str(next((data / "features").iterdir()))
    steps, batch_size = int(options.get("steps", 4000)), int(options.get("batch_size", 64))
    torch.manual_seed(0)
    model = DCSM(
        load_backbone({"checkpoint": checkpoint}),
        channels=int(options.get("channels", 16)),
        dropout=0.0,
        logit_dropout=False,
    )
    train = cached_pairs(model, pq.read_table(feature_files(features)).to_pylist(), SUITES)
    test = heldout_pairs(model, data / "test_heldout", int(options.get("limit", 300)))
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
    print(f"\n{checkpoint}: {len(train)} training pairs, {steps} steps of {batch_size}\n")
    print("| pairs | accuracy |\n|---|---|")
    print(f"| train (2000 sampled) | {train_accuracy:.3f} |")
    for name, pairs in test.items():
        print(f"| test_heldout {name} | {pair_accuracy(model, pairs):.3f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
