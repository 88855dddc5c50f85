"""One config loader for every pipeline and sweep: dataclass defaults < YAML file < CLI.

A pipeline declares its config as a dataclass; `load_config` merges the YAML given with
``--config F`` (or the pipeline's default file) and ``key=value`` dotted overrides, and
type-checks the result against the dataclass so a typo fails before any work starts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit the pipeline's dataclass."""


def parse_argv(argv: list[str]) -> tuple[Path | None, list[str]]:
    """Split ``[--config F] [k=v ...]`` into the file and the dotted overrides."""
    config_path: Path | None = None
    overrides: list[str] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--config":
            if not args:
                raise ConfigError("--config needs a file path")
            config_path = Path(args.pop(0))
        elif arg.startswith("--config="):
            config_path = Path(arg.split("=", 1)[1])
        elif "=" in arg and not arg.startswith("-"):
            overrides.append(arg)
        else:
            raise ConfigError(f"unexpected argument {arg!r}: use --config FILE and key=value")
    return config_path, overrides


def load_config(
    schema: type[T], argv: list[str] | None = None, default_file: str | Path | None = None
) -> T:
    """Build a ``schema`` instance from defaults, a YAML file and dotted CLI overrides."""
    config_path, overrides = parse_argv(argv or [])
    path = config_path or (Path(default_file) if default_file else None)
    merged = OmegaConf.structured(schema)
    try:
        if path is not None:
            if not path.exists():
                raise ConfigError(f"config file {path} does not exist")
            merged = OmegaConf.merge(merged, OmegaConf.load(path))
        if overrides:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(overrides))
    except (ConfigKeyError, ValidationError) as err:
        source = f"{path}" if path else "defaults"
        raise ConfigError(f"bad config ({source}, overrides {overrides}): {err}") from err
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict of a config dataclass (for MLflow params and Ray task args)."""
    return dataclasses.asdict(config)


def save_config(config: Any, path: str | Path) -> None:
    """Write the resolved config as YAML so a run can be repeated exactly."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(OmegaConf.to_yaml(OmegaConf.structured(config)))


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys for nested dicts: MLflow params are flat."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
