"""Which split a pipeline reads, and why: test splits only in the final evaluation.

Validation is not the test (DESIGN.md): training, early stops, checkpoint choice and design
comparisons read ``train``/``val*``; ``test*`` is read once, for the final table. Pipelines
get every split directory through one ``SplitAccess``, which refuses a test split before
``final()`` and any non-final read after it, and writes its log so a test can check it.
``data`` and ``out`` may be local folders or URIs (``s3://bucket/shards``).
"""

from __future__ import annotations

import json
from pathlib import Path

from components.data.storage import child, is_dir, write_bytes

PURPOSES = ("train", "select", "final")


def is_test_split(split: str) -> bool:
    return split.startswith("test")


def require_select_split(data: str | Path, split: str) -> None:
    """Refuse, before any training, a selection split ``data`` lacks ("" = no selection):
    worlds built before ``val_heldout`` existed would otherwise fail after training."""
    folder = child(data, split)
    if split and not is_dir(str(folder)):
        raise FileNotFoundError(
            f"select_split={split}: no {folder}; "
            "rebuild the data (worlds now write val_heldout) or set select_split=val"
        )


class SplitAccess:
    """Hands out split directories under ``data`` and records (split, purpose) in order."""

    def __init__(self, data: str | Path) -> None:
        self.data = child(data)  # a Path, or a URI string
        self.log: list[dict[str, str]] = []
        self.in_final = False

    def final(self) -> None:
        """From here on only the final evaluation reads splits."""
        self.in_final = True

    def path(self, split: str, purpose: str) -> str | Path:
        """The directory of ``split`` for ``purpose`` (train | select | final): a Path under
        a local ``data``, a URI string under a URI."""
        if purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {PURPOSES}, got {purpose!r}")
        if (purpose == "final") != self.in_final:
            raise RuntimeError(
                f"split {split!r} read for {purpose!r} "
                + ("after the final evaluation began" if self.in_final else "before final()")
            )
        if is_test_split(split) and purpose != "final":
            raise RuntimeError(
                f"test split {split!r} read for {purpose!r}: model choice must use val splits"
            )
        self.log.append({"split": split, "purpose": purpose})
        return child(self.data, split)

    def write(self, out: str | Path) -> str | Path:
        """out/split_access.json (out local or a URI): the reads in order, for audits and tests."""
        path = child(out, "split_access.json")
        write_bytes(str(path), json.dumps(self.log, indent=2).encode())
        return path
