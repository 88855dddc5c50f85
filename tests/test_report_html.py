"""report.html: self-contained (tables, embedded images, MLflow link) and renders in Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from components.platform.report_html import write_report_html

ROOT = Path(__file__).resolve().parents[1]
REPORT = "# train_occlip on clevr_pairs\n\n| model | swap_att |\n|---|---|\n| occlip | 0.812 |\n"


def _out_with_plot(tmp_path: Path) -> Path:
    (tmp_path / "plots").mkdir(parents=True)
    Image.new("RGB", (64, 48), (200, 30, 30)).save(tmp_path / "plots" / "curves.png")
    return tmp_path


def test_report_html_has_tables_embedded_images_and_mlflow_link(tmp_path):
    out = _out_with_plot(tmp_path)
    path = write_report_html(out, REPORT, "sqlite:////tmp/m.db", "3", "abc123")
    page = path.read_text()
    assert "<table>" in page and "<td>0.812</td>" in page
    assert page.count('src="data:image/png;base64,') == 1 and "plots/curves.png" in page
    assert "#/experiments/3/runs/abc123" in page and "mlflow ui --backend-store-uri" in page
    external = re.findall(r'src="(?!data:)([^"]+)"', page)
    assert external == []  # nothing to fetch: the page works offline


def test_report_html_without_mlflow_run_or_images(tmp_path):
    page = write_report_html(tmp_path, "# empty\n\nno numbers yet\n").read_text()
    assert "MLflow run" not in page and "<h1>empty</h1>" in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_report_html_renders_in_headless_chromium(tmp_path):
    out = _out_with_plot(tmp_path / "out")
    report = write_report_html(out, REPORT)
    png = tmp_path / "shot.png"
    checker = ROOT / "benchmarks" / "check_report_html.py"  # run as the script it is
    args = [f"report={report}", f"png={png}", "width=600", "height=400"]
    subprocess.run([sys.executable, str(checker), *args], check=True, cwd=ROOT)
    shot = Image.open(png).convert("RGB")
    assert shot.size == (600, 400)
    colours = shot.getcolors(maxcolors=1 << 20)
    assert len(colours) > 10  # text and table lines were drawn, not a blank page
    assert any(r > 150 and g < 80 and b < 80 for _, (r, g, b) in colours)  # the embedded plot
