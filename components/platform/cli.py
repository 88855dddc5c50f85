"""The one entry every pipeline and sweep goes through: parse, validate, lock ``out=``, run.

A ConfigError becomes one line on stderr and exit code 2, so a mistake in a command line
never reaches Ray or MLflow. This module sits above config, jobs and outputs; none of them
imports it, which keeps the platform free of import circles.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from components.platform.config import ConfigError, InputError, load_config
from components.platform.jobs import check_output_location
from components.platform.outputs import run_lock

T = TypeVar("T")
R = TypeVar("R")


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
    config = load_config(schema, argv, default_file)
    out = getattr(config, "out", None)
    check_output_location(str(out or ""))
    if not out:
        return run(config)
    with run_lock(out):
        return run(config)


# Expected failures and their exit codes: a mistake in what the user gave (config, input
# files, a checkpoint) is 2, as argparse does; storage or a service failing at run time is 1.
# Anything else is a bug in bindkit and keeps its traceback.
USER_ERRORS = (
    ConfigError,
    InputError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)
RUNTIME_ERRORS = (OSError, TimeoutError)


def one_line(err: BaseException) -> str:
    """The first line of an error, with its type when the message alone is empty."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def cli(main: Callable[[list[str]], Any], argv: list[str] | None = None) -> None:
    """Run an entry script's ``main(argv)``: an expected failure is one line on stderr and
    exit 2 (config, input) or 1 (runtime), never a traceback.

    ``--debug`` lets the exception through with its traceback.
    """
    argv = sys.argv[1:] if argv is None else argv
    try:
        main(argv)
    except (*USER_ERRORS, *RUNTIME_ERRORS) as err:
        if "--debug" in argv:
            raise
        print(f"error: {one_line(err)}", file=sys.stderr)
        raise SystemExit(2 if isinstance(err, USER_ERRORS) else 1) from None
