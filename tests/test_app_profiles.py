"""Calibration profiles on the Analyze photos page, through Streamlit's AppTest with the committed default model.

A real twface photo goes through the page with and without a stored profile; the expected answers come from
fer_core itself. A profile of another model is refused on the page, and a profile can be made from labelled
photos there.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED, need

from fer_core.serve.live import load_srtp_safely

pytestmark = pytest.mark.slow

load_srtp_safely()

from streamlit.testing.v1 import AppTest  # noqa: E402

from fer_core.runs import defaults  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 240
TWFACE = SHARED / "twface"
PERSON = "25"


def rows_of(person: str) -> list[dict]:
    return [r for r in csv.DictReader(open(need(TWFACE / "labels.csv"), newline="", encoding="utf-8"))
            if r["person"] == person]


@pytest.fixture(scope="module")
def env(default_run, tmp_path_factory):
    """A runs folder holding a copy of the default model, and an empty profiles folder, for the app."""
    root = tmp_path_factory.mktemp("profiles_app")
    shutil.copytree(default_run, root / "runs" / defaults.DEFAULT_RUN_ID)
    old = {k: os.environ.get(k) for k in ("FER_RUNS_DIR", "FER_PROFILES_DIR")}
    os.environ["FER_RUNS_DIR"] = str(root / "runs")
    os.environ["FER_PROFILES_DIR"] = str(root / "profiles")
    yield {"run": root / "runs" / defaults.DEFAULT_RUN_ID, "profiles": root / "profiles"}
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def rec(env):
    from fer_core.serve.recognizer import EmotionRecognizer
    return EmotionRecognizer.from_run(env["run"])


@pytest.fixture(scope="module")
def profile(env, rec):
    """A stored profile of one held-out performer: one facs photo per emotion."""
    from fer_core.data.images import read_image_file
    from fer_core.profiles import ProfileStore, make_profile
    shots: dict[str, list] = {}
    for r in rows_of(PERSON):
        if r["performance"] in ("facs", "none") and not shots.get(r["emotion"]):
            shots[r["emotion"]] = [read_image_file(TWFACE / r["image"])]
    p = make_profile(f"Performer {PERSON}", shots, rec)
    ProfileStore().save(p)
    return p


def open_analyze(photo: Path) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/analyze.py")
    at.run()
    at.file_uploader(key="analyze_files").set_value([(photo.name, photo.read_bytes(), "image/jpeg")])
    at.run()
    assert not at.exception, at.exception
    return at


def table_probs(at: AppTest, classes: list[str]) -> np.ndarray:
    return at.dataframe[0].value[classes].to_numpy()


def face_probs(faces, classes) -> np.ndarray:
    return np.array([[f.probabilities[c] for c in classes] for f in faces])


def test_the_picker_applies_a_stored_profile_to_the_photo(env, rec, profile):
    from fer_core.data.images import read_image_file
    photo = TWFACE / next(r for r in rows_of(PERSON) if r["performance"] == "theatric")["image"]
    image = read_image_file(photo)
    plain, calibrated = rec.analyze(image), rec.with_profile(profile).analyze(image)
    assert not np.allclose(face_probs(plain, rec.class_names), face_probs(calibrated, rec.class_names), atol=1e-3)

    at = open_analyze(photo)
    np.testing.assert_allclose(table_probs(at, rec.class_names), face_probs(plain, rec.class_names), atol=2e-3)
    picker = at.selectbox(key="analyze_profile")
    assert profile.name in picker.options
    picker.set_value(profile.name).run()
    assert not at.exception, at.exception
    np.testing.assert_allclose(table_probs(at, rec.class_names), face_probs(calibrated, rec.class_names),
                               atol=2e-3)
    summary = next(m.value for m in at.markdown if "face(s)" in m.value)
    assert f"(profile: {profile.name})" in summary
    assert any(f"calibration profile **{profile.name}**" in c.value for c in at.caption)
    assert any(str(env["profiles"]) in m.value and "Nothing leaves this machine" in m.value
               for m in [*at.markdown, *at.caption])          # where profiles are, and that they stay there


def test_a_profile_of_another_model_is_refused_on_the_page(env, rec, profile):
    from fer_core.profiles import ProfileStore
    foreign = ProfileStore().load(profile.name)
    foreign.name, foreign.model_run, foreign.model_fingerprint = "Other model", "some-other-run", "0" * 16
    ProfileStore().save(foreign)
    photo = TWFACE / next(r for r in rows_of(PERSON) if r["performance"] == "personal_event")["image"]
    at = open_analyze(photo)
    before = table_probs(at, rec.class_names)
    at.selectbox(key="analyze_profile").set_value(foreign.name).run()
    assert not at.exception, at.exception
    assert any("made with model 'some-other-run'" in w.value for w in at.warning)
    np.testing.assert_allclose(table_probs(at, rec.class_names), before, atol=1e-6)
    assert "(profile:" not in next(m.value for m in at.markdown if "face(s)" in m.value)


def test_a_profile_is_made_from_labelled_photos_on_the_page(env, rec):
    from fer_core.profiles import ProfileStore
    files = []
    for r in rows_of("28"):
        if r["performance"] in ("theatric", "none") and r["emotion"] not in {n.split("_")[0] for n, *_ in files}:
            files.append((f"{r['emotion']}_1.jpg", (TWFACE / r["image"]).read_bytes(), "image/jpeg"))
    photo = TWFACE / rows_of("28")[-1]["image"]
    at = open_analyze(photo)
    at.file_uploader(key="analyze_shots").set_value(files).run()
    assert not at.exception, at.exception
    at.text_input(key="analyze_profile_name").input("Performer 28").run()
    at.button(key="analyze_save_profile").click().run()
    assert not at.exception, at.exception
    assert any("Saved profile Performer 28" in s.value for s in at.success), [e.value for e in at.error]
    saved = ProfileStore().load("Performer 28")
    assert sum(saved.shots.values()) == len(files) and set(saved.prototypes) == {n.split("_")[0] for n, *_ in files}
