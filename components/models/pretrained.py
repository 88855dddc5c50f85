"""Where a backbone's weights come from, checked before open_clip is asked to build it.

``pretrained`` may be an open_clip tag ("laion2b_s34b_b88k"), a local weights file (an
open_clip state dict, safetensors, or an open_clip_train checkpoint whose ``state_dict`` has
``module.`` prefixes; open_clip's own loader unwraps both), or empty. Names with an
``hf-hub:`` or ``local-dir:`` schema carry their weights themselves and are passed through.

A tag or an ``hf-hub:`` name that is not in the local Hugging Face cache would download; when
downloads are off (``HF_HUB_OFFLINE=1``, as in tests and air-gapped clusters) that is refused
here with a message naming the way out, instead of a network error deep inside open_clip.
"""

from __future__ import annotations

import os
from pathlib import Path

import open_clip

SCHEMAS = ("hf-hub:", "local-dir:")
HUB_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


class PretrainedError(ValueError):
    """A ``pretrained`` value that cannot be loaded here (unknown tag, missing file, offline)."""


def downloads_allowed() -> bool:
    """False when the Hugging Face hub is switched off for this process."""
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return value not in ("1", "true", "yes", "on")


def _cached(repo: str, filenames: tuple[str, ...]) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(repo, f), str) for f in filenames)


def _refuse_download(name: str, what: str) -> None:
    if not downloads_allowed():
        raise PretrainedError(
            f"backbone {name!r}: {what} is not in the local cache and downloads are off "
            "(HF_HUB_OFFLINE=1); pass a local weights file (pretrained=/path/to/model.bin) "
            "or download it once with network access"
        )


def check_pretrained(name: str, pretrained: str | None) -> str | None:
    """The ``pretrained`` value to give open_clip, or a PretrainedError saying why not."""
    if name.startswith(SCHEMAS):
        if pretrained:
            raise PretrainedError(
                f"backbone {name!r} carries its own weights; pretrained={pretrained!r} would be "
                "ignored: leave pretrained empty"
            )
        if name.startswith("hf-hub:"):
            repo = name[len("hf-hub:") :]
            if not _cached(repo, ("open_clip_config.json",)):
                _refuse_download(name, f"the hub repo {repo!r}")
        return None
    if not pretrained:
        return None
    path = Path(pretrained)
    if path.is_file():
        return str(path)
    tag_cfg = open_clip.get_pretrained_cfg(name, pretrained)
    if not tag_cfg:
        if path.is_dir():
            raise PretrainedError(
                f"pretrained={pretrained!r} is a directory: name a weights file inside it, or "
                f"use backbone.name='local-dir:{pretrained}' for an open_clip model folder"
            )
        tags = open_clip.list_pretrained_tags_by_model(name)
        raise PretrainedError(
            f"pretrained={pretrained!r} for backbone {name!r} is neither a file nor an "
            f"open_clip tag; tags for {name}: {', '.join(tags) or 'none'}"
        )
    repo = "/".join(tag_cfg.get("hf_hub", "").strip("/").split("/")[:2])
    if not repo or not _cached(repo, HUB_WEIGHT_FILES):
        _refuse_download(name, f"pretrained tag {pretrained!r} ({repo or tag_cfg.get('url')})")
    return pretrained
