"""One config loader for every pipeline and sweep: dataclass defaults < YAML file < CLI.

A pipeline declares its config as a dataclass; `load_config` merges the YAML given with
``--config F`` (or the pipeline's default file) and ``key=value`` (or ``--key=value``)
dotted overrides, type-checks the result against the dataclass and runs each dataclass's
``validate()`` so a typo or an out-of-range value fails before any work starts.
``run_pipeline`` and ``cli`` are the one entry every pipeline and sweep goes through:
parse, validate, lock ``out=``, run; a ConfigError becomes one line and exit code 2.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

T = TypeVar("T")
R = TypeVar("R")
FLAGS = ("--debug",)


class ConfigError(ValueError):
    """A config file or override that does not fit the pipeline's dataclass."""


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
    from components.data.storage import exists, is_uri

    noun = "folder" if kind == "dir" else "file"
    if is_uri(value):
        try:
            found = exists(value)
        except (OSError, ValueError) as err:  # no such bucket, no credentials, unreachable
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise InvalidValue(key, value, f"an existing {noun} ({reason})") from None
        check(found, key, value, f"an existing {noun}")
        return
    path = Path(value)
    found = path.is_dir() if kind == "dir" else path.is_file()
    check(found, key, value, f"an existing {noun}")


def validate_tree(config: Any, prefix: str = "") -> None:
    """Run ``validate()`` of every dataclass in a config, naming keys by their dotted path."""
    if not dataclasses.is_dataclass(config):
        return
    validate = getattr(config, "validate", None)
    if callable(validate):
        try:
            validate()
        except InvalidValue as err:
            raise InvalidValue(prefix + err.key, err.value, err.allowed) from None
    for item in dataclasses.fields(config):
        validate_tree(getattr(config, item.name), f"{prefix}{item.name}.")


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
            overrides.append(arg)
        elif arg.startswith("--") and "=" in arg:
            overrides.append(arg[2:])
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
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "; --help lists the keys"
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


def run_pipeline(
    schema: type[T],
    run: Callable[[T], R],
    argv: list[str] | None = None,
    default_file: str | Path | None = None,
) -> R:
    """Parse and validate ``argv``, hold ``out=``'s lock, then ``run(config)``.

    Every pipeline and sweep enters here, so none starts Ray or opens an MLflow run
    before its whole config is known to be valid, and no two runs write one ``out=``.
    """
    from components.jobs import check_output_location
    from components.outputs import run_lock

    config = load_config(schema, argv, default_file)
    out = getattr(config, "out", None)
    check_output_location(str(out or ""))
    if not out:
        return run(config)
    with run_lock(out):
        return run(config)


def cli(main: Callable[[list[str]], Any], argv: list[str] | None = None) -> None:
    """Run an entry script's ``main(argv)``; a ConfigError is one line on stderr and exit 2.

    ``--debug`` lets the exception through with its traceback.
    """
    argv = sys.argv[1:] if argv is None else argv
    try:
        main(argv)
    except ConfigError as err:
        if "--debug" in argv:
            raise
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


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
