"""Helpers shared by the pages (the only Streamlit-aware module besides the pages themselves)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import streamlit as st

from fer_core.runs import defaults
from fer_core.runs import store


def ensure_app_navigation() -> None:
    """Every page calls this first. A first request straight to a page URL (say a shared /runs?run=... link)
    reaches Streamlit before streamlit_app.py has declared st.navigation; because pages/ exists, Streamlit then
    runs the page file alone in its old pages-directory mode, with a sidebar listing every file in pages/
    (helpers included). Leaving that mode and rerunning runs the entry script, whose st.navigation opens the
    same page (the page's URL path is the same in both modes). It uses a Streamlit internal, hence the guard.
    Only a session's first run can be such a deep link; checking only then also leaves AppTest alone, which
    puts every run it makes back in the old mode."""
    if st.session_state.get("_navigation_checked"):
        return
    st.session_state["_navigation_checked"] = True
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:   # a Streamlit without the old mode
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False   # what st.navigation itself sets on its first call
        st.rerun()


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def literal(text) -> str:
    """Text a user chose (a run's name) as Streamlit shows it: literally. Streamlit reads Markdown in headers,
    captions, metrics and toasts, so a name holding an image would make every viewer's browser fetch its
    URL; escaping each Markdown character (and folding line breaks) leaves only the characters."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def runs_dir() -> Path:
    """The run store; FER_RUNS_DIR overrides it (tests point it at a temporary folder)."""
    return Path(os.environ.get("FER_RUNS_DIR", defaults.RUNS_DIR))


def completed_runs() -> list[dict]:
    return [r for r in store.list_runs(runs_dir()) if r["status"] == "completed" and r["has_model"]]


def default_run_path() -> Path | None:
    """The committed default model, or else the newest completed run."""
    d = runs_dir() / defaults.DEFAULT_RUN_ID
    if store.model_path(d).is_file():
        return d
    runs = completed_runs()
    return Path(runs[0]["path"]) if runs else None


def release_recognizer(released) -> None:
    """A model (or Grad-CAM's hold on one) leaving its cache: its frozen cycles are collected once the cache
    has let go of it. A model some other holder keeps (a webcam session) is collected at a later release."""
    from fer_core.model.kerasenv import collect_released
    collect_released(released)


@st.cache_resource(show_spinner="Loading the emotion model…", max_entries=4, on_release=release_recognizer)
def get_recognizer(run_path: str, stamp: tuple = ()):
    """One loaded model per run per server (not per page or session). `stamp` (store.model_stamp: the model
    files' times and sizes) is part of the cache key, so a model replaced in place is loaded again; an argument
    named with a leading underscore would be left out of the key."""
    from fer_core.model.kerasenv import freeze_long_lived
    from fer_core.serve.recognizer import EmotionRecognizer
    recognizer = EmotionRecognizer.from_run(run_path)
    freeze_long_lived()          # it lives as long as the cache: keep it out of every rerun's garbage collection
    return recognizer


def recognizer_for(run_path: str | Path):
    """The run's recognizer; a model this version cannot load stops the page with the reason, not a traceback."""
    from fer_core.errors import UserError
    try:
        return get_recognizer(str(run_path), store.model_stamp(run_path))
    except UserError as e:
        st.error(f"{e} Pick another model in the sidebar.")
        st.stop()


def model_picker(key: str = "model") -> Path | None:
    """A select box of completed runs, the default model preselected."""
    runs = completed_runs()
    if not runs:
        st.warning("No trained model yet. Train one on the Train page, or restore the default run in runs/.")
        return None
    default = default_run_path()
    paths = [r["path"] for r in runs]
    index = paths.index(str(default)) if default is not None and str(default) in paths else 0
    # the name alone in the box (the sidebar cut "name — backbone on dataset, test acc" short), the rest below
    choice = st.selectbox("Model", range(len(runs)), index=index, format_func=lambda i: runs[i]["name"], key=key)
    r = runs[choice]
    st.caption(f"{r['backbone']} on {r['dataset']}"
               + (f", test accuracy {r['test_accuracy']:.1%}" if r["test_accuracy"] is not None else ""))
    return Path(paths[choice])


def data_roots_secret():
    """The app's `data_roots` secret, when .streamlit/secrets.toml sets one (fer_core.data_roots owns the rule)."""
    try:
        return st.secrets.get("data_roots")
    except Exception:   # no secrets.toml at all: that is the normal local case
        return None


def readable_path(path: str) -> Path | None:
    """The typed path when the app may read it; else None, with the reason and what to do shown."""
    from fer_core.data_roots import OutsideDataRoots, check_allowed
    try:
        return check_allowed(path, data_roots_secret())
    except OutsideDataRoots as e:
        st.error(str(e))
        return None


DETECTOR_LABELS = {"blazeface": "BlazeFace (MediaPipe): any pose, small faces",
                   "haar": "Haar cascade (OpenCV): frontal faces only"}


def detector_settings(key: str, min_size_default: int = 20):
    """The sidebar's face-detector choice and settings -> (this page session's detector, its settings).

    One detector per page session, made again only when its settings change: kept in the session's state,
    not in a cache shared by sessions (each BlazeFace interpreter serves one thread; a session's script
    and its webcam thread get one each from the detector's per-thread interpreters).
    """
    from fer_core.serve.detectors import DEFAULT_DETECTOR, DETECTORS, make_detector
    st.header("Face detector")
    names = list(DETECTORS)
    name = st.selectbox("Detector", names, index=names.index(DEFAULT_DETECTOR), key=f"{key}_detector",
                        format_func=lambda n: DETECTOR_LABELS.get(n, n))
    min_size = st.slider("Minimum face size (pixels)", 0, 300, min_size_default, step=2, key=f"{key}_min_size",
                         help="Smaller finds small faces in big group photos; larger ignores background clutter.")
    sensitivity = st.slider("Sensitivity", 0.0, 1.0, 0.5, step=0.05, key=f"{key}_sensitivity",
                            help="Higher finds more faces, including some false ones.")
    config = (name, min_size, sensitivity)
    made = st.session_state.get(f"{key}_detector_made")
    if made is None or made[0] != config:
        made = (config, make_detector(name, min_size, sensitivity))
        st.session_state[f"{key}_detector_made"] = made
    return made[1], config
