"""Which split a run reads, and why: final splits only in the final evaluation.

Validation is not the test (docs/architecture.md): training, early stops, checkpoint choice and design
comparisons read splits whose role is ``train`` or ``select``; a ``final`` split is read
once, for the final table. Every split has its role written in the data's card
(``card.json`` ``split_roles``: worlds and build_shards output alike), so the guard follows
what the data says, not a name prefix. Every read goes through one ``SplitAccess``, which
refuses a final split before ``final()`` and any non-final read after it, and writes its
log so a test can check it. ``data`` and ``out`` may be local folders or URIs.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

from components.platform.config import check
from components.platform.storage import child, exists, is_dir, read_bytes, write_bytes

PURPOSES = ("train", "select", "final")
ROLES = ("train", "select", "final")
AUTO = "auto"  # a select/eval split taken from the data card's roles


def role_from_name(split: str) -> str:
    """The role a split name implies, for worlds declaring splits and for cards written
    before roles were recorded: any name containing "test" (any case) is final."""
    name = split.lower()
    if "test" in name:
        return "final"
    return "train" if name.startswith("train") else "select"


def read_split_roles(data: str | Path) -> dict[str, str]:
    """Split -> role from ``data``'s card.json; an older card's splits get their name's role."""
    card_path = child(data, "card.json")
    if not exists(str(card_path)):
        return {}
    card = json.loads(read_bytes(str(card_path)))
    roles = dict(card.get("split_roles") or {})
    for split in card.get("splits") or {}:
        roles.setdefault(split, role_from_name(split))
    return roles


def default_splits(roles: dict[str, str]) -> tuple[str, str]:
    """(select split, final split) a run uses when the config says ``auto``: held-out
    splits first (a binding world's point), else the plain ``val``/``test`` of own data."""

    def first(role: str, preferred: tuple[str, ...]) -> str:
        named = [s for s in preferred if roles.get(s) == role]
        others = sorted(s for s, r in roles.items() if r == role)
        return (named or others or [""])[0]

    return first("select", ("val_heldout", "val")), first("final", ("test_heldout", "test"))


# The split keys every train-select-test pipeline has, and what each is read for.
TRAIN_SELECT_FINAL = {"train_split": "train", "select_split": "select", "eval_split": "final"}
PURPOSE_ROLES = {"train": ("train",), "select": ("select",), "final": ("select", "final")}


def role_refusal(split: str, roles: dict[str, str], purpose: str) -> str | None:
    """Why ``split`` may not be read for ``purpose`` (None when it may): the one rule both
    the config check and ``SplitAccess`` apply. A split the card does not list takes its
    name's role."""
    role = roles.get(split) or role_from_name(split)
    allowed = PURPOSE_ROLES[purpose]
    if role in allowed:
        return None
    return (
        f"split {split!r} has role {role!r}, not {' or '.join(map(repr, allowed))}: final "
        "splits are read once, for the final table, never to train or choose a model"
    )


def resolve_split(split: str, roles: dict[str, str], purpose: str) -> str:
    """``auto`` -> the card's split for ``purpose`` (select or final); others unchanged."""
    if split != AUTO:
        return split
    select, final = default_splits(roles)
    return select if purpose == "select" else final


def check_split(key: str, split: str, roles: dict[str, str], purpose: str) -> None:
    """One line naming ``key`` unless ``split`` is a split of the data whose role allows
    ``purpose`` (train reads train splits, select reads select splits, final any but train).
    Run at config time, so ``train.val_split=test_heldout`` never reaches training."""
    if not split or not roles:  # "" = not read; no card yet = checked again by SplitAccess
        return
    known = ", ".join(f"{name} ({role})" for name, role in sorted(roles.items()))
    check(split in roles, key, split, f"a split of the data: {known}")
    refusal = role_refusal(split, roles, purpose)
    allowed = " or ".join(PURPOSE_ROLES[purpose])
    check(refusal is None, key, split, f"a split whose role is {allowed} ({refusal})")


def resolve_splits(
    config: Any, roles: dict[str, str], purposes: dict[str, str] = TRAIN_SELECT_FINAL
) -> None:
    """Resolve ``auto`` and check each split key of ``config`` ({dotted key: purpose}) against
    the data's roles, in place: config.yaml then records the split each run really reads."""
    for key, purpose in purposes.items():
        *path, name = key.split(".")
        holder = functools.reduce(getattr, path, config)
        split = resolve_split(getattr(holder, name), roles, purpose)
        check_split(key, split, roles, purpose)
        setattr(holder, name, split)


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
    """Hands out split directories under ``data`` and records (split, purpose, role) in order."""

    def __init__(
        self, data: str | Path, roles: dict[str, str] | None = None, select_split: str = ""
    ) -> None:
        require_select_split(data, select_split)  # before any training, not after it
        self.data = child(data)  # a Path, or a URI string
        self.roles = read_split_roles(data) if roles is None else dict(roles)
        self.log: list[dict[str, str | float]] = []
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
        refusal = role_refusal(split, self.roles, purpose)
        if refusal:
            raise RuntimeError(refusal)
        role = self.roles.get(split) or role_from_name(split)
        self.log.append({"split": split, "purpose": purpose, "role": role, "time": time.time()})
        return child(self.data, split)

    def write(self, out: str | Path) -> str | Path:
        """out/split_access.json (out local or a URI): the reads in order, for audits and tests."""
        path = child(out, "split_access.json")
        write_bytes(str(path), json.dumps(self.log, indent=2).encode())
        return path
