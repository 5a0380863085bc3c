"""A run's name is shown as the characters typed, on every page: a name holding a Markdown image must not
make a viewer's browser fetch its URL (Streamlit reads Markdown in headers, captions, metrics, toasts).

What Streamlit would draw is checked by rendering each shown Markdown string with a CommonMark renderer."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from fer_core.serve.live import load_srtp_safely

pytestmark = pytest.mark.slow

load_srtp_safely()   # before anything imports streamlit_webrtc in this process (see fer_core.live)

from streamlit.testing.v1 import AppTest  # noqa: E402

from fer_core.runs import defaults  # noqa: E402

markdown_it = pytest.importorskip("markdown_it")
REPO = Path(__file__).resolve().parent.parent
NAME = "![x](http://example.invalid/a.png) **loud** :red[x]"
KINDS = ("markdown", "caption", "header", "subheader", "metric", "success", "info", "warning", "error", "toast")


@pytest.fixture(scope="module")
def named_runs(default_run, tmp_path_factory):
    runs = tmp_path_factory.mktemp("named_runs")
    dst = runs / defaults.DEFAULT_RUN_ID
    shutil.copytree(default_run, dst, ignore=shutil.ignore_patterns("evaluations", "*.csv", "events.*"))
    shutil.copy(default_run / "history.csv", dst / "history.csv")
    info = json.loads((dst / "run.json").read_text())
    info["name"] = NAME
    (dst / "run.json").write_text(json.dumps(info))
    return runs


def shown_names(at: AppTest) -> list[str]:
    """Every Markdown string on the page that carries the run's name, as HTML a CommonMark renderer makes."""
    md = markdown_it.MarkdownIt("commonmark")
    html = []
    for kind in KINDS:
        for el in at.get(kind):
            text = str(getattr(el, "value", "") or "")
            if "example" in text and "invalid" in text:
                html.append(md.render(text))
    return html


def assert_literal(at: AppTest, where: str) -> None:
    assert not at.exception, at.exception
    html = shown_names(at)
    assert html, f"{where}: the run's name is not shown"
    for h in html:
        assert "<img" not in h, f"{where}: {h}"
        text = re.sub(r"<[^>]+>", "", h)
        assert NAME in text, f"{where}: the name is not shown as typed: {text!r}"


def open_page(runs: Path, monkeypatch, page: str | None) -> AppTest:
    monkeypatch.setenv("FER_RUNS_DIR", str(runs))
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=240)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def test_home_shows_the_name_as_text(named_runs, monkeypatch):
    assert_literal(open_page(named_runs, monkeypatch, None), "Home")


def test_runs_page_header_shows_the_name_as_text(named_runs, monkeypatch):
    at = open_page(named_runs, monkeypatch, "pages/runs.py")
    at.selectbox(key="run_pick").set_value(defaults.DEFAULT_RUN_ID).run()
    assert_literal(at, "Runs")
    assert any("example" in h.value for h in at.header)        # the run's own header


def test_analyze_caption_and_sidebar_picker_show_the_name_as_text(named_runs, monkeypatch, photos):
    at = open_page(named_runs, monkeypatch, "pages/analyze.py")
    picker = at.sidebar.selectbox[0]
    assert NAME in picker.options                 # a select box shows its options as plain text
    at.file_uploader(key="analyze_files").set_value([("a.jpg", (photos / "2008_001322.jpg").read_bytes(),
                                                     "image/jpeg")])
    at.run()
    assert_literal(at, "Analyze")


def test_train_card_shows_the_name_as_text(named_runs, monkeypatch):
    at = open_page(named_runs, monkeypatch, "pages/train.py")
    at.session_state["launched"] = [str(named_runs / defaults.DEFAULT_RUN_ID)]
    at.run()
    assert_literal(at, "Train")
