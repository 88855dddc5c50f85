"""Training loop for the controlled dual encoders, with honest model selection.

Differences from the paper's released trainer, both deliberate:
- The checkpoint is chosen on a *validation* set of held-out objects, disjoint from the
  test objects that the final numbers use (the reference selected on test). When a split
  holds fewer than two held-out objects, validation falls back to seen-object scenes.
- Training negatives come from seen objects only unless ``heldout_negatives`` is set (the
  reference let held-out combinations appear as training-time negative queries).

Evaluation ranks *all* objects (and all C*V concept tokens) for every test scene, so the
metric is independent of batch composition and chance is known exactly.
The defaults (lr 2e-3, 5000 steps, batch 128) replace the paper's 3e-5 x 50k x 512 so a
36- or 64-object world trains in about three CPU minutes; warm-up and linear decay follow
the paper. Binding shows up late (seen two-object scenes jump after 2000-3000 steps), so
the step count matters more than the batch size here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from components.data.concepts import coverage_split
from components.data.controlled_world import TokenWorld
from components.models.controlled.controlled import (
    TRAIN_SCALE_CAP,
    ControlledDualEncoder,
    ControlledModelConfig,
    bag_of_concepts_chance,
    concept_labels,
    object_labels,
    recognition_chance,
    recognition_correct,
    soft_target_loss,
)


@dataclass
class ControlledTrainConfig:
    """Optimisation, query sets and evaluation of one controlled run."""

    steps: int = 5000  # optimiser steps
    batch_size: int = 128  # scenes per step
    lr: float = 2e-3  # peak AdamW learning rate
    weight_decay: float = 0.1  # AdamW weight decay
    warmup_fraction: float = 0.1  # share of steps spent warming up
    query_cap: int = 64  # text queries per scene
    heldout_negatives: bool = False  # allow held-out objects in training negatives
    cover_values: bool = True  # every concept value in some seen object (coverage_split)
    val_fraction: float = 0.5  # share of held-out objects used for validation
    eval_every: int = 500  # steps between evaluations
    eval_scenes: int = 512  # scenes per evaluation
    seed: int = 0  # seed of the split, model and data
    device: str = "auto"  # auto | cpu | cuda


@dataclass(frozen=True)
class ObjectSplits:
    """Object ids per role: training scenes, checkpoint selection, reported test."""

    seen: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    val_is_heldout: bool


@dataclass
class TrainResult:
    """Best-on-validation metrics (test numbers at that step) and the eval history."""

    best_step: int
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    state: dict[str, Any] | None = None


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present so the same config runs on a laptop or a GPU node."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def object_splits(
    world: TokenWorld, coverage: float, seed: int, val_fraction: float, cover_values: bool = True
) -> ObjectSplits:
    """Seen objects from `coverage_split`; held-out objects cut into validation and test."""
    split = coverage_split(world.concept_space(), coverage, seed, cover_values)
    seen = torch.tensor(sorted(split.seen))
    heldout = np.random.default_rng(seed + 1).permutation(sorted(split.heldout))
    if len(heldout) < 2:
        test = torch.tensor(heldout if len(heldout) else sorted(split.seen))
        return ObjectSplits(seen, seen, test, val_is_heldout=False)
    num_val = min(len(heldout) - 1, max(1, round(val_fraction * len(heldout))))
    return ObjectSplits(
        seen, torch.tensor(sorted(heldout[:num_val])), torch.tensor(sorted(heldout[num_val:])), True
    )


def training_queries(
    world: TokenWorld,
    objects: torch.Tensor,
    allowed: torch.Tensor,
    cap: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Concept and object query ids for one batch: (B, M) -> (Qc,), (Qo,).

    Concepts: present tokens, capped. Objects: present objects (capped) plus one attribute
    swap per multi-object scene, kept only if ``allowed`` (a (|O|,) bool mask), deduplicated.
    """
    tokens = world.concept_tokens(objects)[objects >= 0].unique()
    tokens = tokens[torch.randperm(len(tokens), generator=generator)[:cap]]
    present = objects[objects >= 0].unique()
    present = present[torch.randperm(len(present), generator=generator)[:cap]]
    swaps = world.attribute_swaps(objects, generator)
    swaps = swaps[allowed[swaps]]
    return tokens, torch.cat([present, swaps]).unique()


@torch.no_grad()
def evaluate(
    model: ControlledDualEncoder, pool: torch.Tensor, num_scenes: int, seed: int
) -> dict[str, float]:
    """Strict concept and object accuracy on fresh scenes drawn from ``pool``.

    The candidates are every object and every concept token of the world; the same seed
    gives the same scenes at every evaluation, so validation curves compare like with like.
    """
    world, device = model.world, next(model.parameters()).device
    model.eval()
    objects = world.sample_scenes(pool, num_scenes, torch.Generator().manual_seed(seed))
    all_objects = torch.arange(world.num_objects)
    all_tokens = torch.arange(world.num_concept_tokens)
    num_objects = (objects >= 0).sum(1).to(device)  # (B,)
    scene_emb = model.encode_scenes(objects)
    metrics: dict[str, float] = {}
    for task, queries, tokens, labels in (
        ("object", all_objects, world.object_queries(all_objects), object_labels),
        ("concept", all_tokens, world.concept_queries(all_tokens), None),
    ):
        target = (
            labels(objects, queries) if labels else concept_labels(world, objects, queries)
        ).to(device)
        logits = model.logits(scene_emb, model.query_encoder(tokens.to(device)), TRAIN_SCALE_CAP)
        correct = recognition_correct(logits, target).float()  # (B,), every scene has a positive
        metrics[f"{task}_acc"] = correct.mean().item()
        for count in range(1, world.max_objects + 1):  # binding shows in multi-object scenes
            metrics[f"{task}_acc_{count}obj"] = correct[num_objects == count].mean().item()
        metrics[f"{task}_chance"] = recognition_chance(target.cpu())
    boc = bag_of_concepts_chance(world, objects)  # the no-binding reference for objects
    metrics["object_boc_chance"] = boc.mean().item()
    for count in range(1, world.max_objects + 1):
        metrics[f"object_boc_chance_{count}obj"] = boc[num_objects.cpu() == count].mean().item()
    model.train()
    return metrics


def _optimizer(
    model: ControlledDualEncoder, config: ControlledTrainConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with decay on matrices only, 10% linear warm-up then linear decay to 0."""
    decay = [p for p in model.parameters() if p.dim() > 1]
    rest = [p for p in model.parameters() if p.dim() <= 1]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": rest, "weight_decay": 0},
        ],
        lr=config.lr,
    )
    warmup = max(1, int(config.warmup_fraction * config.steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (config.steps - step) / max(1, config.steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_controlled(
    world: TokenWorld,
    coverage: float,
    model_config: ControlledModelConfig,
    config: ControlledTrainConfig,
    on_eval: Callable[[dict[str, float], dict[str, Any]], None] | None = None,
    resume_state: dict[str, Any] | None = None,
) -> TrainResult:
    """Train one dual encoder on scenes of seen objects; select on val, report test.

    ``on_eval(metrics, state)`` runs after each evaluation (Tune reports and checkpoints
    from it); ``resume_state`` is such a state, to continue an interrupted run exactly.
    """
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    splits = object_splits(world, coverage, config.seed, config.val_fraction, config.cover_values)
    allowed = torch.zeros(world.num_objects, dtype=torch.bool)
    allowed[splits.seen] = True
    if config.heldout_negatives:
        allowed[:] = True
    model = ControlledDualEncoder(world, model_config).to(device)
    optimizer, scheduler = _optimizer(model, config)
    generator = torch.Generator().manual_seed(config.seed)
    start, best, history = 0, {"val_object_acc": -1.0, "step": 0}, []
    best_state = copy.deepcopy(model.state_dict())
    if resume_state is not None:
        model.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        generator.set_state(resume_state["generator"])
        start, best, history = resume_state["step"], resume_state["best"], resume_state["history"]
        best_state = resume_state["best_model"]

    for step in range(start + 1, config.steps + 1):
        objects = world.sample_scenes(splits.seen, config.batch_size, generator)  # (B, M)
        tokens, queries = training_queries(world, objects, allowed, config.query_cap, generator)
        scene_emb = model.encode_scenes(objects)
        loss = soft_target_loss(
            model.logits(
                scene_emb,
                model.query_encoder(world.concept_queries(tokens).to(device)),
                TRAIN_SCALE_CAP,
            ),
            concept_labels(world, objects, tokens).to(device),
        ) + soft_target_loss(
            model.logits(
                scene_emb,
                model.query_encoder(world.object_queries(queries).to(device)),
                TRAIN_SCALE_CAP,
            ),
            object_labels(objects, queries).to(device),
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()

        if step % config.eval_every == 0 or step == config.steps:
            metrics: dict[str, float] = {"step": step, "train_loss": loss.item()}
            for name, pool, offset in (
                ("seen", splits.seen, 1),
                ("val", splits.val, 2),
                ("test", splits.test, 3),
            ):
                scores = evaluate(model, pool, config.eval_scenes, config.seed + 1000 * offset)
                metrics.update({f"{name}_{key}": value for key, value in scores.items()})
            metrics["temperature"] = model.log_temperature.exp().item()
            if metrics["val_object_acc"] >= best["val_object_acc"]:
                best = dict(metrics)
                best_state = copy.deepcopy(model.state_dict())
            history.append(metrics)
            if on_eval is not None:
                state = {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "generator": generator.get_state(),
                    "step": step,
                    "best": best,
                    "history": history,
                    "best_model": best_state,
                }
                on_eval(metrics, state)
    return TrainResult(int(best["step"]), best, history, best_state)
