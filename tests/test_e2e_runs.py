"""The Runs and Compare pages in a real browser: a real run's curves and confusion matrix are drawn by
plotly, and a fresh clone's committed store and reference collections show on Runs and Compare.

Also saves screenshots of Runs and Compare (the committed store) and Train into docs/screenshots/.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess

import pytest
from e2e_helpers import (
    StreamlitServer,
    assert_no_exception,
    launch_chromium,
    open_page,
    runs_dir_with,
    screenshot,
    wait_for_app,
)

from fer_core.runs import archive, defaults
from fer_core.runs import store

pytestmark = pytest.mark.browser

playwright_sync = pytest.importorskip("playwright.sync_api")

# Plotly attaches the figure's traces to its div: read the trace types of the charts that are visible.
VISIBLE_TRACE_TYPES = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .filter(el => el.offsetParent !== null && el.getBoundingClientRect().width > 0)
    .map(el => (el.data || []).map(t => t.type))"""


@contextlib.contextmanager
def app_in_browser(runs_root):
    """A server on the run store `runs_root` and a browser page (1400x1600); checks the server outlived the test."""
    with StreamlitServer(runs_root) as server, playwright_sync.sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            yield server, browser.new_page(viewport={"width": 1400, "height": 1600})
        finally:
            browser.close()
        assert server.alive(), server.log_tail()


def visible_heatmap_z(page) -> list:
    return page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .filter(el => el.offsetParent !== null && el.data && el.data[0].type === 'heatmap')[0].data[0].z""")


def settle(page, url: str | None = None) -> None:
    """Open `url` (if given) and wait until the script is idle and no element is still a loading skeleton."""
    if url:
        open_page(page, url)
        # the first paint lists the pages/ folder; the app's own navigation (st.navigation) replaces it
        page.get_by_test_id("stSidebarNavLink").filter(has_text="Analyze photos").wait_for(timeout=120_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=120_000)
    wait_for_app(page)


def open_tab(page, label: str) -> None:
    page.get_by_role("tab", name=label).click()
    settle(page)


def visible_chart_types(page, at_least: int) -> list[list[str]]:
    page.wait_for_function(f"() => ({VISIBLE_TRACE_TYPES})().length >= {at_least}", timeout=60_000)
    return page.evaluate(VISIBLE_TRACE_TYPES)


@pytest.fixture
def e2e_store(tmp_path, tiny_run):
    runs_root = runs_dir_with(tmp_path / "runs", tiny_run)
    damaged = runs_root / "20200101-000000-damaged-0000"
    damaged.mkdir()
    (damaged / "run.json").write_text("{broken")
    return runs_root


def test_runs_page_draws_a_real_runs_curves_and_confusion_matrix(e2e_store, tiny_run):
    metrics = store.read_json(tiny_run / "metrics.json")
    with app_in_browser(e2e_store) as (server, page):
        # a shared deep link as the server's very first request: it must open inside the app's own
        # navigation, not as a bare pages/ script whose sidebar lists every file in pages/
        settle(page, f"{server.url}/runs?run={tiny_run.name}")
        assert_no_exception(page)
        nav = [t.split()[-1] for t in page.get_by_test_id("stSidebarNavLink").all_inner_texts()]
        assert nav == ["Home", "photos", "video", "Webcam", "Train", "Runs", "Compare", "Dataset"], nav
        assert page.title() == "Emotion Studio"
        assert page.get_by_role("heading", name="tiny").count() >= 1      # the run chosen by ?run=
        page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)   # drawn late on a busy machine

        open_tab(page, "Curves")
        curves = visible_chart_types(page, 1)
        assert ["scatter"] * 5 in curves, curves                          # loss x2, accuracy x2, lr

        open_tab(page, "Confusion & per class")
        charts = visible_chart_types(page, 2)
        assert ["heatmap"] in charts and ["bar", "bar", "bar"] in charts, charts
        assert visible_heatmap_z(page) == metrics["test"]["confusion_matrix"]
        assert page.locator(".js-plotly-plot .heatmaplayer").count() >= 1  # actually drawn, not just data
        assert_no_exception(page)

        settle(page, f"{server.url}/compare")
        assert_no_exception(page)
        visible_chart_types(page, 3)

        settle(page, f"{server.url}/train")
        assert_no_exception(page)
        page.get_by_text("Launch training").wait_for()
        screenshot(page, "train")


def committed_run_store(dst):
    """A copy of exactly the files git tracks under runs/: the run store of a fresh clone."""
    repo = defaults.REPO_ROOT
    files = subprocess.run(["git", "ls-files", "runs"], cwd=repo, capture_output=True, text=True)
    if files.returncode != 0 or not files.stdout.strip():
        pytest.skip("not a git checkout with committed runs")
    for rel in files.stdout.splitlines():
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, dst / rel)
    return dst / "runs"


def test_a_fresh_clone_shows_the_reference_runs_on_compare_and_runs(tmp_path):
    """The committed store (the headline models) and the committed reference collections (results/), as a fresh
    clone opens them: Compare has every k-fold group, Runs folds each collection into one row."""
    runs_root = committed_run_store(tmp_path)
    default = runs_root / defaults.DEFAULT_RUN_ID
    groups = [s["group"] for s in archive.kfold_summaries()]
    assert groups and (default / "model.keras").is_file()
    default_name = store.read_json(default / "run.json")["name"]
    with app_in_browser(runs_root) as (server, page):
        settle(page, f"{server.url}/compare")
        assert_no_exception(page)
        # the default model is preselected first, then standalone runs, not the committed fold runs
        label, *chips = [t for t in page.get_by_test_id("stMultiSelect").inner_text().splitlines() if t.strip()]
        assert label == "Runs to compare" and chips[0].startswith(default_name), chips
        assert len(chips) == 4 and not any("-fold" in c for c in chips), chips
        visible_chart_types(page, 3)
        screenshot(page, "compare")
        open_tab(page, "K-fold cross-validation")
        for g in groups:                                        # every k-fold summary has its per-fold view
            assert page.get_by_text(f"{g}: per fold", exact=True).count() == 1, g

        settle(page, f"{server.url}/runs?run={defaults.DEFAULT_RUN_ID}")
        assert_no_exception(page)
        assert page.get_by_role("heading", name=default_name).count() >= 1
        caption = page.get_by_text(re.compile(r"^\d+ of \d+ runs in \d+ rows")).inner_text()
        rows = int(re.search(r"in (\d+) rows", caption)[1])
        own = len([d for d in runs_root.iterdir() if d.is_dir()])      # the headline models (and a run between
        assert rows == own + len(archive.read_collections()) <= 20, caption   # sittings), one row per collection
        open_tab(page, "Confusion & per class")
        visible_chart_types(page, 2)
        assert visible_heatmap_z(page) == store.read_json(default / "metrics.json")["test"]["confusion_matrix"]
        screenshot(page, "runs")
