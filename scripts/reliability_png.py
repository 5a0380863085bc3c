"""`python scripts/reliability_png.py [RUN_DIR] [OUT.png]`: the reliability diagram the Runs page shows for a run
(its test part, before and after its temperature), saved as a PNG for the README.

Plotly's own PNG export needs kaleido, which the project does not install; the figure is loaded as a
self-contained HTML page (plotly.js inline, no network) and photographed by Debian's chromium through
Playwright, the browser the browser tests already use. Defaults: the app's default run, docs/reliability.png.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_core.report.calibrate import run_reliability  # noqa: E402
from fer_core.report.reliability import reliability_figure  # noqa: E402
from fer_core.runs.defaults import DEFAULT_RUN, REPO_ROOT  # noqa: E402

CHROMIUM = os.environ.get("FER_CHROMIUM", "/usr/bin/chromium")


def main(argv: list[str]) -> int:
    run = Path(argv[0]) if argv else DEFAULT_RUN
    out = Path(argv[1]) if len(argv) > 1 else REPO_ROOT / "docs" / "reliability.png"
    rel = run_reliability(run)
    if rel["test"] is None:
        print(f"error: {run} has no usable predictions.csv to draw from", file=sys.stderr)
        return 2
    t = rel["temperature"]
    tau = ((rel["calibration"] or {}).get("logit_adjustment") or {}).get("tau")
    title = f"{run.name}: {rel['test']['num_faces']:,} test faces" + (
        (f", logit adjustment tau {tau:g}" if tau else "") + f", T = {t:.3f}" if t else ", not calibrated")
    fig = reliability_figure(rel["test"]["bins_before"], rel["test"]["bins_after"], title=title)
    fig.update_layout(width=900, height=420, paper_bgcolor="white")
    from playwright.sync_api import sync_playwright
    html = fig.to_html(include_plotlyjs=True, full_html=True, config={"displayModeBar": False})
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless=new", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 920, "height": 440})
        page.set_content(html)
        page.wait_for_selector(".main-svg")
        page.locator(".plotly-graph-div").screenshot(path=str(out))
        browser.close()
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
