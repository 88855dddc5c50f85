"""report.md of a probe run: what was probed, the bits table and the IsSameObject table."""

from __future__ import annotations

from typing import Any

from components.models.backbone import BackboneConfig


def backbone_label(backbone: BackboneConfig) -> str:
    """The probed backbone in one phrase: its checkpoint, or its name and weights."""
    return backbone.checkpoint or f"{backbone.name} ({backbone.pretrained or 'random init'})"


def probe_report(
    title: str,
    results: dict[str, Any],
    entropies: dict[str, float] | None,
    controls: dict[str, Any] | None,
    pair_policy: str,
) -> str:
    """Markdown: the controls and every layer's binding bits, then IsSameObject accuracy."""
    lines = [f"# {title}", ""]
    if entropies is None:
        lines.append("The world has no exact entropies: binding bits skipped, IsSameObject only.")
    else:
        lines += [
            f"Test-split exact entropies: H(O) = {entropies['H_O']:.2f} bits, "
            f"H(O|F) = {entropies['H_O_given_F']:.2f} bits, H(F) = {entropies['H_F']:.2f} bits.",
            "",
            "## Binding information (test CE at the best-val epoch)",
            "",
            "Controls (same splits and fit): zero input = the floor, feature code (beta* ~ 0), "
            "object code (beta ~ 1). 'above floor' = CE_O(zero) - CE_O.",
            "",
            "| layer | input/family | CE_O | CE_F | B_O | B* | beta | beta* | above floor |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        rows = [(f"control ({c['family']})", n, c) for n, c in (controls or {}).items()]
        rows += [(layer, n, s) for layer, r in results.items() for n, s in r["binding"].items()]
        floor = controls["zero"]["CE_O"] if controls else float("nan")
        for layer, name, s in rows:
            lines.append(
                f"| {layer} | {name} | {s['CE_O']:.2f} | {s['CE_F']:.2f} | {s['B_O']:.2f} | "
                f"{s['B_star']:.2f} | {s['beta']:.3f} | {s['beta_star']:.3f} | "
                f"{floor - s['CE_O']:.2f} |"
            )
    pair_rows = [(layer, f, s) for layer, r in results.items() for f, s in r["same_object"].items()]
    if pair_rows:
        extra = [k for k in pair_rows[0][2] if k.startswith("same_")]
        lines += [
            "",
            f"## IsSameObject (pairs: {pair_policy}, test accuracy)",
            "",
            "| layer | probe | accuracy | constant | " + " | ".join(extra) + " | P(same) |",
            "|---" * (5 + len(extra)) + "|",
        ]
        for layer, family, s in pair_rows:
            lines.append(
                f"| {layer} | {family} | {s['accuracy']:.3f} | {s['constant']:.3f} | "
                + " | ".join(f"{s[k]:.3f}" for k in extra)
                + f" | {s['p_same']:.3f} |"
            )
    return "\n".join(lines) + "\n"
