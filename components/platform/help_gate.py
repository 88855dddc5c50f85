"""Imported first by every entry script so ``--help`` answers before torch and Ray load.

An entry script's own imports take seconds (torch, Ray, MLflow); importing this module
before them lets ``python pipelines/NAME.py --help`` print the keys read from the config
dataclass's source (components/platform/confighelp.py) and exit 0 without paying for them.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _answer_help() -> None:
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if script is None or not ({"-h", "--help"} & set(sys.argv[1:])):
        return
    from components.platform.confighelp import ROOT, format_help

    if Path(script).resolve().parent.parent != ROOT:  # only our own entry scripts
        return

    sys.stdout.write(format_help(Path(script)))
    raise SystemExit(0)


_answer_help()
