"""DCSM's options as one typed block: what a pipeline config nests and the model is built from.

Beside the model (models/dcsm/dcsm.py), as OcclipOptions is beside OC-CLIP, so every entry
point that builds a DCSM scorer reads one set of defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional


@dataclass
class DcsmOptions:
    """DCSM model options (components/models/dcsm/dcsm.py); empty lists mean the defaults."""

    context_length: int = 30  # text tokens per caption
    lexicon: Optional[list[str]] = None  # noqa: UP045 (OmegaConf) None = default; [] = none
    signature_seed: int = 15  # seed of the functional-word signatures
    normalize: str = "per_map"  # per_map | batch (the reference's global z-score)
    head: str = "cnn"  # cnn (reference, size-specific) | pooled (any backbone)
    # similarity map size the head sees (rows, cols)
    pool: list[int] = field(default_factory=lambda: [16, 16])
    channels: int = 4  # CNN head channels
    hidden: int = 128  # head hidden width
    dropout: float = 0.1  # head dropout
    logit_dropout: bool = True  # drop whole maps during training (reference)
    negative_kinds: list[str] = field(default_factory=list)  # empty = every kind
    in_batch_negatives: bool = True  # False: each scene against its own candidates only

    def model_options(self) -> dict[str, Any]:
        options = asdict(self)  # lexicon passes as is: [] means no functional rows
        options["negative_kinds"] = options["negative_kinds"] or None
        return options
