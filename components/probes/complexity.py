"""Binding-function complexity (arXiv 2605.31503, Sec. "complexity of the binding function").

A binding function maps a scene (o_1, .., o_K) to an embedding. We fit small families of
approximators g(o_1, .., o_K) -> R^D on scenes built only from *seen* objects, then feed
g's predictions for scenes of *held-out* objects to frozen recognition probes trained on
the real embeddings. If no family of modest size lets the probes recognise held-out
objects, the binding function is complex relative to those families. Every family reads
the same slot-specific concept tables E[k, c] (V_c, H):
- ``mlp``: MLP over the concatenated table rows (ReLU, one hidden layer of ``width``);
- ``additive``: sum_k sum_c u[k, c];
- ``object_product``: W (sum_k prod_c v[k, c]) + b;
- ``global_product``: W (prod_k prod_c v[k, c]) + b;
- ``sum_product``: W [prod_k prod_c v[k, c] ; sum_k sum_c u[k, c]] + b.
Fits are full-batch MSE on the raw embeddings with Adam and cosine annealing, as in the
paper (there 4000 epochs; fewer suffice for the small worlds we test).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from components.models.controlled.controlled import ControlledDualEncoder
from components.probes.additive import additive_decomposition, probe_split
from components.probes.recognition import RecognitionProbe, object_values, train_linear_probe

FAMILIES = ("mlp", "additive", "object_product", "global_product", "sum_product")


@dataclass
class ComplexityConfig:
    """Which approximators to fit and how long; widths apply to the ``mlp`` family."""

    families: tuple[str, ...] = FAMILIES  # approximator families fitted to the binding function
    mlp_widths: tuple[int, ...] = (64, 256, 1024)  # hidden widths of the mlp family
    table_dim: int = 64  # width of the per-value lookup tables
    epochs: int = 1000  # epochs fitting each approximator
    lr: float = 1e-2  # Adam learning rate
    probe_epochs: int = 1000  # epochs of the linear probes on the fitted function
    probe_train_fraction: float = 0.4  # of held-out-object scenes, for the default probe
    seed: int = 0  # seed of initialisation


class Approximator(nn.Module):
    """g(values) for one family: (N, K, C) concept values -> (N, D) predicted embedding."""

    def __init__(
        self,
        family: str,
        value_sizes: Sequence[int],
        slots: int,
        dim: int,
        table_dim: int,
        width: int,
    ) -> None:
        super().__init__()
        if family not in FAMILIES:
            raise ValueError(f"unknown approximator family {family!r}; expected one of {FAMILIES}")
        self.family = family
        table_width = dim if family == "additive" else table_dim

        def tables(init_mean: float) -> nn.ModuleList:
            rows = nn.ModuleList(
                nn.Embedding(size, table_width) for _ in range(slots) for size in value_sizes
            )
            for table in rows:  # products start near 1 so a product of K*C rows stays O(1)
                nn.init.normal_(table.weight, mean=init_mean, std=0.5 if init_mean else 0.1)
            return rows

        self.sum_tables = tables(0.0) if family in ("mlp", "additive", "sum_product") else None
        self.product_tables = tables(1.0) if "product" in family else None
        self.num_concepts = len(value_sizes)
        if family == "mlp":
            concat = slots * len(value_sizes) * table_dim
            self.head = nn.Sequential(nn.Linear(concat, width), nn.ReLU(), nn.Linear(width, dim))
        elif family == "sum_product":
            self.head = nn.Linear(2 * table_dim, dim)
        elif family != "additive":
            self.head = nn.Linear(table_dim, dim)

    def _rows(self, tables: nn.ModuleList, values: torch.Tensor) -> torch.Tensor:
        """(N, K, C) -> (N, K, C, H): each slot's and concept's own table row."""
        flat = values.flatten(1)  # (N, K*C)
        rows = torch.stack([table(flat[:, i]) for i, table in enumerate(tables)], dim=1)
        return rows.view(*values.shape, -1)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        if self.family == "mlp":
            return self.head(self._rows(self.sum_tables, values).flatten(1))
        if self.family == "additive":
            return self._rows(self.sum_tables, values).sum((1, 2))
        product = self._rows(self.product_tables, values)  # (N, K, C, H)
        if self.family == "object_product":
            return self.head(product.prod(2).sum(1))
        global_product = product.prod(2).prod(1)  # (N, H)
        if self.family == "global_product":
            return self.head(global_product)
        additive = self._rows(self.sum_tables, values).sum((1, 2))
        return self.head(torch.cat([global_product, additive], dim=1))


def fit_approximator(
    model: Approximator, values: torch.Tensor, targets: torch.Tensor, epochs: int, lr: float
) -> Approximator:
    """Full-batch MSE fit with Adam and cosine annealing (the paper's settings)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    for _ in range(epochs):
        loss = ((model(values) - targets) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return model


def r2_score(predicted: torch.Tensor, targets: torch.Tensor, mean: torch.Tensor) -> float:
    """Pooled R^2 with SS_tot around a given (global) mean, as the paper reports it."""
    return 1.0 - float(((targets - predicted) ** 2).sum() / ((targets - mean) ** 2).sum())


def scene_groups(object_indices: np.ndarray, seen_objects: Sequence[int]) -> dict[str, np.ndarray]:
    """Row masks: every slot seen (train), every slot held out (test), the rest (mixed)."""
    seen = np.isin(object_indices, np.asarray(list(seen_objects)))
    return {"train": seen.all(1), "test": (~seen).all(1), "mixed": seen.any(1) & ~seen.all(1)}


def complexity_sweep(
    embeddings: np.ndarray | torch.Tensor,
    object_indices: np.ndarray,
    value_sizes: Sequence[int],
    seen_objects: Sequence[int],
    config: ComplexityConfig,
    probe: RecognitionProbe | None = None,
) -> dict[str, dict[str, float]]:
    """Fit every approximator on train-object scenes; score held-out scenes through probes.

    ``probe`` defaults to linear probes trained on the real embeddings of every scene except
    the scored ones: the held-out-object scenes are split ``probe_train_fraction`` /
    rest, the probe learns the held-out objects from the first part (and all other
    scenes), and everything is scored on the rest only, so no score is on a scene the
    probe was trained on. The approximators never see held-out-object scenes.
    Returns {approximator name: {r2_train, r2_test, concept_acc, object_acc}}, plus a
    ``real`` row with the probes' accuracy on the true held-out embeddings.
    """
    torch.manual_seed(config.seed)
    object_indices = np.asarray(object_indices)
    emb = torch.as_tensor(np.asarray(embeddings), dtype=torch.float32)
    groups = scene_groups(object_indices, seen_objects)
    if not groups["train"].any() or not groups["test"].any():
        raise ValueError("complexity_sweep needs scenes of only seen and of only held-out objects")
    scored = groups["test"].copy()
    if probe is None:
        heldout = np.flatnonzero(groups["test"])
        probe_part, scored_part = probe_split(
            len(heldout), config.probe_train_fraction, config.seed
        )
        scored = np.zeros(len(emb), bool)
        scored[heldout[scored_part]] = True
        probe = train_linear_probe(
            emb[~scored],
            object_indices[~scored],
            value_sizes,
            config.probe_epochs,
            seed=config.seed,
        )
    values = torch.as_tensor(object_values(object_indices, value_sizes), dtype=torch.long)
    mean = emb.mean(0)
    results = {"real": probe.accuracy(emb[scored], object_indices[scored])}
    for family in config.families:
        for width in config.mlp_widths if family == "mlp" else (0,):
            name = f"mlp{width}" if family == "mlp" else family
            model = Approximator(
                family, value_sizes, object_indices.shape[1], emb.shape[1], config.table_dim, width
            )
            train = torch.as_tensor(groups["train"])
            fit_approximator(model, values[train], emb[train], config.epochs, config.lr)
            with torch.no_grad():
                predicted = model(values)
            test = torch.as_tensor(scored)
            results[name] = {
                "r2_train": r2_score(predicted[train], emb[train], mean),
                "r2_test": r2_score(predicted[test], emb[test], mean),
                **probe.accuracy(predicted[test], object_indices[scored]),
            }
    return results


@torch.no_grad()
def controlled_scene_embeddings(
    model: ControlledDualEncoder, max_objects: int = 400
) -> tuple[np.ndarray, np.ndarray, RecognitionProbe]:
    """Embeddings of every ordered 2-object scene and the model's own query probes.

    The probes are the query encoder's rows, as in the paper: concept rows are
    q([token, EOS]), object rows q([SOO .. EOO, EOS]), scored by cosine. Objects are
    capped at ``max_objects`` (the paper's 400) to bound the |O|^2 scenes.
    Returns (N, d_out) embeddings, (N, 2) object ids and the probe.
    """
    world, device = model.world, next(model.parameters()).device
    model.eval()
    objects = torch.arange(min(world.num_objects, max_objects))
    pairs = torch.cartesian_prod(objects, objects)  # (N, 2)
    slots = torch.full((len(pairs), world.max_objects), -1, dtype=torch.long)
    slots[:, :2] = pairs
    embeddings = torch.cat([model.encode_scenes(chunk).cpu() for chunk in slots.split(4096)])
    concept_rows = model.query_encoder(
        world.concept_queries(torch.arange(world.num_concept_tokens)).to(device)
    ).cpu()
    probe = RecognitionProbe(
        [F.normalize(rows, dim=-1) for rows in concept_rows.split(world.num_values)],
        F.normalize(model.query_encoder(world.object_queries(objects).to(device)).cpu(), dim=-1),
        normalize=True,
    )
    return embeddings.numpy(), pairs.numpy(), probe


def controlled_binding_function(
    model: ControlledDualEncoder, seen_objects: Sequence[int], config: ComplexityConfig
) -> dict[str, float]:
    """Additive R^2 and the complexity sweep of a controlled model, as flat metrics.

    The paper's third claim is that the models which generalise binding have simple binding
    functions; reporting these next to held-out accuracy per trial lets a coverage sweep
    test it. Keys: ``level1_r2``, ``level2_r2`` and ``{approximator}_{metric}`` (``real``
    is the model's own held-out embeddings through the same probes).
    """
    embeddings, pairs, probe = controlled_scene_embeddings(model)
    sizes = [model.world.num_values] * model.world.num_concepts
    metrics = additive_decomposition(embeddings, pairs, sizes)
    for name, scores in complexity_sweep(
        embeddings, pairs, sizes, seen_objects, config, probe
    ).items():
        metrics.update({f"{name}_{key}": value for key, value in scores.items()})
    return metrics
