"""The app's caches of loaded models and read datasets are keyed on the files they were made from: a model
replaced in place while the app runs (re-trained, re-exported) and a dataset that gained faces are read again.

(Streamlit leaves arguments whose name starts with '_' out of a cache's key: a file time passed that way
never reached the key, so the first model loaded was served until the server restarted.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_core.serve.live import load_srtp_safely

pytestmark = pytest.mark.slow

load_srtp_safely()   # before anything imports streamlit_webrtc in this process (see fer_core.live)

from streamlit.testing.v1 import AppTest  # noqa: E402

from fer_core.runs import defaults  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MODEL_FILES = ("model.keras", "model.tflite", "export.json", "calibration.json", "run.json", "metrics.json")


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=240)
    at.run()
    at.switch_page(page)
    at.run()
    return at


def model_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Model:"))


def test_a_model_replaced_while_the_app_runs_is_loaded_again(default_run, photos, tmp_path, monkeypatch):
    other = defaults.RUNS_DIR / defaults.FERPLUS_RUN_ID          # FER+: 8 classes, contempt among them
    if not (other / "model.keras").is_file():
        pytest.skip(f"{other} has no model.keras")
    run = tmp_path / "runs" / defaults.DEFAULT_RUN_ID
    shutil.copytree(default_run, run, ignore=shutil.ignore_patterns("evaluations", "*.csv", "events.*"))
    monkeypatch.setenv("FER_RUNS_DIR", str(run.parent))
    at = open_page("pages/analyze.py")
    at.file_uploader(key="analyze_files").set_value([("p.jpg", (photos / "2008_001322.jpg").read_bytes(),
                                                      "image/jpeg")])
    at.run()
    assert not at.exception, at.exception
    assert "contempt" not in model_caption(at)
    for name in MODEL_FILES:                 # the run trained again in place, now on FER+
        (run / name).unlink(missing_ok=True)
        if (other / name).is_file():
            shutil.copy(other / name, run / name)
    info = json.loads((run / "run.json").read_text())
    info["name"] = "retrained"
    (run / "run.json").write_text(json.dumps(info))
    at.run()
    assert not at.exception, at.exception
    assert "contempt" in model_caption(at), model_caption(at)


def test_a_dataset_that_gained_faces_is_read_again(tmp_path, monkeypatch):
    data = tmp_path / "faces"
    rng = np.random.default_rng(2)

    def add(cls: str, n: int, start: int = 0) -> None:
        (data / cls).mkdir(parents=True, exist_ok=True)
        for i in range(start, start + n):
            Image.fromarray(rng.integers(0, 255, (48, 48), dtype=np.uint8)).save(data / cls / f"{i}.png")
    add("happy", 3)
    add("sad", 2)
    monkeypatch.setenv("FER_DATA_ROOTS", str(tmp_path))
    at = open_page("pages/dataset.py")
    at.text_input(key="dataset_path").set_value(str(data)).run()
    assert not at.exception and any("5 faces" in m.value for m in at.markdown)
    add("happy", 4, start=3)               # into an existing class folder: the top folder's time stays
    at.run()
    assert not at.exception
    assert any("9 faces" in m.value for m in at.markdown), [m.value for m in at.markdown]
