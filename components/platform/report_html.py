"""report.html beside report.md: one self-contained page a person opens from out/.

The page carries the report's tables, every plot and failure gallery under out/ (each a
PNG of images with their caption, negative and scores) embedded as data URIs, and how to
reach the MLflow run, so it can be mailed or opened on a laptop with no server and no
network. Markdown is rendered with markdown-it (CommonMark + tables).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

MAX_IMAGES = 40  # a sweep can write hundreds of PNGs; the page stays a few MB
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr:nth-child(even) { background: #f6f6f6; }
code, pre { background: #f3f3f3; padding: 0.1em 0.3em; }
figure { margin: 1.5em 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; border: 1px solid #ddd; }
.mlflow { background: #eef5ff; padding: 0.6em 1em; border-radius: 4px; font-size: 0.9em; }
"""


def _markdown(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def _figure(path: Path, out: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    name = html.escape(str(path.relative_to(out)))
    return (
        f'<figure><img alt="{name}" src="data:image/png;base64,{data}">'
        f"<figcaption>{name}</figcaption></figure>"
    )


def _mlflow_block(tracking_uri: str | None, experiment_id: str | None, run_id: str | None) -> str:
    if not run_id:
        return ""
    ui = f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id}"
    if tracking_uri and tracking_uri.startswith(("http://", "https://")):
        ui = f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        how = ""
    else:
        how = f" (start it with <code>mlflow ui --backend-store-uri {html.escape(tracking_uri or '')}</code>)"
    return (
        f'<p class="mlflow">MLflow run <code>{html.escape(run_id)}</code>: '
        f'<a href="{html.escape(ui)}">open in the MLflow UI</a>{how}</p>'
    )


def write_report_html(
    out: str | Path,
    report_md: str,
    tracking_uri: str | None = None,
    experiment_id: str | None = None,
    run_id: str | None = None,
) -> Path:
    """Render ``report_md`` plus every PNG under ``out`` into ``out/report.html``."""
    out = Path(out)
    images = sorted(p for p in out.rglob("*.png") if "ray" not in p.relative_to(out).parts)
    shown = images[:MAX_IMAGES]
    title = next((line[2:] for line in report_md.splitlines() if line.startswith("# ")), "report")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        _mlflow_block(tracking_uri, experiment_id, run_id),
        _markdown(report_md),
    ]
    if shown:
        parts.append("<h2>Plots and examples</h2>")
        parts += [_figure(path, out) for path in shown]
    if len(images) > len(shown):
        parts.append(f"<p>{len(images) - len(shown)} more PNGs are in the folder.</p>")
    parts.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts))
    return path
