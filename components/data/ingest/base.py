"""What a source hands the ingest and the ingest schedules: the shared vocabulary.

The sources (``components.data.ingest.sources``) read a ``SourceSpec`` unit by unit into
``RawSample``s; validation, reading and the build consume both. Both sides import this
module and neither imports the other's internals, so no import circle forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.platform.config import check

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
CAPTION_JSON_KEYS = ("caption", "text", "txt")


@dataclass
class SourceSpec:
    """Where the samples are and how to read them (one dataclass for every kind)."""

    kind: str = "webdataset"  # webdataset | parquet | files | coco | visual_genome | gqa
    path: str = ""  # file, folder, URI, glob or {00000..00009} pattern
    image_root: str = ""  # relative image paths resolve here; "" = beside the source file
    image_column: str = ""  # parquet; "" = the first of image, jpg, png, webp, jpeg
    caption_column: str = "caption"  # parquet
    id_column: str = ""  # parquet; "" = id or key, else file stem + row number
    max_relations: int = 4  # visual_genome / gqa: relations kept per image graph

    def validate(self) -> None:
        kinds = ("webdataset", "parquet", "files", "coco", "visual_genome", "gqa")
        check(self.kind in kinds, "kind", self.kind, f"one of {', '.join(kinds)}")
        check(self.max_relations > 0, "max_relations", self.max_relations, "a positive integer")


@dataclass(frozen=True)
class RawSample:
    """One sample as the source has it; ``error`` set when it could not even be read.

    ``caption`` may still be bytes (checked as strict UTF-8 in validation); ``group`` is
    the key the split is drawn from (the image, so captions of one image share a split);
    ``graph`` is a gold scene graph (dict) from a scene-graph source, else None.
    """

    id: str
    caption: str | bytes | None
    image: bytes | None
    error: str | None = None
    detail: str | None = None
    group: str | None = None
    graph: dict[str, Any] | None = None


@dataclass(frozen=True)
class Unit:
    """One independently readable piece of a source; ``items`` for listed kinds.

    ``reject`` is set for an entry that must not be opened (a FIFO blocks its reader): the
    unit is that one counted reject, and nothing is read.
    """

    index: int
    path: str
    items: tuple[dict[str, Any], ...] = ()
    reject: RawSample | None = None
