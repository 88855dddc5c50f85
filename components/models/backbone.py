"""Backbone: one adapter over an open_clip model that every bindkit model builds on.

It returns what CLIP, OC-CLIP and DCSM need from a vision-language tower pair:
pooled image/text embeddings, projected patch tokens (CLS first) and projected text tokens
with a padding mask, from any block. Tokens come from open_clip's ``forward_intermediates``
(docs/methods/ecosystem.md section 3) with the final LayerNorm applied and the tower's projection on top, so
the projected CLS token is the pooled image embedding and the projected EOT token is the
pooled text embedding, exactly.

The text tower is run on sequences as long as they are given (OC-CLIP encodes short phrases at
context 16, not 77): with a causal mask the first L positions never see later ones, so slicing
the positional embedding and the mask to L gives the same outputs as padding to the full
context, at a fraction of the cost.

Architectures are data: a few small configs for tests and CPU runs live in ``SMALL_CONFIGS``;
any other name is handed to ``open_clip.create_model``. Nothing is downloaded unless a
pretrained tag is asked for.

Pooling decides which tokens a contrastive loss trains. A tower's own pooling (CLS, EOT)
trains one token per side and leaves the others free, so the token x patch maps DCSM reads
need not line up word with region. ``tiny-dense`` pools by the mean of the projected tokens on
both sides (open_clip's ``pool_type="avg"`` for the image, ``text_pool="mean"`` here for the
text), so its cosine is the mean of its dense map and every word and patch is trained.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import open_clip
import torch
from open_clip.transform import PreprocessCfg, image_transform_v2
from open_clip.transformer import text_global_pool
from torch import nn

from components.models.pretrained import SCHEMAS, PretrainedError, check_pretrained
from components.models.towers import UnsupportedBackbone, image_tokens, image_width
from components.platform.config import check


def merge_config(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict update: small-config overrides may change one field of vision_cfg."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# Small architectures for tests and laptop runs, as overrides of an open_clip config
# (``create_model(base, **kwargs)`` replaces whole sub-dicts, so each one is complete).
SMALL_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {
        "base": "ViT-B-16",
        "embed_dim": 128,
        "vision_cfg": {
            "image_size": 64,
            "patch_size": 8,
            "width": 128,
            "layers": 4,
            "head_width": 32,
        },
        "text_cfg": {
            "context_length": 32,
            "vocab_size": 49408,
            "width": 128,
            "heads": 4,
            "layers": 4,
        },
    },
    "small": {
        "base": "ViT-B-16",
        "embed_dim": 256,
        "vision_cfg": {
            "image_size": 96,
            "patch_size": 8,
            "width": 256,
            "layers": 6,
            "head_width": 64,
        },
        "text_cfg": {
            "context_length": 32,
            "vocab_size": 49408,
            "width": 256,
            "heads": 4,
            "layers": 6,
        },
    },
}


# Mean pooling on both sides (module docstring): the backbone DCSM's maps can be read from.
SMALL_CONFIGS["tiny-dense"] = merge_config(
    SMALL_CONFIGS["tiny"], {"text_pool": "mean", "vision_cfg": {"pool_type": "avg"}}
)
TEXT_POOLS = ("tower", "mean")


@dataclass
class BackboneConfig:
    """The backbone block every pipeline shares (train_occlip, train_dcsm, evaluate, probes).

    Option names follow open_clip_train: ``pretrained`` alone loads weights (a tag, a local
    file or an open_clip_train checkpoint); ``force_quick_gelu`` as ``--force-quick-gelu``
    (a local OpenAI file needs it: only tags say so themselves); ``lock_*`` as
    ``--lock-image``/``--lock-text`` with their unlocked groups/layers (LiT-style freezing).
    ``checkpoint`` names a trained bindkit model whose backbone is used as it is
    (``components.models.loading.load_backbone``).
    """

    name: str = "tiny"  # a small config, an open_clip name, or hf-hub:/local-dir:
    checkpoint: str = ""  # bindkit checkpoint (dir or URI) to take the backbone from; "" = use name
    pretrained: str = ""  # open_clip tag | local weights file | "" (random init)
    force_quick_gelu: bool = False  # QuickGELU activations (OpenAI weights loaded from a file)
    image_size: int = 0  # 0 = the architecture's own
    lock_image: bool = False  # freeze the image tower (LiT)
    lock_image_unlocked_groups: int = 0  # last N layer groups of the image tower train
    lock_image_freeze_bn_stats: bool = False  # also freeze BatchNorm statistics of a locked tower
    lock_text: bool = False  # freeze the text tower
    lock_text_unlocked_layers: int = 0  # last N blocks of the text tower train

    def validate(self) -> None:
        """Bad values end the run before Ray starts (components.platform.config.validate_tree)."""
        for key in ("image_size", "lock_image_unlocked_groups", "lock_text_unlocked_layers"):
            check(getattr(self, key) >= 0, key, getattr(self, key), "an integer >= 0")
        known = (
            self.name in SMALL_CONFIGS
            or self.name.startswith(SCHEMAS)
            or open_clip.get_model_config(self.name) is not None
        )
        small = ", ".join(sorted(SMALL_CONFIGS))
        check(
            known,
            "name",
            self.name,
            f"a small config ({small}), an open_clip model name or hf-hub:/local-dir:",
        )
        try:
            check_pretrained(self.name, self.pretrained or None)
        except PretrainedError as err:
            check(False, "pretrained", self.pretrained, str(err))

    def source(self) -> dict[str, Any]:
        """What ``load_backbone`` reads as plain data (it travels to Ray actors as it is):
        ``{"checkpoint": dir}`` when a checkpoint is named, else ``spec()``."""
        return {"checkpoint": self.checkpoint} if self.checkpoint else self.spec()

    def spec(self) -> dict[str, Any]:
        """Keyword arguments of ``Backbone`` (defaults left out, so configs stay short)."""
        spec: dict[str, Any] = {"name": self.name, "pretrained": self.pretrained or None}
        defaults = BackboneConfig()
        for key in LOCK_OPTIONS + ("force_quick_gelu",):
            if getattr(self, key) != getattr(defaults, key):
                spec[key] = getattr(self, key)
        if self.image_size:
            spec["image_size"] = self.image_size
        return spec


LOCK_OPTIONS = (
    "lock_image",
    "lock_image_unlocked_groups",
    "lock_image_freeze_bn_stats",
    "lock_text",
    "lock_text_unlocked_layers",
)


def _refuse_text_tower(name: str, model_cfg: dict[str, Any]) -> None:
    """Refuse, before building, towers whose text tokens bindkit cannot read."""
    text_cfg = model_cfg.get("text_cfg", {})
    if "hf_model_name" in text_cfg:
        raise UnsupportedBackbone(
            f"backbone {name!r}: its text tower is the Hugging Face model "
            f"{text_cfg['hf_model_name']!r}; bindkit reads text tokens from open_clip's own "
            "TextTransformer only"
        )
    if "multimodal_cfg" in model_cfg or text_cfg.get("embed_cls"):
        raise UnsupportedBackbone(
            f"backbone {name!r}: its text tower appends a class token (CoCa), so the EOT "
            "token is not its pooled text embedding; bindkit reads EOT/last-token towers only"
        )


def _tokenizer(name: str, tokenizer_name: str, context_length: int):
    """open_clip's tokenizer for ``tokenizer_name``; a Hugging Face one offline is refused."""
    try:
        return open_clip.get_tokenizer(tokenizer_name, context_length=context_length)
    except OSError as err:
        raise PretrainedError(
            f"backbone {name!r}: its Hugging Face tokenizer ({tokenizer_name}) is not in the "
            "local cache and downloads are off; set tokenizer=<an open_clip model name> "
            f"or download it once ({err.__class__.__name__})"
        ) from err


class Backbone(nn.Module):
    """open_clip model + tokenizer + eval transform, with token-level access to both towers."""

    def __init__(
        self,
        name: str,
        pretrained: str | None = None,
        image_size: int | None = None,
        context_length: int | None = None,
        force_quick_gelu: bool = False,
        device: str | torch.device = "cpu",
        **overrides: Any,
    ) -> None:
        super().__init__()
        overrides = dict(overrides)
        # ``quick_gelu`` is the key checkpoints written before force_quick_gelu carry.
        force_quick_gelu = bool(force_quick_gelu or overrides.pop("quick_gelu", False))
        locks = {k: overrides.pop(k) for k in LOCK_OPTIONS if k in overrides}
        self.config = {
            "name": name,
            "pretrained": pretrained,
            "image_size": image_size,
            "context_length": context_length,
            **copy.deepcopy(overrides),
            **locks,
        }
        text_pool = overrides.pop("text_pool", None)
        tokenizer_override = overrides.pop("tokenizer", None)  # another model's tokenizer
        preprocess_cfg = overrides.pop("preprocess_cfg", None)
        weights = check_pretrained(name, pretrained)
        if weights and name not in SMALL_CONFIGS and not force_quick_gelu:
            # OpenAI-trained tags need QuickGELU; open_clip only warns on a mismatch.
            tag_cfg = open_clip.get_pretrained_cfg(name, weights) or {}
            arch_cfg = open_clip.get_model_config(name) or {}
            force_quick_gelu = bool(tag_cfg.get("quick_gelu")) and not arch_cfg.get(
                "quick_gelu", False
            )
        if force_quick_gelu:
            self.config["force_quick_gelu"] = True
        if name in SMALL_CONFIGS:
            spec = merge_config(SMALL_CONFIGS[name], overrides)
            base = spec.pop("base")
            config_pool = spec.pop("text_pool", None)  # an explicit text_pool wins
            text_pool = text_pool or config_pool
            if image_size is not None:
                spec["vision_cfg"]["image_size"] = image_size
            if context_length is not None:
                spec["text_cfg"]["context_length"] = context_length
            model_kwargs, image_size, context_length = spec, None, None
            tokenizer_name = base
        else:
            base, tokenizer_name = name, name
            # Field-by-field, as for small configs (open_clip would replace whole sub-dicts).
            arch = {} if name.startswith(SCHEMAS) else open_clip.get_model_config(name) or {}
            model_kwargs = {
                k: merge_config(arch.get(k) or {}, v) if isinstance(v, dict) else v
                for k, v in overrides.items()
            }
        if not base.startswith(SCHEMAS):
            _refuse_text_tower(
                name, merge_config(open_clip.get_model_config(base) or {}, model_kwargs)
            )
        try:
            self.model = open_clip.create_model(
                base,
                pretrained=weights,
                force_quick_gelu=force_quick_gelu,
                force_image_size=image_size,
                force_context_length=context_length,
                force_preprocess_cfg=preprocess_cfg,
                pretrained_image=False,
                device=device,
                **model_kwargs,
            )
        except (RuntimeError, KeyError, ValueError, OSError) as err:
            if not weights:
                raise
            raise PretrainedError(f"{weights}: cannot load into backbone {name!r}: {err}") from err
        # Recorded so plain open_clip can rebuild the same architecture (export.py).
        self.open_clip_name = base
        self.open_clip_overrides = copy.deepcopy(model_kwargs)
        self.text_pool = text_pool or "tower"
        if self.text_pool not in TEXT_POOLS:
            raise ValueError(f"text_pool must be one of {TEXT_POOLS}, got {self.text_pool!r}")
        if not hasattr(self.model, "token_embedding") and not hasattr(
            getattr(self.model, "text", None), "token_embedding"
        ):
            raise UnsupportedBackbone(
                f"backbone {name!r}: its text tower has no token embedding; token access is "
                "implemented for open_clip's own TextTransformer only"
            )
        text = self._text_parts()
        if text["special"]:
            raise UnsupportedBackbone(
                f"backbone {name!r}: its text tower uses a class token or a padding mask, so "
                "its pooled embedding is not one of its token embeddings"
            )
        self.image_width = image_width(self.model.visual)  # refuses towers without tokens
        self.context_length = int(text["positional_embedding"].shape[0])
        self.tokenizer = _tokenizer(name, tokenizer_override or tokenizer_name, self.context_length)
        # Padding id of open_clip's SimpleTokenizer; HF tokenizers carry their own.
        inner = getattr(self.tokenizer, "tokenizer", None)
        self.pad_id = int(getattr(inner, "pad_token_id", None) or 0)
        projection = text["text_projection"]
        self.embed_dim = int(
            text["transformer"].width
            if projection is None
            else getattr(projection, "out_features", None) or projection.shape[-1]
        )
        self.width = int(text["transformer"].width)
        self.num_prefix_tokens = 1  # one prefix token before the spatial ones (towers.py)
        cfg = open_clip.get_model_preprocess_cfg(self.model)
        cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}
        self.image_size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]
        self.preprocess_cfg = cfg
        # Recorded so a rebuild without the pretrained tag normalises images the same way.
        self.config["preprocess_cfg"] = {
            k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()
        }
        self.preprocess = self.make_transform(train=False)
        self.lock(**locks)

    def lock(
        self,
        lock_image: bool = False,
        lock_image_unlocked_groups: int = 0,
        lock_image_freeze_bn_stats: bool = False,
        lock_text: bool = False,
        lock_text_unlocked_layers: int = 0,
    ) -> None:
        """Freeze towers as open_clip_train's --lock-image/--lock-text do (open_clip's own code)."""
        if lock_image:
            self.model.lock_image_tower(
                unlocked_groups=lock_image_unlocked_groups,
                freeze_bn_stats=lock_image_freeze_bn_stats,
            )
        if lock_text:
            self.model.lock_text_tower(
                unlocked_layers=lock_text_unlocked_layers, freeze_layer_norm=True
            )

    @classmethod
    def from_config(
        cls, config: dict[str, Any], load_pretrained: bool = True, device: str = "cpu"
    ) -> Backbone:
        """Rebuild from ``backbone.config``; ``load_pretrained=False`` when a state dict follows.

        ``device="meta"`` builds the architecture without allocating it (checkpoint.py reads
        its shapes before trusting a config).
        """
        config = dict(config)
        if not load_pretrained:
            config["pretrained"] = None
        return cls(**config, device=device)

    def make_transform(self, train: bool = False):
        """PIL -> normalised tensor at this backbone's size (open_clip's own transform)."""
        cfg = PreprocessCfg(**self.preprocess_cfg)
        return image_transform_v2(cfg, is_train=train)

    # -- text -------------------------------------------------------------------------
    def tokenize(self, texts: list[str], context_length: int | None = None) -> torch.Tensor:
        """Token ids (len(texts), context_length), EOT kept when a text is truncated."""
        context_length = context_length or self.context_length
        if context_length > self.context_length:
            raise ValueError(
                f"context_length={context_length} exceeds the text tower's {self.context_length}"
            )
        return self.tokenizer(list(texts), context_length=context_length)

    def _text_parts(self) -> dict[str, Any]:
        """The text tower's pieces, wherever open_clip put them (CLIP vs CustomTextCLIP)."""
        owner = self.model if hasattr(self.model, "token_embedding") else self.model.text
        return {
            "token_embedding": owner.token_embedding,
            "positional_embedding": owner.positional_embedding,
            "attn_mask": owner.attn_mask,
            "transformer": owner.transformer,
            "ln_final": owner.ln_final,
            "text_projection": owner.text_projection,
            "pool_type": getattr(owner, "text_pool_type", getattr(owner, "pool_type", "argmax")),
            "eos_id": getattr(owner, "text_eos_id", getattr(owner, "eos_id", None)),
            "special": getattr(owner, "cls_emb", None) is not None
            or getattr(owner, "use_pad_mask", False),
        }

    def text_tokens(
        self, tokens: torch.Tensor, layer: int = -1, pooled_only: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(pooled (B, D), tokens (B, L, D) projected or None, mask (B, L) bool).

        Every position goes through ln_final and the text projection, so with the tower's
        pooling tokens[b, eot_b] equals ``encode_text`` exactly when layer=-1; with
        ``text_pool="mean"`` the pooled embedding is the mean of tokens[b, 1:eot_b + 1].
        """
        parts = self._text_parts()
        B, L = tokens.shape
        full = parts["positional_embedding"].shape[0]
        if full < L:
            raise ValueError(f"text of length {L} exceeds the tower's context length {full}")
        causal = parts["attn_mask"]
        if causal is None and full > L:
            # Without a causal mask every position sees the padding: pad to the full context.
            pad = tokens.new_full((B, full - L), self.pad_id)
            pooled, toks, mask = self.text_tokens(torch.cat([tokens, pad], 1), layer, pooled_only)
            return pooled, None if toks is None else toks[:, :L], mask[:, :L]
        transformer = parts["transformer"]
        cast_dtype = transformer.get_cast_dtype()
        x = parts["token_embedding"](tokens).to(cast_dtype)  # (B, L, W)
        x = x + parts["positional_embedding"][:L].to(cast_dtype)
        attn_mask = None if causal is None else causal[:L, :L]
        _, hidden = transformer.forward_intermediates(
            x, attn_mask=attn_mask, indices=[layer], stop_early=True
        )
        x = parts["ln_final"](hidden[-1])  # (B, L, W)
        mask = tokens != self.pad_id
        if self.text_pool == "mean":
            # Every word after the start token, EOT included; projection is linear, so this
            # is the mean of the projected tokens.
            words = mask.clone()
            words[:, 0] = False
            weights = words.to(x.dtype) / words.sum(1, keepdim=True).clamp(min=1)
            pooled = torch.einsum("bl,blw->bw", weights, x)
        else:
            pooled = text_global_pool(x, tokens, parts["pool_type"], eos_token_id=parts["eos_id"])
        pooled = self._project_text(pooled)  # (B, D)
        projected = None if pooled_only else self._project_text(x)  # (B, L, D)
        return pooled, projected, mask

    def _project_text(self, x: torch.Tensor) -> torch.Tensor:
        projection = self._text_parts()["text_projection"]
        if projection is None:
            return x
        return projection(x) if isinstance(projection, nn.Module) else x @ projection

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Pooled, projected, unnormalised text embedding (B, D); any length <= context."""
        return self.text_tokens(tokens, pooled_only=True)[0]

    # -- image ------------------------------------------------------------------------
    def image_tokens(
        self, images: torch.Tensor, layer: int = -1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled (B, D), tokens (B, 1 + N, D)): one prefix token, then spatial, projected.

        At layer=-1 pooled is the tower's own pooled output (== encode_image); see towers.py
        for what the prefix and the spatial tokens are per tower kind.
        """
        return image_tokens(self.model.visual, images, layer)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled, projected, unnormalised image embedding (B, D)."""
        return self.model.encode_image(images)


def build_backbone(
    name: str,
    pretrained: str | None = None,
    image_size: int | None = None,
    context_length: int | None = None,
    **overrides: Any,
) -> Backbone:
    """A Backbone from a small-config name ("tiny", "small") or any open_clip model name.

    ``pretrained`` is an open_clip tag or a local weights file; ``force_quick_gelu=True``
    forces QuickGELU (OpenAI weights need it; the "-quickgelu" names already set it);
    ``lock_image``/``lock_text`` and their unlocked counts freeze towers. Other overrides
    go to ``open_clip.create_model`` (e.g. ``embed_dim``, ``vision_cfg``), merged into small
    configs field by field.
    """
    return Backbone(name, pretrained, image_size, context_length, **overrides)
