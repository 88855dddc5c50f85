"""Zero-shot classification on an ImageFolder-style dataset: does fine-tuning keep it?

OC-CLIP's paper checks that fine-tuning for binding keeps the backbone's zero-shot ImageNet
accuracy (docs/methods/occlip.md 3). This measures exactly that on any folder laid out as
``root/<class folder>/<image>``, with open_clip's prompt templates ("openai": the 80 CLIP
ImageNet prompts; "simple": 18 short ones) averaged per class as in CLIP. Class names come
from a classnames file (one per line, in sorted-folder order) or the folder names.

It scores a model's *backbone* (pooled image and text embeddings), so CLIP, OC-CLIP and DCSM
checkpoints all report the retention of the towers they were built on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES
from PIL import Image

TEMPLATES = {"openai": OPENAI_IMAGENET_TEMPLATES, "simple": SIMPLE_IMAGENET_TEMPLATES}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


@dataclass
class ZeroShotConfig:
    """Where the ImageFolder is and how to prompt it; ``root`` empty = not measured."""

    root: str = ""  # ImageFolder root (one folder per class); empty = skip
    classnames: str = ""  # a file, one class name per line in sorted-folder order
    templates: str = "simple"  # openai | simple
    limit: int = 0  # images per class, 0 = all
    batch_size: int = 32  # images per forward pass


def image_folder(
    root: str | Path, classnames_file: str | Path = "", limit: int = 0
) -> tuple[list[Path], list[int], list[str]]:
    """(image paths, label per image, class names) of ``root/<class>/<image>``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"zero-shot root {root}: not a directory")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if len(folders) < 2:
        raise ValueError(
            f"zero-shot root {root}: needs at least 2 class folders, found {len(folders)}"
        )
    if classnames_file:
        names = [n.strip() for n in Path(classnames_file).read_text().splitlines() if n.strip()]
        if len(names) != len(folders):
            raise ValueError(
                f"{classnames_file}: {len(names)} class names for {len(folders)} class folders "
                f"in {root} (one name per line, in sorted folder order)"
            )
    else:
        names = [f.name.replace("_", " ") for f in folders]
    paths: list[Path] = []
    labels: list[int] = []
    for label, folder in enumerate(folders):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        files = files[:limit] if limit else files
        paths += files
        labels += [label] * len(files)
    return paths, labels, names


@torch.no_grad()
def class_embeddings(backbone, classnames: list[str], templates: str = "simple") -> torch.Tensor:
    """(C, D) unit-norm class embeddings: the mean of the normalised prompt embeddings."""
    if templates not in TEMPLATES:
        raise ValueError(f"templates must be one of {sorted(TEMPLATES)}, got {templates!r}")
    prompts = TEMPLATES[templates]
    device = next(backbone.parameters()).device
    rows = []
    for name in classnames:
        tokens = backbone.tokenize([t(name) for t in prompts]).to(device)
        embedded = F.normalize(backbone.encode_text(tokens).float(), dim=-1)  # (T, D)
        rows.append(F.normalize(embedded.mean(0), dim=-1))
    return torch.stack(rows)


@torch.no_grad()
def zero_shot_accuracy(backbone, config: ZeroShotConfig) -> dict[str, Any]:
    """{"top1", "top5", "images", "classes", "skipped"}; unreadable images are counted skips."""
    paths, labels, names = image_folder(config.root, config.classnames, config.limit)
    was_training = backbone.training
    backbone.eval()
    device = next(backbone.parameters()).device
    classes = class_embeddings(backbone, names, config.templates)  # (C, D)
    top1 = top5 = seen = skipped = 0
    k = min(5, len(names))
    for start in range(0, len(paths), config.batch_size):
        pixels, targets = [], []
        for path, label in zip(
            paths[start : start + config.batch_size],
            labels[start : start + config.batch_size],
            strict=True,
        ):
            try:
                with Image.open(path) as image:
                    pixels.append(backbone.preprocess(image.convert("RGB")))
                targets.append(label)
            except (OSError, ValueError, Image.DecompressionBombError):
                skipped += 1
        if not pixels:
            continue
        images = F.normalize(backbone.encode_image(torch.stack(pixels).to(device)).float(), dim=-1)
        ranked = (images @ classes.T).topk(k, dim=-1).indices.cpu()  # (B, k)
        target = torch.tensor(targets)[:, None]
        top1 += int((ranked[:, :1] == target).sum())
        top5 += int((ranked == target).any(-1).sum())
        seen += len(targets)
    backbone.train(was_training)
    return {
        "top1": top1 / max(1, seen),
        "top5": top5 / max(1, seen),
        "images": seen,
        "classes": len(names),
        "skipped": skipped,
    }


def checkpoints_zero_shot(checkpoints: dict[str, Any], config: ZeroShotConfig) -> dict[str, dict]:
    """``zero_shot_accuracy`` of each checkpoint's backbone, by label."""
    from components.models.checkpoint import load_checkpoint

    return {
        label: zero_shot_accuracy(load_checkpoint(directory).backbone, config)
        for label, directory in checkpoints.items()
    }


def zero_shot_retention(
    backbone_spec: dict[str, Any], checkpoints: dict[str, Any], config: ZeroShotConfig
) -> dict[str, float]:
    """Top-1 of the backbone before fine-tuning and of each trained model's backbone after."""
    from components.models.backbone import Backbone

    top1 = {"before": zero_shot_accuracy(Backbone(**backbone_spec), config)["top1"]}
    after = checkpoints_zero_shot(checkpoints, config)
    return top1 | {name: result["top1"] for name, result in after.items()}
