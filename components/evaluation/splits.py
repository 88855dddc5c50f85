"""Which split a pipeline reads, and why: test splits only in the final evaluation.

Validation is not the test (DESIGN.md): training, early stops, checkpoint choice and design
comparisons read ``train``/``val*``; ``test*`` is read once, for the final table. Pipelines
get every split directory through one ``SplitAccess``, which refuses a test split before
``final()`` and any non-final read after it, and writes its log so a test can check it.
"""

from __future__ import annotations

import json
from pathlib import Path

PURPOSES = ("train", "select", "final")


def is_test_split(split: str) -> bool:
    return split.startswith("test")


class SplitAccess:
    """Hands out split directories under ``data`` and records (split, purpose) in order."""

    def __init__(self, data: Path) -> None:
        self.data = Path(data)
        self.log: list[dict[str, str]] = []
        self.in_final = False

    def final(self) -> None:
        """From here on only the final evaluation reads splits."""
        self.in_final = True

    def path(self, split: str, purpose: str) -> Path:
        """The directory of ``split`` for ``purpose`` (train | select | final)."""
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
        return self.data / split

    def write(self, out: str | Path) -> Path:
        """out/split_access.json: the reads in order, for audits and tests."""
        path = Path(out) / "split_access.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.log, indent=2))
        return path
