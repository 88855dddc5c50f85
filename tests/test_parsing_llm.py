"""The LLM parser: answer validation, one retry, rejects keeping the raw text, local loading."""

from __future__ import annotations

import json

import pytest

from components.parsing.llm_parser import (
    PROMPT_VERSION,
    REJECT_BAD_GRAPH,
    REJECT_NOT_JSON,
    AnswerNotJSON,
    LLMParser,
    build_prompt,
    fallback_graph,
    graph_from_answer,
)
from components.parsing.scene_graph import SceneGraph, SceneGraphError

GOOD = json.dumps(
    {
        "objects": [
            {"name": "Cat", "attributes": ["white"]},
            {"name": "sofa", "attributes": ["red"]},
        ],
        "relations": [[0, "on", 1]],
    }
)


class ScriptedBackend:
    """Answers each caption from a queue of scripted replies; records every prompt."""

    def __init__(self, replies: dict[str, list[str]]):
        self.replies = {k: list(v) for k, v in replies.items()}
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        caption = json.loads(prompt.rsplit("Caption: ", 1)[1].removesuffix("\nJSON:"))
        return self.replies[caption].pop(0)


def test_valid_answer_in_prose_and_code_fence_is_accepted():
    answer = f"Sure! Here it is:\n```json\n{GOOD}\n```"
    graph = graph_from_answer(answer)
    assert graph.triples() == [("white cat", "on", "red sofa")]


def test_list_relations_and_bare_object_names_are_normalised():
    graph = graph_from_answer('{"objects": ["man", "horse"], "relations": [[0, "riding", 1]]}')
    assert graph == SceneGraph.build([("man", []), ("horse", [])], [(0, "riding", 1)])


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ('{"objects": [{"name": "cat"}], "relations": [[0, "on", 3]]}', "relations[0].object=3"),
        ('{"objects": [{"name": ""}]}', "objects[0].name is empty"),
        ("no json here", "no JSON object"),
        ('{"objects": [', "no JSON object"),
    ],
)
def test_invalid_answers_raise_naming_the_field(answer, message):
    with pytest.raises(SceneGraphError, match=message.replace("[", r"\[").replace("]", r"\]")):
        graph_from_answer(answer)


def test_invalid_answer_is_retried_once_with_the_error_quoted():
    backend = ScriptedBackend({"a white cat on a red sofa": ['{"objects": [{"name": ""}]}', GOOD]})
    [result] = LLMParser(backend=backend).parse_results(["a white cat on a red sofa"])
    assert result.reason is None
    assert result.graph.node_phrases() == ["white cat", "red sofa"]
    assert len(backend.prompts) == 2
    assert "objects[0].name is empty" in backend.prompts[1]


def test_second_invalid_answer_is_a_reject_keeping_the_raw_text():
    backend = ScriptedBackend(
        {
            "a dog": ["I think it is a dog.", "Still a dog."],
            "a white cat on a red sofa": [GOOD],
            "two cups": ['{"objects": ["cup"], "relations": [[0, "on", 5]]}'] * 2,
        }
    )
    parser = LLMParser(backend=backend)
    results = parser.parse_results(["a dog", "a white cat on a red sofa", "two cups"])
    assert [r.reason for r in results] == [REJECT_NOT_JSON, None, REJECT_BAD_GRAPH]
    assert results[0].raw == "Still a dog."
    assert results[0].graph is None
    assert len(backend.prompts) == 5  # 3 first tries + 2 retries, none for the good caption


def test_parse_batch_falls_back_to_one_node_holding_the_caption():
    backend = ScriptedBackend({"a  dog  asleep": ["?", "?"]})
    assert LLMParser(backend=backend).parse_batch(["a  dog  asleep"]) == [
        fallback_graph("a dog asleep")
    ]
    assert fallback_graph("a dog asleep").node_phrases() == ["a dog asleep"]


def test_prompt_is_few_shot_and_ends_with_the_caption():
    prompt = build_prompt("a red cube")
    assert prompt.count("Caption: ") == 5
    assert prompt.endswith('Caption: "a red cube"\nJSON:')
    assert "Return JSON only" in prompt


def test_missing_local_model_fails_without_downloading(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(OSError, match="not available locally"):
        LLMParser(model=str(tmp_path / "no-such-model"), engine="transformers")


def _tiny_bpe_llama(folder) -> None:
    """A random 2-layer Llama and a byte-level BPE trained here on the prompt text, saved."""
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([build_prompt("a white cat on a red sofa")] * 4, trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>"
    )
    config = transformers.LlamaConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        max_position_embeddings=2048, pad_token_id=0, eos_token_id=1,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    fast.save_pretrained(folder)


@pytest.mark.slow
def test_tiny_local_causal_lm_runs_end_to_end_and_its_garbage_is_rejected(tmp_path):
    """The real transformers path on a model saved to disk: batched, nothing downloaded."""
    pytest.importorskip("transformers")
    from components.parsing.llm_parser import TransformersBackend

    _tiny_bpe_llama(tmp_path)
    captions = ["a cat", "a white cat on a red sofa", "two dogs playing next to a bench"]
    parser = LLMParser(model=str(tmp_path), engine="transformers", max_new_tokens=6, batch_size=3)
    assert isinstance(parser.backend, TransformersBackend)
    results = parser.parse_results(captions)
    # Random weights answer garbage: every caption is a counted reject keeping the raw text.
    assert [r.reason for r in results] == [REJECT_NOT_JSON] * 3
    assert all(isinstance(r.raw, str) and r.raw for r in results)
    # Left-padded batch generation answers each prompt as generating it alone would (exact
    # in float32 on CPU; bfloat16 on a GPU may break greedy ties differently).
    prompts = [build_prompt(c) for c in captions]
    if parser.backend.device == "cpu":
        assert parser.backend.batch(prompts) == [parser.backend(p) for p in prompts]
    assert parser.version == f"{tmp_path}+prompt{PROMPT_VERSION}"


@pytest.mark.slow
def test_parse_quality_benchmark_scores_the_llm_parser_and_counts_its_rejects(tmp_path):
    """benchmarks/parse_quality.py parser=llm: the issue's SugarCrepe check and gold F1 for
    the LLM route, on a real local model (here random: every answer a counted reject)."""
    pytest.importorskip("transformers")
    import importlib

    from components.parsing.quality import CHANGE_CHECKS

    model, out = tmp_path / "model", tmp_path / "out"
    _tiny_bpe_llama(model)
    benchmark = importlib.import_module("benchmarks.parse_quality")
    benchmark.main([f"out={out}", "parser=llm", f"model={model}", "engine=transformers",
                    "limit=1", "max_new_tokens=4", "batch_size=32"])  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    kinds = [k for k in CHANGE_CHECKS if k != "swap_att"]  # SugarCrepe's six files
    assert sorted(results["kinds"]) == sorted(kinds)
    assert all(
        row["items"] == 1 and row["share"] == row["element_share"] == 0.0
        for row in results["kinds"].values()
    )
    assert results["reasons"] == {REJECT_NOT_JSON: 2 * len(kinds)}
    gold = results["gold_f1"]["sugarcrepe_hand_labelled"]
    assert gold["reasons"] == {REJECT_NOT_JSON: 150} and gold["object"] == 0.0
    assert results["parser"] == f"llm:{model}+prompt{PROMPT_VERSION}"
    assert all((out / f"misses_{k}.jsonl").read_text().count("\n") == 1 for k in kinds)


@pytest.mark.slow
def test_vllm_backend_decodes_only_scene_graph_json(tmp_path):
    """Schema-guided decoding: even random weights can only emit schema-valid JSON."""
    pytest.importorskip("vllm")
    from components.parsing.llm_parser import VLLMBackend

    _tiny_bpe_llama(tmp_path)
    backend = VLLMBackend(str(tmp_path), max_new_tokens=1024, enforce_eager=True)
    for answer in backend.batch([build_prompt("a cat"), build_prompt("a dog on a mat")]):
        try:
            graph_from_answer(answer)
        except AnswerNotJSON:
            pytest.fail(f"guided decoding produced non-JSON: {answer!r}")
        except SceneGraphError as err:  # index ranges are the one check a schema cannot make
            assert "relations[" in str(err), (answer, err)
