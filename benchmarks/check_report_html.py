"""Render a pipeline's report.html in headless Chromium and save a screenshot to look at.

    python benchmarks/check_report_html.py [report=outputs/evaluate/report.html]
        [png=/tmp/report.png] [width=1200] [height=2400]

Chromium comes from Debian's packages (``apt-get install -y chromium``). It runs with a
fresh profile, no network services and no GPU, so the page must render from its own
bytes: any image or style that needed a server would be missing from the screenshot.
Exits non-zero when Chromium fails or writes no image. The PNG is for a person to look
at; do not commit it.
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


def screenshot(report: Path, png: Path, width: int = 1200, height: int = 2400) -> Path:
    """Render ``report`` to ``png`` with headless Chromium; returns the PNG path."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium not found: apt-get install -y chromium")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={png}",
                report.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    if not png.exists() or png.stat().st_size == 0:
        raise SystemExit(f"chromium wrote no screenshot for {report}")
    return png


def main(argv: list[str]) -> None:
    options = dict(arg.split("=", 1) for arg in argv)
    report = Path(options.get("report", "outputs/evaluate/report.html"))
    if not report.is_file():
        raise SystemExit(f"report={report} does not exist: run a pipeline first")
    png = screenshot(
        report,
        Path(options.get("png", "/tmp/report.png")),
        int(options.get("width", 1200)),
        int(options.get("height", 2400)),
    )
    print(f"{report} -> {png} ({png.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:])
