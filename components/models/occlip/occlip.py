"""OC-CLIP: object-centric binding in contrastive pretraining (arXiv 2502.14113; docs/methods/occlip.md).

A caption is a scene graph: M node phrases ("red cube") and P relations ("left of", s, o).
Each phrase is encoded on its own by the backbone's text tower (short context, EOT pooled,
projected): N (T, M, D), R (T, P, D). The image gives patch tokens (I, L, D), CLS excluded.
The binding module turns nodes into slots for every (image, graph) pair and the structured
score compares slots with the graph (occlip_binding.py). Training loss: L = L_itc + L_rel,
with L_itc symmetric InfoNCE over the B x B structured scores and L_rel the local
perturbed-graph loss (losses.py).

Negated objects ("a cube and no sphere") are dropped from the nodes, with every relation that
touches them: a "no sphere" node has nothing in the image to bind to, and OC-CLIP has no
term for absence. A graph left with no node falls back to one node holding the whole caption
(docs/methods/occlip.md 2), or scores 0 when no caption is known.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

import torch
from PIL import Image
from torch import nn

from components.models.backbone import Backbone
from components.models.batching import CollatedModel, ImageTextCollator, row_pixels, trim_padding
from components.models.losses import (
    local_graph_loss,
    logit_scale_value,
    relation_negatives,
    symmetric_infonce,
)
from components.models.occlip.occlip_binding import BindingModule, StructuredScore
from components.models.occlip.occlip_options import OcclipOptions
from components.models.param_groups import split_param_groups
from components.parsing.scene_graph import SceneGraph

Phrases = tuple[list[str], list[tuple[int, str, int]]]  # node phrases, (s, predicate, o)
NEGATION_RULES = ("subtract", "ignore")


def graph_phrases(graph: SceneGraph, caption: str | None = None) -> Phrases:
    """Node phrases and re-indexed relations of a graph, negated objects removed."""
    keep = [i for i, obj in enumerate(graph.objects) if not obj.negated]
    new_index = {old: new for new, old in enumerate(keep)}
    nodes = [graph.objects[i].phrase() for i in keep]
    relations = [
        (new_index[r.subject], r.predicate, new_index[r.object])
        for r in graph.relations
        if r.subject in new_index and r.object in new_index
    ]
    if not nodes and caption and caption.strip():
        nodes = [caption]
    return nodes, relations


class GraphCollator(ImageTextCollator):
    """Shard rows -> OC-CLIP batch tensors. Plain state (tokenizer, transform): picklable."""

    def graphs(self, graphs: Sequence[Phrases]) -> dict[str, torch.Tensor]:
        """Pad node/relation phrases to the batch's max M (>= 1) and P, with masks."""
        B = len(graphs)
        M = max([1, *(len(nodes) for nodes, _ in graphs)])
        P = max([0, *(len(rels) for _, rels in graphs)])
        L = self.context_length
        out = {
            "node_tokens": torch.zeros(B, M, L, dtype=torch.long),
            "node_mask": torch.zeros(B, M, dtype=torch.bool),
            "rel_tokens": torch.zeros(B, P, L, dtype=torch.long),
            "rel_mask": torch.zeros(B, P, dtype=torch.bool),
            "rel_subject": torch.zeros(B, P, dtype=torch.long),
            "rel_object": torch.zeros(B, P, dtype=torch.long),
        }
        # One tokenizer call per batch for all nodes and one for all relations, scattered
        # into the padded (B, M|P, L) tensors by (graph, position) index.
        nodes = [
            (b, i, phrase) for b, (names, _) in enumerate(graphs) for i, phrase in enumerate(names)
        ]
        if nodes:
            b, i = torch.tensor([(b, i) for b, i, _ in nodes]).T
            out["node_tokens"][b, i] = self.tokenizer([n for _, _, n in nodes], context_length=L)
            out["node_mask"][b, i] = True
        rels = [(b, j, rel) for b, (_, edges) in enumerate(graphs) for j, rel in enumerate(edges)]
        if rels:
            b, j = torch.tensor([(b, j) for b, j, _ in rels]).T
            out["rel_tokens"][b, j] = self.tokenizer([r[1] for _, _, r in rels], context_length=L)
            out["rel_mask"][b, j] = True
            out["rel_subject"][b, j] = torch.tensor([r[0] for _, _, r in rels])
            out["rel_object"][b, j] = torch.tensor([r[2] for _, _, r in rels])
        return out

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        graphs = []
        for i, row in enumerate(rows):
            graph = row.get("graph")
            if graph is None:
                raise ValueError(f"row {i} (id={row.get('id')!r}) has no 'graph'; parse it first")
            if isinstance(graph, str):
                graph = SceneGraph.from_json(graph)
            elif isinstance(graph, dict):
                graph = SceneGraph.from_dict(graph)
            graphs.append(graph_phrases(graph, row.get("caption")))
        return {"images": row_pixels(rows, self.transform), **self.graphs(graphs)}


class OCCLIP(CollatedModel, nn.Module):
    """Backbone + binding module + structured score; a Scorer and a trainable model."""

    name = "occlip"

    def __init__(
        self, backbone: Backbone, options: OcclipOptions | None = None, parser: Any = None
    ) -> None:
        super().__init__()
        self.backbone = backbone
        D = backbone.embed_dim
        options = OcclipOptions() if options is None else options
        if options.negation not in NEGATION_RULES:
            raise ValueError(f"negation must be one of {NEGATION_RULES}, got {options.negation!r}")
        # What the model is built with: the backbone fills binding_dim and caps the context.
        options = replace(
            options,
            binding_dim=options.binding_dim or D,
            phrase_context_length=min(options.phrase_context_length, backbone.context_length),
        )
        self.options = asdict(options)
        self.binding = BindingModule(
            D,
            D,
            options.binding_dim,
            options.depth,
            options.heads,
            options.num_default_tokens,
            options.competitive,
            options.patch_positions,
            options.query_residual,
        )
        self.scorer = StructuredScore(
            D, options.binding_dim, options.d_obj, options.d_rel, options.relation_head
        )
        self.logit_scale = nn.Parameter(torch.tensor(math.log(options.init_logit_scale)))
        # open_clip's own temperature is not used here; frozen so DDP sees no unused parameter.
        for extra in ("logit_scale", "logit_bias"):
            param = getattr(backbone.model, extra, None)
            if isinstance(param, nn.Parameter):
                param.requires_grad_(False)
        self.parser = parser
        self.collator = GraphCollator(
            backbone.tokenizer,
            backbone.make_transform(train=options.train_augment),
            options.phrase_context_length,
        )
        self.eval_collator = GraphCollator(
            backbone.tokenizer, backbone.preprocess, options.phrase_context_length
        )

    @property
    def config(self) -> dict[str, Any]:
        return {"backbone": dict(self.backbone.config), **self.options}

    # -- encoders ---------------------------------------------------------------------
    def encode_phrases(self, *sets: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
        """(tokens (B, K, Lc), mask (B, K)) per set -> phrase embeddings (B, K, D) per set,
        zeros where masked.

        Only real phrases are encoded, each distinct one once ("left of" recurs in a batch),
        and all sets (nodes, relations) in one text-tower call: one backward pass through
        the 49,408-row token embedding instead of one per set.
        """
        D = self.backbone.embed_dim
        flats = [tokens[mask] for tokens, mask in sets]  # (n_s, Lc) each
        flat = torch.cat(flats)
        if flat.shape[0] == 0:
            return [self.scorer.alpha_raw.new_zeros(*mask.shape, D) for _, mask in sets]
        unique, inverse = torch.unique(
            trim_padding(flat, self.backbone.pad_id), dim=0, return_inverse=True
        )
        embedded = self.backbone.encode_text(unique)[inverse].split([len(f) for f in flats])
        return [
            part.new_zeros(*mask.shape, D).index_put(mask.nonzero(as_tuple=True), part)
            for part, (_, mask) in zip(embedded, sets, strict=True)
        ]

    def encode_graphs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Batch tensors -> N (T, M, D), R (T, P, D) plus masks and edge indices."""
        nodes, relations = self.encode_phrases(
            (batch["node_tokens"], batch["node_mask"]), (batch["rel_tokens"], batch["rel_mask"])
        )
        return {
            "nodes": nodes,
            "node_mask": batch["node_mask"],
            "relations": relations,
            "rel_mask": batch["rel_mask"],
            "rel_subject": batch["rel_subject"],
            "rel_object": batch["rel_object"],
        }

    def encode_patches(self, images: torch.Tensor) -> torch.Tensor:
        """images (I, 3, H, W) -> projected patch tokens (I, L, D), class token excluded."""
        _, tokens = self.backbone.image_tokens(images, layer=self.options["image_layer"])
        return tokens[:, self.backbone.num_prefix_tokens :]

    # -- scores -----------------------------------------------------------------------
    def pair_scores(
        self, patches: torch.Tensor, graphs: dict[str, torch.Tensor], diagonal_slots: bool = False
    ):
        """S(x_i, G_j) for every image i and graph j: (I, T) float32.

        Binding runs for all I x T pairs, chunked over graphs (``graph_chunk``) to bound
        memory. With ``diagonal_slots`` (I == T) also returns the slots of the matched pairs
        (T, M, d), which L_rel reuses since perturbed graphs keep the same nodes.
        """
        T = graphs["nodes"].shape[0]
        chunk = self.options["graph_chunk"] or T
        scores, diagonal = [], []
        for t0 in range(0, T, chunk):
            part = {key: value[t0 : t0 + chunk] for key, value in graphs.items()}
            slots = self.binding(part["nodes"], part["node_mask"], patches)  # (I, Tc, M, d)
            object_cos = self.scorer.object_cos(part["nodes"], slots)  # (I, Tc, M)
            relation_cos = self.scorer.relation_cos(
                part["relations"], slots, part["rel_subject"], part["rel_object"]
            )  # (I, Tc, P)
            scores.append(
                self.scorer.combine(object_cos, part["node_mask"], relation_cos, part["rel_mask"])
            )
            if diagonal_slots:
                tc = slots.shape[1]
                rows = torch.arange(t0, t0 + tc, device=slots.device)
                diagonal.append(slots[rows, torch.arange(tc, device=slots.device)])
        scores = torch.cat(scores, dim=1)  # (I, T)
        if diagonal_slots:
            return scores, torch.cat(diagonal, dim=0)
        return scores

    def perturbed_scores(
        self,
        graphs: dict[str, torch.Tensor],
        slots: torch.Tensor,
        subject: torch.Tensor,
        object: torch.Tensor,
    ) -> torch.Tensor:
        """S(x_b, G~_bk) for perturbed edge lists (B, K, P), reusing the matched slots (B, M, d)."""
        object_cos = self.scorer.object_cos(graphs["nodes"], slots)[:, None]  # (B, 1, M)
        relation_cos = self.scorer.relation_cos(
            graphs["relations"][:, None], slots[:, None], subject, object
        )  # (B, K, P)
        return self.scorer.combine(
            object_cos, graphs["node_mask"][:, None], relation_cos, graphs["rel_mask"][:, None]
        )

    # -- training API -----------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """L = itc_weight * L_itc + rel_weight * L_rel, and its parts as floats."""
        device = self.logit_scale.device
        batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
        patches = self.encode_patches(batch["images"])  # (B, L, D)
        graphs = self.encode_graphs(batch)
        scores, slots = self.pair_scores(patches, graphs, diagonal_slots=True)  # (B, B), (B, M, d)
        scale = logit_scale_value(self.logit_scale)
        itc = symmetric_infonce(scale * scores)
        subject, object, valid = relation_negatives(
            graphs["rel_subject"],
            graphs["rel_object"],
            graphs["rel_mask"],
            graphs["node_mask"],
            self.options["rel_negatives"],
        )
        negatives = self.perturbed_scores(graphs, slots, subject, object)  # (B, K)
        rel = local_graph_loss(scores.diagonal(), negatives, valid, scale)
        total = self.options["itc_weight"] * itc + self.options["rel_weight"] * rel
        parts = {
            "loss": total.detach(),
            "itc": itc.detach(),
            "rel": rel.detach(),
            "logit_scale": scale.detach(),
            "alpha": self.scorer.alpha.detach(),
            "beta": self.scorer.beta.detach(),
        }
        return total, {key: float(value) for key, value in parts.items()}

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Same as ``loss``: lets a DDP wrapper's forward (and its gradient hooks) run it."""
        return self.loss(batch)

    def param_groups(self, backbone_lr: float, head_lr: float, weight_decay: float) -> list[dict]:
        """Backbone at backbone_lr, binding/score heads at head_lr; no decay on 1-D params."""
        return split_param_groups(self, backbone_lr, head_lr, weight_decay)

    # -- Scorer -----------------------------------------------------------------------
    def _graphs(self, texts: Sequence[str | SceneGraph]) -> list[SceneGraph]:
        captions = [t for t in texts if isinstance(t, str)]
        parsed: dict[str, SceneGraph] = {}
        if captions:
            if self.parser is None:
                raise ValueError(
                    "OC-CLIP scores scene graphs: got caption strings but no parser; pass "
                    "SceneGraphs or set model.parser (anything with parse_batch(list[str]))"
                )
            unique = list(dict.fromkeys(captions))
            parsed = dict(zip(unique, self.parser.parse_batch(unique), strict=True))
        return [parsed[t] if isinstance(t, str) else t for t in texts]

    def _score_phrase_sets(
        self, images: Sequence[Image.Image], phrase_sets: list[list[Phrases]], batch_size: int
    ) -> list[torch.Tensor]:
        """(n_images, len(set)) scores per set of graphs; each image is encoded once."""
        device = self.logit_scale.device
        graph_sets = [
            self.encode_graphs(
                {k: v.to(device) for k, v in self.eval_collator.graphs(phrases).items()}
            )
            for phrases in phrase_sets
        ]
        rows: list[list[torch.Tensor]] = [[] for _ in phrase_sets]
        for i0 in range(0, len(images), batch_size):
            pixels = self.eval_collator.images(images[i0 : i0 + batch_size]).to(device)
            patches = self.encode_patches(pixels)
            for k, graphs in enumerate(graph_sets):
                rows[k].append(self.pair_scores(patches, graphs).float().cpu())
        return [
            torch.cat(r, dim=0) if r else torch.zeros(0, len(phrases))
            for r, phrases in zip(rows, phrase_sets, strict=True)
        ]

    @torch.no_grad()
    def score(
        self,
        images: Sequence[Image.Image],
        texts: Sequence[str | SceneGraph],
        batch_size: int = 64,
    ) -> torch.Tensor:
        """Structured similarity S(image, graph): (n_images, n_texts), float32 on CPU.

        Training never shows OC-CLIP a negated object, so with ``negation="subtract"`` a
        caption's absent objects ("and no blue sphere") count against it by their own
        structured score as a graph of those nodes; without that rule "no X" and "no Y"
        give the same graph and tie.
        """
        was_training = self.training
        self.eval()
        try:
            graphs = self._graphs(texts)
            phrases = [
                graph_phrases(g, t if isinstance(t, str) else None)
                for g, t in zip(graphs, texts, strict=True)
            ]
            negated = {}  # column -> phrases of the objects its caption says are absent
            if self.options["negation"] == "subtract":
                for j, graph in enumerate(graphs):
                    nodes = [o.phrase() for o in graph.objects if o.negated]
                    if nodes:
                        negated[j] = nodes
            absent_graphs = [(nodes, []) for nodes in negated.values()]
            scores, *absent = self._score_phrase_sets(
                images, [phrases] + ([absent_graphs] if negated else []), batch_size
            )
            if negated:
                scores[:, list(negated)] -= absent[0]
            return scores
        finally:
            self.train(was_training)


def build_occlip(backbone: Backbone, parser: Any = None, **options: Any) -> OCCLIP:
    """OC-CLIP from its options as keyword arguments: a pipeline's ``occlip`` block or a
    checkpoint's config.json (``create_model("occlip", ...)``), both flat dicts."""
    return OCCLIP(backbone, OcclipOptions(**options), parser=parser)
