"""Caption -> SceneGraph with a local instruction-tuned LLM, prompted few-shot (OC-CLIP's best parser).

The model answers JSON, ``{"objects": [{"name", "attributes"}], "relations": [[s, "rel", o]]}``.
Every answer is validated against the SceneGraph contract (JSON, indices in range, no empty
names). An invalid answer is retried once with the error quoted back; a second failure is a
reject that keeps the raw text, so the run can count and inspect it (DESIGN.md: bad input is
counted, never silently dropped).

Generation is a backend: any callable ``prompt -> text`` (tests script one). The real ones
load a local model path or cache name with ``local_files_only=True`` (never downloading):
vLLM when it is installed, else transformers with greedy decoding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from components.parsing.scene_graph import SceneGraph, SceneGraphError, SceneObject

INSTRUCTION = (
    "You turn an image caption into a scene graph. List every physical object the caption "
    'mentions as {"name": head noun, "attributes": [colour, size, material, count, ...]}; '
    'mark an object the caption says is absent ("no X", "without X") with "negated": true. '
    'List every relation between listed objects as [subject index, "relation phrase", object '
    "index], indices counting objects from 0. Return JSON only."
)
FEW_SHOT: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "a white cat on a red sofa",
        {
            "objects": [
                {"name": "cat", "attributes": ["white"]},
                {"name": "sofa", "attributes": ["red"]},
            ],
            "relations": [[0, "on", 1]],
        },
    ),
    (
        "two brown dogs playing next to a wooden bench",
        {
            "objects": [
                {"name": "dogs", "attributes": ["two", "brown"]},
                {"name": "bench", "attributes": ["wooden"]},
            ],
            "relations": [[0, "playing next to", 1]],
        },
    ),
    (
        "a small red cube to the left of a large blue sphere, and no yellow cylinder",
        {
            "objects": [
                {"name": "cube", "attributes": ["small", "red"]},
                {"name": "sphere", "attributes": ["large", "blue"]},
                {"name": "cylinder", "attributes": ["yellow"], "negated": True},
            ],
            "relations": [[0, "left of", 1]],
        },
    ),
    (
        "a man riding a horse in front of a barn",
        {
            "objects": [
                {"name": "man", "attributes": []},
                {"name": "horse", "attributes": []},
                {"name": "barn", "attributes": []},
            ],
            "relations": [[0, "riding", 1], [1, "in front of", 2]],
        },
    ),
)
REJECT_NOT_JSON = "llm_not_json"
REJECT_BAD_GRAPH = "llm_invalid_graph"


class AnswerNotJSON(SceneGraphError):
    """The model's answer holds no parseable JSON object."""


@dataclass(frozen=True)
class ParseResult:
    """One caption's outcome: a graph, or a reject reason (and the model's raw answer)."""

    graph: SceneGraph | None
    reason: str | None = None
    raw: str | None = None
    detail: str | None = None


def build_prompt(caption: str, error: str | None = None, previous: str | None = None) -> str:
    """The few-shot prompt for ``caption``; a retry quotes the invalid answer and its error."""
    lines = [INSTRUCTION, ""]
    for example, graph in FEW_SHOT:
        lines += [f"Caption: {example}", f"JSON: {json.dumps(graph)}", ""]
    if error is not None:
        lines += [
            f"Caption: {caption}",
            f"JSON: {previous}",
            f"That answer is invalid ({error}). Answer again with valid JSON only.",
        ]
    lines += [f"Caption: {caption}", "JSON:"]
    return "\n".join(lines)


def _first_json_object(text: str) -> str | None:
    """The first balanced {...} in ``text`` (models wrap JSON in prose or code fences)."""
    start = text.find("{")
    while start != -1:
        depth, in_string, escaped = 0, False, False
        for i in range(start, len(text)):
            ch = text[i]
            if in_string:
                escaped = ch == "\\" and not escaped
                if ch == '"' and not escaped:
                    in_string = False
                continue
            if ch == '"':
                in_string = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[start : i + 1]
        start = text.find("{", start + 1)
    return None


def graph_from_answer(text: str) -> SceneGraph:
    """Validate a model answer into a SceneGraph; raises SceneGraphError naming the fault."""
    candidate = _first_json_object(re.sub(r"```(?:json)?", "", text or ""))
    if candidate is None:
        raise AnswerNotJSON("answer holds no JSON object")
    try:
        data = json.loads(candidate)
    except json.JSONDecodeError as err:
        raise AnswerNotJSON(f"answer is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise AnswerNotJSON("answer must be a JSON object")
    objects = data.get("objects", [])
    if isinstance(objects, list):
        # Tolerate bare strings for attribute-less objects: "objects": ["man", ...].
        data["objects"] = [
            {"name": o, "attributes": []} if isinstance(o, str) else o for o in objects
        ]
    relations = data.get("relations", [])
    if isinstance(relations, list):
        data["relations"] = [_relation_dict(k, r) for k, r in enumerate(relations)]
    graph = SceneGraph.from_dict(data)
    objects = tuple(
        SceneObject(
            o.name.strip().lower(), tuple(a.strip().lower() for a in o.attributes), o.negated
        )
        for o in graph.objects
    )
    return SceneGraph(objects, graph.relations)


def _relation_dict(k: int, raw: Any) -> Any:
    if isinstance(raw, list | tuple):
        if len(raw) != 3:
            raise SceneGraphError(f"relations[{k}] must be [subject, predicate, object]")
        return {"subject": raw[0], "predicate": raw[1], "object": raw[2]}
    return raw


class LLMParser:
    """Few-shot LLM parser with validation, one retry, and rejects that keep the raw answer."""

    name = "llm"

    def __init__(
        self,
        model: str | None = None,
        backend: Callable[[str], str] | None = None,
        retries: int = 1,
        max_new_tokens: int = 256,
        batch_size: int = 16,
        engine: str = "auto",
    ):
        if backend is None:
            if not model:
                raise ValueError("LLMParser needs a local model path/cache name or a backend")
            backend = load_backend(model, max_new_tokens=max_new_tokens, engine=engine)
        self.backend = backend
        self.retries = retries
        self.batch_size = batch_size

    def _generate(self, prompts: list[str]) -> list[str]:
        batch = getattr(self.backend, "batch", None)
        if batch is not None:
            out: list[str] = []
            for start in range(0, len(prompts), self.batch_size):
                out.extend(batch(prompts[start : start + self.batch_size]))
            return out
        return [self.backend(p) for p in prompts]

    def parse_results(self, captions: list[str]) -> list[ParseResult]:
        """Each caption's graph or reject; invalid answers get ``retries`` more tries."""
        results: list[ParseResult | None] = [None] * len(captions)
        pending = list(range(len(captions)))
        prompts = {i: build_prompt(captions[i]) for i in pending}
        for attempt in range(self.retries + 1):
            answers = self._generate([prompts[i] for i in pending])
            still_bad = []
            for i, answer in zip(pending, answers, strict=True):
                try:
                    results[i] = ParseResult(graph_from_answer(answer), raw=answer)
                except SceneGraphError as err:
                    reason = REJECT_NOT_JSON if isinstance(err, AnswerNotJSON) else REJECT_BAD_GRAPH
                    results[i] = ParseResult(None, reason, raw=answer, detail=str(err))
                    if attempt < self.retries:
                        prompts[i] = build_prompt(captions[i], str(err), answer)
                        still_bad.append(i)
            pending = still_bad
            if not pending:
                break
        return results  # type: ignore[return-value]

    def parse_batch(self, captions: list[str]) -> list[SceneGraph]:
        """Graphs only; a rejected caption falls back to one node holding the whole caption."""
        return [
            r.graph if r.graph is not None else fallback_graph(c)
            for c, r in zip(captions, self.parse_results(captions), strict=True)
        ]


def fallback_graph(caption: str) -> SceneGraph:
    """OC-CLIP's fallback for an unparseable caption: a single node with the whole text."""
    text = " ".join((caption or "").split())
    return SceneGraph.build([(text, [])]) if text else SceneGraph()


# -- generation backends -----------------------------------------------------------------


def load_backend(model: str, max_new_tokens: int = 256, engine: str = "auto") -> Any:
    """vLLM when installed (engine "auto" or "vllm"), else transformers; local files only."""
    if engine in ("auto", "vllm"):
        try:
            import vllm  # noqa: F401
        except ImportError:
            if engine == "vllm":
                raise
        else:
            return VLLMBackend(model, max_new_tokens)
    return TransformersBackend(model, max_new_tokens)


class TransformersBackend:
    """Greedy decoding with a local causal LM; chat template when the tokenizer has one."""

    def __init__(self, model: str, max_new_tokens: int = 256):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(
                model, local_files_only=True, dtype=dtype
            ).to(self.device)
        except OSError as err:
            raise OSError(
                f"LLM parser model {model!r} is not available locally (no download is attempted): {err}"
            ) from err
        self.model.eval()
        self.tokenizer.padding_side = "left"  # decoder-only: pad on the left to batch
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.max_new_tokens = max_new_tokens

    def _format(self, prompt: str) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        return prompt

    def batch(self, prompts: list[str]) -> list[str]:
        inputs = self.tokenizer(
            [self._format(p) for p in prompts], return_tensors="pt", padding=True
        ).to(self.device)
        with self.torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]  # (B, T_new)
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)

    def __call__(self, prompt: str) -> str:
        return self.batch([prompt])[0]


class VLLMBackend:
    """vLLM offline engine, greedy; the model must already be on local disk."""

    def __init__(self, model: str, max_new_tokens: int = 256):
        import os

        from vllm import LLM, SamplingParams

        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # vLLM has no local_files_only flag
        self.llm = LLM(model=model)
        self.params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)

    def batch(self, prompts: list[str]) -> list[str]:
        messages = [[{"role": "user", "content": p}] for p in prompts]
        outputs = self.llm.chat(messages, self.params, use_tqdm=False)
        return [o.outputs[0].text for o in outputs]

    def __call__(self, prompt: str) -> str:
        return self.batch([prompt])[0]
