"""Home: what the app does, which model answers, and where to go next."""

from __future__ import annotations

import streamlit as st

from fer_core.runs import store
from pages._common import default_run_path, ensure_app_navigation, literal
from pages._registry import home_links

ensure_app_navigation()

st.title("Emotion Studio")
st.markdown(
    "Finds the faces in photos or a live webcam and tells which emotion each one shows.  \n"
    "Train your own models on FER2013, CK+ or any folder of labelled faces, and compare them.  \n"
    "Photos are analysed by the server running this app and are not stored."
)

st.subheader("Model in use")
run_path = default_run_path()
if run_path is None:
    st.warning("No trained model yet. Train one on the Train page (or restore the default run in runs/); "
               "Analyze and Webcam need one.")
else:
    run = store.read_run(run_path)
    classes = run["info"].get("class_names") or (run["metrics"] or {}).get("class_names") or []
    acc = run["test_accuracy"]
    st.metric("Run", literal(run["name"]))          # its own row: in a third of the page a long name was cut
    cols = st.columns(2)
    cols[0].metric("Dataset", run["dataset"] or "unknown")
    cols[1].metric("Test accuracy", f"{acc:.1%}" if acc is not None else "not evaluated")
    st.markdown(f"**Backbone:** {run['backbone'] or 'unknown'} · **Classes ({len(classes)}):** "
                + (", ".join(classes) if classes else "unknown"))
    st.caption(f"Folder: {run['path']}. Analyze and Webcam start with this model; pick another there.")

st.subheader("Go to")
for column, entries in zip(st.columns(2), (home_links(0), home_links(1))):
    with column:
        for p in entries:
            st.page_link(p.path, label=f"{p.title}: {p.blurb}", icon=p.icon)
