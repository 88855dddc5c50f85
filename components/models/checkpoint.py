"""Checkpoint = a directory with config.json and model.safetensors (docs/architecture.md, Checkpoint).

config.json holds {"name": model.name, "config": model.config, "extra": {...}}: enough for
``registry.create_model`` to rebuild the model without its pretrained weights, which the
state dict then replaces.

A config is not trusted before it is checked against the weights: the model is first built
on the ``meta`` device (shapes only, nothing allocated) and its tensor names and shapes are
compared with the safetensors header, so a config.json claiming width 16384 x 64 layers is
refused in seconds instead of allocating hundreds of GB. Every error names the file at fault.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model
from torch import nn

from components.models.registry import create_model
from components.platform.config import InputError
from components.platform.storage import child, is_file, is_uri, local_copy, read_bytes

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SHOWN = 5  # keys listed per kind of mismatch


class CheckpointError(InputError):
    """A checkpoint directory whose files are missing, unreadable or disagree."""


def save_checkpoint(
    model: nn.Module, directory: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write config.json and model.safetensors into ``directory`` (created); return it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "module", model)  # unwrap DDP
    payload = {"name": model.name, "config": model.config, "extra": extra or {}}
    (directory / CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True))
    save_model(model, str(directory / WEIGHTS_FILE))
    return directory


def read_checkpoint_config(directory: str | Path) -> dict[str, Any]:
    """The parsed config.json of a checkpoint directory (local or a URI), checked for the
    keys a rebuild needs."""
    path = child(directory, CONFIG_FILE)  # a Path under a local folder, else a URI
    if not is_file(str(path)):
        raise CheckpointError(f"{path}: not a bindkit checkpoint (no {CONFIG_FILE})")
    text = read_bytes(str(path))
    try:
        payload = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
        raise CheckpointError(f"{path}: expected an object with a string 'name'")
    config = payload.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("backbone"), dict):
        raise CheckpointError(f"{path}: expected 'config' with a 'backbone' object")
    return payload


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors header, without reading any tensor."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (a checkpoint needs {WEIGHTS_FILE})")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118 (not iterable)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from err


def _listed(keys: list[str]) -> str:
    more = f" (+{len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more


def _mismatch_message(
    path: Path, missing: list[str], unexpected: list[str], shapes: list[str]
) -> str | None:
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys: {_listed(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys: {_listed(unexpected)}")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches (file vs config): {_listed(shapes)}")
    if not parts:
        return None
    return f"{path}: weights do not fit {path.parent / CONFIG_FILE}: " + "; ".join(parts)


def check_weights_fit(skeleton: nn.Module, path: Path) -> None:
    """Refuse weights whose names or shapes disagree with the model the config describes."""
    file_shapes = weight_shapes(path)
    # Tied tensors are stored once: a name is present if any of its aliases is.
    aliases: dict[int, list[str]] = {}
    for name, tensor in skeleton.state_dict(keep_vars=True).items():
        aliases.setdefault(id(tensor), []).append(name)
    expected = {names[0]: names for names in aliases.values()}
    shapes = {name: tuple(t.shape) for name, t in skeleton.state_dict(keep_vars=True).items()}
    missing = sorted(n for n, group in expected.items() if not set(group) & file_shapes.keys())
    unexpected = sorted(file_shapes.keys() - shapes.keys())
    mismatched = sorted(
        f"{k} {list(file_shapes[k])} vs {list(shapes[k])}"
        for k in file_shapes.keys() & shapes.keys()
        if file_shapes[k] != shapes[k]
    )
    message = _mismatch_message(path, missing, unexpected, mismatched)
    if message:
        raise CheckpointError(message)


def _build(payload: dict[str, Any], device: str = "cpu") -> nn.Module:
    options = dict(payload["config"])
    backbone = options.pop("backbone")
    return create_model(payload["name"], backbone, load_pretrained=False, device=device, **options)


def load_checkpoint(directory: str | Path, map_location: str = "cpu") -> nn.Module:
    """Rebuild the model from config.json and load model.safetensors into it (strict).

    The config is checked against the weights' header on a meta-device skeleton first.
    A URI (``s3://bucket/run/clip/checkpoint``) is downloaded to a temporary folder first;
    errors then name the URI, not the temporary copy.
    """
    if not is_uri(str(directory)):
        return _load_local(Path(directory), map_location)
    uri = str(directory).rstrip("/")
    read_checkpoint_config(uri)  # a missing or broken config.json fails before the download
    with local_copy(uri) as local:
        try:
            return _load_local(local, map_location)
        except CheckpointError as err:
            raise CheckpointError(str(err).replace(str(local), uri)) from err


def _load_local(directory: Path, map_location: str) -> nn.Module:
    payload = read_checkpoint_config(directory)
    weights = directory / WEIGHTS_FILE
    config_path = directory / CONFIG_FILE
    try:
        skeleton = _build(payload, device="meta")
    except (TypeError, ValueError, KeyError, RuntimeError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"{config_path}: cannot build its model ({err})") from err
    check_weights_fit(skeleton, weights)
    del skeleton
    model = _build(payload)
    try:
        missing, unexpected = load_model(model, str(weights), strict=False, device="cpu")
    except (SafetensorError, OSError, RuntimeError) as err:
        raise CheckpointError(f"{weights}: cannot load ({err})") from err
    message = _mismatch_message(weights, sorted(missing), sorted(unexpected), [])
    if message:
        raise CheckpointError(message)
    return model.to(map_location)
