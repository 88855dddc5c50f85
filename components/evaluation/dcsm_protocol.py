"""DCSM's evaluation text protocol (docs/methods/dcsm.md section 3, the authors' run_evals.py).

DCSM's maps are 2D, so its authors evaluate with a prompt prefix and with depth words read
in the image plane; `pipelines/evaluate.py` applies this to DCSM checkpoints only. WhatsUp's
on -> above / under -> below rewrite the authors apply to *every* model (run_evals.py), so it
is separate: a comparison rewrites every model's WhatsUp captions or none (``text_rewrite``).
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
    """DCSM's text handling for a suite (with WhatsUp's on/under), or None if unchanged."""
    return text_rewrite(benchmark_name, dcsm=True, whatsup_on_under=True)


def text_rewrite(
    benchmark_name: str, dcsm: bool, whatsup_on_under: bool = True
) -> Callable[[str], str] | None:
    """A suite's caption rewrite for one model, or None where nothing changes.

    Every model (``whatsup_on_under``): on WhatsUp, on -> above and under -> below. DCSM only
    (``dcsm``): prefix "An image of a " (CLEVR-bind) / "An image of " (WhatsUp,
    VG-Attribution), and on WhatsUp and CLEVR-bind 3D words become 2D (behind -> above,
    in front of -> below, top -> above, bottom -> below).
    """
    family = suite_of(benchmark_name)
    prefix = DCSM_PREFIXES.get(benchmark_name, DCSM_PREFIXES.get(family)) if dcsm else None
    words = dict(WHATSUP_VERTICAL_WORDS) if whatsup_on_under and family == "whatsup" else {}
    if dcsm and family in ("whatsup", "clevr_bind"):
        words = {**DCSM_2D_WORDS, **words}
    if prefix is None and not words:
        return None
    prefix = prefix or ""

    def rewrite(text: str) -> str:
        text = prefix + text  # first, so a caption's first word has its leading space
        for pattern, replacement in words.items():
            text = re.sub(pattern, replacement, text)
        return text

    return rewrite
