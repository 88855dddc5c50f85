"""DCSM's evaluation text protocol (dcsm.md section 3, the authors' run_evals.py).

DCSM's maps are 2D, so its authors evaluate with a prompt prefix and with depth words read
in the image plane; `pipelines/evaluate.py` applies this to DCSM checkpoints only.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from components.evaluation.report import suite_of

DCSM_PREFIXES = {
    "clevr_bind": "An image of a ",
    "whatsup": "An image of ",
    "aro/vg_attribution": "An image of ",
}
DCSM_2D_WORDS = {  # DCSM's maps are 2D: depth words become their image-plane reading
    r" behind ": " above ",
    r" in front of ": " below ",
    r" top\b": " above",
    r" bottom\b": " below",
}
WHATSUP_VERTICAL_WORDS = {r" on\b": " above", r" under\b": " below"}


def dcsm_rewrite(benchmark_name: str) -> Callable[[str], str] | None:
    """DCSM's text handling for a suite, or None where its protocol changes nothing.

    Prefix "An image of a " (CLEVR-bind) / "An image of " (WhatsUp, VG-Attribution); on
    WhatsUp and CLEVR-bind, 3D words become 2D (behind -> above, in front of -> below,
    top -> above, bottom -> below) and, on WhatsUp, on -> above and under -> below.
    """
    family = suite_of(benchmark_name)
    prefix = DCSM_PREFIXES.get(benchmark_name, DCSM_PREFIXES.get(family))
    if prefix is None:
        return None
    words = {}
    if family in ("whatsup", "clevr_bind"):
        words = {**DCSM_2D_WORDS, **(WHATSUP_VERTICAL_WORDS if family == "whatsup" else {})}

    def rewrite(text: str) -> str:
        text = prefix + text  # first, so a caption's first word has its leading space
        for pattern, replacement in words.items():
            text = re.sub(pattern, replacement, text)
        return text

    return rewrite
