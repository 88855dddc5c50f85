"""One config loader for every pipeline and sweep: dataclass defaults < YAML file < CLI.

A pipeline declares its config as a dataclass; `load_config` merges the YAML given with
``--config F`` (or the pipeline's default file) and ``key=value`` (or ``--key=value``)
dotted overrides, type-checks the result against the dataclass and runs each dataclass's
``validate()`` so a typo or an out-of-range value fails before any work starts.
The entry every pipeline goes through (``run_pipeline``, ``cli``) is in cli.py, above this
module, so loading a config never imports the output and tracking modules.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

T = TypeVar("T")
FLAGS = ("--debug",)


class ConfigError(ValueError):
    """A config file or override that does not fit the pipeline's dataclass."""


class InputError(ValueError):
    """Input that cannot be used as given (a checkpoint, a data file, a benchmark file):
    the entry point says so in one line naming it, exit code 2."""


class InvalidValue(ConfigError):
    """A key whose value is out of its allowed range or set of choices."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not allowed: {allowed}")


def check(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise InvalidValue naming ``key``, ``value`` and ``allowed`` unless ``ok``."""
    if not ok:
        raise InvalidValue(key, value, allowed)


def check_path(key: str, value: str, kind: str = "dir") -> None:
    """A ``kind`` ("dir" or "file") that must exist: a local path, or a URI looked up on its
    filesystem (``s3://bucket/shards``), so a typo is one line before Ray starts."""
    from components.platform.storage import is_uri, probe_exists

    noun = "folder" if kind == "dir" else "file"
    if is_uri(value):
        try:
            found = probe_exists(value)
        except (OSError, ValueError) as err:  # no bucket, no credentials, unreachable, timed out
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise InvalidValue(key, value, f"an existing {noun} ({reason})") from None
        check(found, key, value, f"an existing {noun}")
        return
    path = Path(value)
    found = path.is_dir() if kind == "dir" else path.is_file()
    check(found, key, value, f"an existing {noun}")


SEED_RANGE = (0, 2**32 - 1)  # numpy's Generator and torch.manual_seed both take these
INT_LIMIT = 2**63 - 1  # what torch, Ray and Arrow hold in an int64


def check_seeds(key: str, seeds: Any) -> None:
    """One rule for every seed list: non-empty (a run of no seed reports nothing), distinct
    (a seed twice is one run counted twice), each in numpy's seed range."""
    seeds = list(seeds)
    check(bool(seeds), key, seeds, "a non-empty list of seeds")
    check(
        len(set(seeds)) == len(seeds),
        key,
        seeds,
        "distinct seeds (a repeated seed trains the same model twice)",
    )
    for seed in seeds:
        check_seed(key, seed)


def check_seed(key: str, seed: Any) -> None:
    low, high = SEED_RANGE
    check(
        isinstance(seed, int) and low <= seed <= high,
        key,
        seed,
        f"an integer seed in [{low}, {high}]",
    )


def _check_values(config: Any, prefix: str) -> None:
    """Checks that hold for every config, whatever its dataclass says: a NaN learning rate
    or an int past int64 would otherwise fail (or report NaN) after Ray and the data."""
    for item in dataclasses.fields(config):
        key, value = prefix + item.name, getattr(config, item.name)
        if item.name == "seeds":
            check_seeds(key, value)
        elif item.name == "seed":
            check_seed(key, value)
        elif isinstance(value, float):
            check(math.isfinite(value), key, value, "a finite number")
        elif isinstance(value, int) and not isinstance(value, bool):
            check(abs(value) <= INT_LIMIT, key, value, f"an integer of at most {INT_LIMIT}")


def validate_tree(config: Any, prefix: str = "") -> None:
    """Run the shared value checks and ``validate()`` of every dataclass in a config, naming
    keys by their dotted path."""
    if not dataclasses.is_dataclass(config):
        return
    _check_values(config, prefix)
    validate = getattr(config, "validate", None)
    if callable(validate):
        try:
            validate()
        except InvalidValue as err:
            raise InvalidValue(prefix + err.key, err.value, err.allowed) from None
    for item in dataclasses.fields(config):
        validate_tree(getattr(config, item.name), f"{prefix}{item.name}.")


def _empty_is_text(override: str) -> str:
    """``key=`` means the empty string, as a shell user means it (OmegaConf reads it as
    null, which a text field then refuses); ``key=null`` still gives null."""
    return override + '""' if override.endswith("=") else override


def parse_argv(argv: list[str]) -> tuple[Path | None, list[str]]:
    """Split ``[--config F] [k=v | --k=v ...]`` into the file and the dotted overrides."""
    config_path: Path | None = None
    overrides: list[str] = []
    args = [a for a in argv if a not in FLAGS]
    while args:
        arg = args.pop(0)
        if arg == "--config":
            if not args:
                raise ConfigError("--config needs a file path")
            config_path = Path(args.pop(0))
        elif arg.startswith("--config="):
            config_path = Path(arg.split("=", 1)[1])
        elif "=" in arg and not arg.startswith("-"):
            overrides.append(_empty_is_text(arg))
        elif arg.startswith("--") and "=" in arg:
            overrides.append(_empty_is_text(arg[2:]))
        else:
            raise ConfigError(
                f"unexpected argument {arg!r}: use --config FILE and key=value (or --key=value); "
                "--help lists the keys"
            )
    return config_path, overrides


def _known_keys(schema: type, prefix: str = "") -> list[str]:
    """Every dotted key of a config dataclass (for the typo hint)."""
    try:
        hints = typing.get_type_hints(schema)
    except (NameError, TypeError):
        hints = {}
    keys = []
    for item in dataclasses.fields(schema):
        keys.append(prefix + item.name)
        kind = hints.get(item.name)
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            keys += _known_keys(kind, f"{prefix}{item.name}.")
    return keys


def _one_line(err: OmegaConfBaseException, schema: type, source: str) -> str:
    """OmegaConf's multi-line errors as one line naming key, value and what is allowed."""
    key = getattr(err, "full_key", None) or ""
    message = str(getattr(err, "msg", None) or err).splitlines()[0]
    if isinstance(err, ConfigKeyError) and key:
        known = _known_keys(schema)
        # a key that lives in a block (steps -> train.steps) beats a look-alike (suites)
        nested = [k for k in known if k.endswith(f".{key}")]
        close = nested or difflib.get_close_matches(key, known, n=1)
        hint = (
            f"; did you mean {' or '.join(map(repr, close))}?"
            if close
            else "; --help lists the keys"
        )
        return f"unknown key {key!r} ({source}){hint}"
    return f"{key}: {message} ({source})" if key else f"{message} ({source})"


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
        config = OmegaConf.to_object(merged)
    except ConfigError:
        raise
    except (ConfigKeyError, ValidationError) as err:
        source = f"{path}" if path else "defaults"
        if overrides:
            source += f", overrides {' '.join(overrides)}"
        raise ConfigError(_one_line(err, schema, source)) from err
    except ValueError as err:  # a dataclass __post_init__ refusing a value
        raise ConfigError(str(err).splitlines()[0]) from err
    validate_tree(config)
    return config  # type: ignore[return-value]


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
