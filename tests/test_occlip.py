"""OC-CLIP: competitive binding, structured score, B x B and local graph losses."""

from __future__ import annotations

import io
import pickle

import pytest
import torch
from PIL import Image

from components.models.backbone import build_backbone
from components.models.losses import relation_negatives, symmetric_infonce
from components.models.occlip.occlip import OCCLIP, graph_phrases
from components.models.occlip.occlip_binding import InvertedAttention
from components.models.occlip.occlip_options import OcclipOptions
from components.parsing.scene_graph import Relation, SceneGraph

RED_LEFT_OF_BLUE = SceneGraph.build([("cube", ["red"]), ("sphere", ["blue"])], [(0, "left of", 1)])
GREEN_CUBE = SceneGraph.build([("cube", ["green"])])
THREE_NODES = SceneGraph.build(
    [("cube", ["red"]), ("sphere", ["blue"]), ("cylinder", ["gray"])],
    [(0, "left of", 1), (2, "behind", 0)],
)
WITH_NEGATION = SceneGraph.build(
    [("cube", ["red"]), ("sphere", ["blue"], True), ("cone", [])], [(0, "on", 1), (2, "near", 0)]
)
GRAPHS = [RED_LEFT_OF_BLUE, GREEN_CUBE, THREE_NODES, WITH_NEGATION, RED_LEFT_OF_BLUE]
COLOURS = ["red", "green", "blue", "yellow", "purple"]


def png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def rows(n: int = 5) -> list[dict]:
    return [
        {"image": png(COLOURS[i]), "caption": f"caption {i}", "graph": GRAPHS[i].to_dict()}
        for i in range(n)
    ]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model() -> OCCLIP:
    torch.manual_seed(0)
    backbone = build_backbone("tiny", vision_cfg={"layers": 2}, text_cfg={"layers": 2})
    return OCCLIP(backbone, OcclipOptions(depth=2, heads=4, num_default_tokens=3)).eval()


@pytest.fixture(scope="module")
def batch(model) -> dict[str, torch.Tensor]:
    return model.collate(rows())


# -- binding --------------------------------------------------------------------------
def identity_attention(dim: int = 8) -> InvertedAttention:
    attention = InvertedAttention(dim, heads=1)
    with torch.no_grad():
        for linear in (attention.q, attention.k, attention.v, attention.out):
            linear.weight.copy_(torch.eye(dim))
            linear.bias.zero_()
    return attention


def test_each_patch_distributes_exactly_one_unit_over_queries_including_defaults(model):
    queries, patches = torch.randn(2, 5, 128), torch.randn(2, 7, 128)
    mask = torch.tensor([[True, True, False, True, True], [True] * 5])  # query 2 is padding
    _, competition, weights = model.binding.blocks[0].attn(
        queries, patches, mask, return_weights=True
    )  # (2, h, Q, L)
    torch.testing.assert_close(competition.sum(-2), torch.ones(2, 4, 7))
    assert competition[0, :, 2].abs().max() == 0  # padded query takes no share
    torch.testing.assert_close(weights[1].sum(-1), torch.ones(4, 5), atol=1e-5, rtol=0)


def test_a_patch_claimed_by_one_slot_is_not_shared():
    attention = identity_attention()
    keys = torch.nn.functional.normalize(torch.randn(1, 6, 8), dim=-1)
    queries = torch.randn(1, 4, 8) * 0.1
    queries[0, 1] = 40 * keys[0, 3]  # query 1 matches patch 3 strongly
    _, competition, weights = attention(
        queries, keys, torch.ones(1, 4, dtype=torch.bool), return_weights=True
    )
    assert competition[0, 0, 1, 3] > 0.999
    assert competition[0, 0, [0, 2, 3], 3].max() < 1e-3
    assert weights[0, 0, [0, 2, 3], 3].max() < 1e-3


def test_ordinary_attention_ablation_normalises_over_patches_instead():
    attention = InvertedAttention(8, heads=2, competitive=False)
    _, competition, _ = attention(
        torch.randn(1, 3, 8), torch.randn(1, 5, 8), torch.ones(1, 3, dtype=torch.bool), True
    )
    torch.testing.assert_close(competition.sum(-1), torch.ones(1, 2, 3))


# -- structured score -----------------------------------------------------------------
def test_swapping_subject_and_object_changes_the_relation_score(model):
    relations, slots = torch.randn(1, 1, 128), torch.randn(1, 2, 128)
    s, o = torch.tensor([[0]]), torch.tensor([[1]])
    forward = model.scorer.relation_cos(relations, slots, s, o)
    swapped = model.scorer.relation_cos(relations, slots, o, s)
    assert (forward - swapped).abs().item() > 1e-4
    assert not torch.allclose(model.scorer.subj_out.weight, model.scorer.obj_out.weight)


def test_swapped_graph_gets_a_different_score(model):
    images = [Image.new("RGB", (64, 64), "red")]
    swapped = RED_LEFT_OF_BLUE.swap_relation(0)
    scores = model.score(images, [RED_LEFT_OF_BLUE, swapped])
    assert (scores[0, 0] - scores[0, 1]).abs() > 1e-5


def test_padded_nodes_and_relations_do_not_change_scores(model):
    """GREEN_CUBE alone (M=1, P=0) vs. padded to M=3, P=2 by its batch mates."""
    pixels = model.eval_collator.images([png("green"), png("red")])
    alone = model.eval_collator.graphs([graph_phrases(GREEN_CUBE)])
    padded = model.eval_collator.graphs([graph_phrases(g) for g in (THREE_NODES, GREEN_CUBE)])
    assert padded["node_tokens"].shape[1] == 3 and padded["rel_tokens"].shape[1] == 2
    with torch.no_grad():
        patches = model.encode_patches(pixels)
        single = model.pair_scores(patches, model.encode_graphs(alone))
        in_batch = model.pair_scores(patches, model.encode_graphs(padded))
    torch.testing.assert_close(in_batch[:, 1:], single, atol=1e-6, rtol=0)


def test_graph_without_relations_scores_its_mean_object_cosine(model):
    graph = SceneGraph.build([("cube", ["green"]), ("sphere", ["red"])])
    tensors = model.eval_collator.graphs([graph_phrases(graph)])
    with torch.no_grad():
        graphs = model.encode_graphs(tensors)
        patches = model.encode_patches(model.eval_collator.images([png("green")]))
        slots = model.binding(graphs["nodes"], graphs["node_mask"], patches)  # (1, 1, 2, d)
        object_cos = model.scorer.object_cos(graphs["nodes"], slots)
        score = model.pair_scores(patches, graphs)
    torch.testing.assert_close(score, object_cos.mean(-1), atol=1e-6, rtol=0)


def test_structured_score_weights_objects_and_relations_by_alpha_and_beta(model):
    object_cos, relation_cos = torch.tensor([[0.5, 0.1, 9.0]]), torch.tensor([[-0.2, 7.0]])
    node_mask, rel_mask = torch.tensor([[True, True, False]]), torch.tensor([[True, False]])
    with torch.no_grad():
        model.scorer.alpha_raw.fill_(0.3)
        model.scorer.beta_raw.fill_(-0.4)
        alpha, beta = model.scorer.alpha.item(), model.scorer.beta.item()
        score = model.scorer.combine(object_cos, node_mask, relation_cos, rel_mask)
        model.scorer.alpha_raw.fill_(0.5413248)  # back to softplus^-1(1)
        model.scorer.beta_raw.fill_(0.5413248)
    expected = (alpha * 0.6 + beta * -0.2) / (alpha * 2 + beta * 1)
    assert score.item() == pytest.approx(expected, abs=1e-6)


def test_negated_objects_are_dropped_with_their_relations():
    nodes, relations = graph_phrases(WITH_NEGATION)
    assert nodes == ["red cube", "cone"]
    assert relations == [(1, "near", 0)]
    only_negated = SceneGraph.build([("dog", [], True)])
    assert graph_phrases(only_negated, "no dog") == (["no dog"], [])


def test_negated_objects_count_against_the_caption_when_scoring(model):
    images = [Image.open(io.BytesIO(png(c))) for c in ("red", "blue")]
    present = SceneGraph.build([("cube", ["red"]), ("cone", [])], [(1, "near", 0)])
    absent = SceneGraph.build([("sphere", ["blue"])])
    scores = model.score(images, [WITH_NEGATION, present, absent, GREEN_CUBE])
    torch.testing.assert_close(scores[:, 0], scores[:, 1] - scores[:, 2])
    model.options["negation"] = "ignore"
    try:
        ignored = model.score(images, [WITH_NEGATION, GREEN_CUBE])
    finally:
        model.options["negation"] = "subtract"
    torch.testing.assert_close(ignored[:, 0], scores[:, 1])
    torch.testing.assert_close(ignored[:, 1], scores[:, 3])  # graphs without negation unchanged
    with pytest.raises(ValueError, match="negation"):
        OCCLIP(model.backbone, OcclipOptions(negation="invert"))


def test_evaluation_replaces_the_negation_rule_without_retraining(model, tmp_path):
    from components.evaluation.scoring import CheckpointScorer
    from components.models.checkpoint import save_checkpoint

    directory = str(save_checkpoint(model, tmp_path / "occlip"))
    images = [Image.open(io.BytesIO(png(c))) for c in ("red", "blue")]
    present = SceneGraph.build([("cube", ["red"]), ("cone", [])], [(1, "near", 0)])
    own = CheckpointScorer(directory).model
    ignoring = CheckpointScorer(directory, negation="ignore").model
    assert (own.options["negation"], ignoring.options["negation"]) == ("subtract", "ignore")
    with torch.no_grad():
        torch.testing.assert_close(
            ignoring.score(images, [WITH_NEGATION]), own.score(images, [present])
        )


# -- losses ---------------------------------------------------------------------------
def test_batch_loss_equals_a_naive_double_loop_over_pairs(model, batch):
    torch.manual_seed(7)
    with torch.no_grad():
        _, parts = model.loss(batch)
    scale = model.logit_scale.exp().clamp(max=100)
    patches = model.encode_patches(batch["images"])
    pairs = torch.zeros(5, 5)
    with torch.no_grad():
        for j, graph in enumerate(GRAPHS):
            single = model.encode_graphs(model.collator.graphs([graph_phrases(graph)]))
            for i in range(5):
                pairs[i, j] = model.pair_scores(patches[i : i + 1], single)[0, 0]
    assert parts["itc"] == pytest.approx(symmetric_infonce(scale * pairs).item(), abs=1e-5)

    # L_rel, rebuilt graph by graph from the same random perturbations.
    torch.manual_seed(7)
    subject, object, valid = relation_negatives(
        batch["rel_subject"], batch["rel_object"], batch["rel_mask"], batch["node_mask"], 4
    )
    terms = []
    with torch.no_grad():
        for b, graph in enumerate(GRAPHS):
            nodes, relations = graph_phrases(graph)
            candidates = [pairs[b, b]]
            for k in range(4):
                if not valid[b, k]:
                    continue
                perturbed = [
                    (int(subject[b, k, j]), predicate, int(object[b, k, j]))
                    for j, (_, predicate, _) in enumerate(relations)
                ]
                tensors = model.collator.graphs([(nodes, perturbed)])
                candidates.append(
                    model.pair_scores(patches[b : b + 1], model.encode_graphs(tensors))[0, 0]
                )
            if len(candidates) > 1:
                terms.append(-torch.log_softmax(scale * torch.stack(candidates), 0)[0])
    assert len(terms) == 4  # GREEN_CUBE has no relation
    assert parts["rel"] == pytest.approx(torch.stack(terms).mean().item(), abs=1e-5)


def test_chunked_binding_equals_unchunked(model, batch):
    with torch.no_grad():
        patches = model.encode_patches(batch["images"])
        graphs = model.encode_graphs(batch)
        whole, whole_slots = model.pair_scores(patches, graphs, diagonal_slots=True)
        model.options["graph_chunk"] = 2
        try:
            chunked, chunked_slots = model.pair_scores(patches, graphs, diagonal_slots=True)
        finally:
            model.options["graph_chunk"] = None
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)
    torch.testing.assert_close(chunked_slots, whole_slots, atol=1e-5, rtol=0)


def test_relation_negatives_change_exactly_one_relation_of_graphs_that_have_one():
    subject = torch.tensor([[0, 2], [0, 0], [0, 0]])
    object = torch.tensor([[1, 0], [1, 0], [0, 0]])
    rel_mask = torch.tensor([[True, True], [True, False], [False, False]])
    node_mask = torch.tensor([[True, True, True], [True, True, False], [True, False, False]])
    s, o, valid = relation_negatives(subject, object, rel_mask, node_mask, 6)
    assert valid[:2].all() and not valid[2].any()
    changed = (s != subject[:, None]) | (o != object[:, None])  # (B, K, P)
    assert (changed[:2].sum(-1) == 1).all()
    assert (s[1, :, 1] == 0).all() and (o[1, :, 1] == 0).all()  # padding untouched
    assert (s[:2] < node_mask.sum(-1)[:2, None, None]).all()  # only real nodes
    torch.testing.assert_close(s[:, 0::2].flatten(), s[:, 0::2].flatten())
    for b in range(2):  # even negatives are swaps
        for k in range(0, 6, 2):
            j = int(changed[b, k].nonzero())
            assert (s[b, k, j], o[b, k, j]) == (object[b, j], subject[b, j])


def test_loss_parts_and_gradients_reach_heads_and_backbone(model, batch):
    model.train()
    model.zero_grad()
    loss, parts = model.loss(batch)
    loss.backward()
    model.eval()
    assert set(parts) >= {"loss", "itc", "rel", "logit_scale"}
    assert parts["loss"] == pytest.approx(parts["itc"] + parts["rel"], rel=1e-6)
    for param in (
        model.scorer.subj_out.weight,
        model.scorer.obj_slot.weight,
        model.binding.default_tokens,
        model.logit_scale,
        model.backbone.model.token_embedding.weight,
        model.backbone.model.visual.conv1.weight,
    ):
        assert param.grad is not None and param.grad.abs().sum() > 0
    model.zero_grad()


def test_a_few_steps_on_one_batch_reduce_the_loss():
    torch.manual_seed(0)
    backbone = build_backbone("tiny", vision_cfg={"layers": 1}, text_cfg={"layers": 1})
    model = OCCLIP(backbone, OcclipOptions(depth=1))
    batch = model.collate(rows(4))
    optimizer = torch.optim.AdamW(model.param_groups(1e-4, 1e-3, 0.0))
    losses = []
    for _ in range(6):
        torch.manual_seed(1)  # same perturbations every step: a fixed objective
        loss, _ = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


# -- API ------------------------------------------------------------------------------
class UppercaseWordParser:
    def parse_batch(self, captions):
        return [SceneGraph.build([(word, []) for word in c.split()]) for c in captions]


def test_score_parses_captions_with_the_parser_and_refuses_without_one(model):
    images = [Image.new("RGB", (40, 30), "red"), Image.new("RGB", (64, 64), "blue")]
    with pytest.raises(ValueError, match="parser"):
        model.score(images, ["red cube"])
    model.parser = UppercaseWordParser()
    try:
        from_text = model.score(images, ["red cube", "sphere"])
        direct = model.score(images, [UppercaseWordParser().parse_batch(["red cube"])[0]])
    finally:
        model.parser = None
    assert from_text.shape == (2, 2) and from_text.dtype == torch.float32
    torch.testing.assert_close(from_text[:, :1], direct)


def test_collate_pads_graphs_and_survives_pickling(model, batch):
    assert batch["images"].shape == (5, 3, 64, 64)
    assert batch["node_tokens"].shape == (5, 3, 16)
    assert batch["node_mask"].sum(-1).tolist() == [2, 1, 3, 2, 2]
    assert batch["rel_mask"].sum(-1).tolist() == [1, 0, 2, 1, 1]
    assert batch["rel_subject"][3, 0].item() == 1 and batch["rel_object"][3, 0].item() == 0
    collator = pickle.loads(pickle.dumps(model.collator))
    torch.testing.assert_close(collator(rows())["node_tokens"], batch["node_tokens"])
    assert Relation(0, "x", 1)  # graph dicts in rows are SceneGraph.to_dict form


def test_param_groups_cover_every_trainable_parameter_once(model):
    groups = model.param_groups(backbone_lr=1e-5, head_lr=1e-3, weight_decay=0.2)
    grouped = [id(p) for g in groups for p in g["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable)
    by_name = {g["name"]: g for g in groups}
    assert by_name["backbone_decay"]["lr"] == 1e-5 and by_name["head_decay"]["lr"] == 1e-3
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert id(model.logit_scale) in no_decay and id(model.scorer.alpha_raw) in no_decay
    assert id(model.binding.blocks[0].norm_slots.weight) in no_decay


# -- the optimised binding against the implementation it replaced ---------------------
def reference_binding_module():
    """components/models/occlip_binding.py as of the commit before the step-time work (git
    show 9309be1:...), kept verbatim in tests/data: the pinned numbers of the optimisation."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent / "data" / "occlip_binding_reference.py"
    spec = importlib.util.spec_from_file_location("occlip_binding_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_optimised_binding_gives_the_reference_scores_and_losses(model, batch):
    import copy

    reference = copy.deepcopy(model)
    options = model.options
    reference.binding = reference_binding_module().BindingModule(
        128, 128, options["binding_dim"], options["depth"], options["heads"],
        options["num_default_tokens"], options["competitive"], options["patch_positions"],
    )  # fmt: skip
    reference.binding.load_state_dict(model.binding.state_dict())
    with torch.no_grad():
        patches = model.encode_patches(batch["images"])
        graphs = model.encode_graphs(batch)
        scores = model.pair_scores(patches, graphs)
        expected = reference.pair_scores(patches, graphs)
    torch.testing.assert_close(scores, expected, atol=1e-5, rtol=0)
    assert scores.shape == (5, 5) and scores.std() > 1e-3  # distinct scores, not a constant
    torch.manual_seed(3)  # the same perturbed graphs for both losses
    _, parts = model.loss(batch)
    torch.manual_seed(3)
    _, expected_parts = reference.loss(batch)
    for key in ("loss", "itc", "rel"):
        assert parts[key] == pytest.approx(expected_parts[key], abs=1e-5), key


def test_phrases_encoded_in_one_call_equal_each_set_encoded_alone(model, batch):
    """The encoding this replaced: one text-tower call per set, padding cut per set."""
    with torch.no_grad():
        graphs = model.encode_graphs(batch)
        for key, mask_key in (("node", "nodes"), ("rel", "relations")):
            tokens, mask = batch[f"{key}_tokens"], batch[f"{key}_mask"]
            flat = tokens[mask]
            length = int((flat != model.backbone.pad_id).any(0).nonzero().max()) + 1
            alone = model.backbone.encode_text(flat[:, :length])  # (n, D)
            torch.testing.assert_close(graphs[mask_key][mask], alone, atol=1e-5, rtol=0)
            assert graphs[mask_key][~mask].abs().max() == 0  # padding stays zero
