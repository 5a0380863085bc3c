"""Analyze photos: upload photos, see every face boxed and labelled, with probabilities, a table and downloads.

The work is in fer_core.annotate (decode, detect, classify, draw) and fer_core.gradcam;
this page only lays it out. A bad file becomes an st.error naming it; the other photos go on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from fer_core.runs import store
from fer_core.serve import annotate
from pages._common import (detector_settings, ensure_app_navigation, literal, model_picker, recognizer_for,
                           release_recognizer)
from pages._profiles import make_profile_from_photos, manage_profiles, profile_label, profile_picker

ensure_app_navigation()

DISPLAY_SIDE = 1400     # longest side sent to the browser; downloads keep full resolution


@st.cache_resource(show_spinner="Preparing Grad-CAM…", max_entries=4, on_release=release_recognizer)
def get_gradcam(run_path: str, stamp: tuple = ()):
    """One Grad-CAM model per run per server, like the recognizer, keyed on the model files' stamp too."""
    from fer_core.serve.gradcam import GradCam
    return GradCam(recognizer_for(run_path).model)


def show_probabilities(result: annotate.PhotoResult, class_names: list[str], key: str) -> None:
    """One compact faces x emotions heatmap, keyed by the numbers on the boxes: every class for every face,
    and it grows by one thin row per face, so a crowd of 24 stays readable beside its photo."""
    import plotly.graph_objects as go
    faces, classes, probs = annotate.probabilities_matrix(result, class_names)
    text = [[f"{p:.0%}" for p in row] for row in probs]
    fig = go.Figure(go.Heatmap(z=probs, x=classes, y=faces, text=text, texttemplate="%{text}", zmin=0, zmax=1,
                               colorscale="Blues", showscale=False,
                               hovertemplate="face %{y}<br>%{x}: %{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text="face", type="category")
    fig.update_xaxes(side="top")
    fig.update_layout(height=70 + 26 * len(faces), margin=dict(l=10, r=10, t=40, b=10))
    st.plotly_chart(fig, key=f"chart_{key}")


def show_why(result: annotate.PhotoResult, recognizer, run_path: Path) -> None:
    """Grad-CAM over each face, for the class the model predicted."""
    from fer_core.serve.gradcam import GradCamError, overlay
    try:
        cam = get_gradcam(str(run_path), store.model_stamp(run_path))
    except GradCamError as e:
        st.info(f"Grad-CAM is not available for this model: {e}")
        return
    heat, _ = cam.heatmaps(annotate.model_inputs(recognizer, result))
    crops = annotate.face_crops(result, margin=0.0)
    st.caption("Red = the regions that pushed the model most towards its answer.")
    cols = st.columns(min(len(crops), 6))
    for i, (crop, h, face) in enumerate(zip(crops, heat, result.faces)):
        with cols[i % len(cols)]:
            st.image(annotate.to_rgb(overlay(crop, h)), caption=f"face {i + 1}: {face.emotion}",
                     width=160)


def show_photo(result: annotate.PhotoResult, recognizer, run_path: Path, key: str) -> None:
    st.subheader(result.name)
    if not result.faces:
        st.info(f"No face found in {result.name}. Try a smaller minimum face size or a higher sensitivity "
                "in the sidebar, or classify the whole photo as one face.")
        st.image(annotate.to_rgb(result.image, DISPLAY_SIDE), width=480)
        return
    left, right = st.columns([3, 2])
    with left:
        st.image(annotate.to_rgb(result.annotated, DISPLAY_SIDE))
        st.download_button("Download annotated image (PNG)", annotate.encode_png(result.annotated),
                           file_name=f"{Path(result.name).stem}-emotions.png", mime="image/png",
                           key=f"png_{key}", on_click="ignore")
    with right:
        what = "the whole photo" if result.whole_image else f"{len(result.faces)} face(s)"
        st.markdown(f"**{what}:** " + ", ".join(f"{i}: {f.emotion} {f.confidence:.0%}{profile_label(f)}"
                                              for i, f in enumerate(result.faces, start=1)))
        show_probabilities(result, recognizer.class_names, key)
    if st.toggle("Why? Show where the model looked (Grad-CAM)", key=f"why_{key}"):
        show_why(result, recognizer, run_path)


st.title("Analyze photos")
st.write("Upload photos: each face is found, boxed and labelled with its emotion.")

with st.sidebar:
    st.header("Model")
    run_path = model_picker(key="analyze_model")
    detector, _ = detector_settings("analyze")

uploads = st.file_uploader("Photos", type=annotate.UPLOAD_TYPES, accept_multiple_files=True, key="analyze_files",
                           help="JPEG, PNG, WebP, BMP, TIFF or GIF (first frame); colour or grayscale; up to 50 "
                                "megapixels and 50 MB.")

if run_path is None:
    st.stop()
shots_recognizer = annotate.with_detector(recognizer_for(run_path), detector)
with st.sidebar:
    st.header("Calibration")
    profiled, profile_name = profile_picker(shots_recognizer, "analyze")
make_profile_from_photos(shots_recognizer, "analyze")
manage_profiles("analyze")
if not uploads:
    st.info("Choose one or more photos above to start.")
    st.stop()

base = recognizer_for(run_path)
run_name, run_id = store.read_run(run_path)["name"], Path(run_path).name
st.caption(f"Model: {literal(run_name)}{'' if run_name == run_id else f' ({run_id})'} · "
           f"classes: {', '.join(base.class_names)}")
recognizer = profiled          # the detector settings, and the profile where one is picked
if profile_name:
    st.caption(f"Read with the calibration profile **{profile_name}** "
               f"({'every face' if recognizer.profile_scope == 'all' else 'the largest face of each photo'}); "
               "on the photos, a label ending in * is read with it.")

results = []
for i, up in enumerate(uploads):
    data = up.getvalue()
    # a key that follows the file's content, so toggles stay with their photo when others are removed
    key = f"{i}_{hashlib.sha1(data).hexdigest()[:10]}"
    whole = st.session_state.get(f"whole_{key}", False)
    result = annotate.analyze_photo(recognizer, data, up.name, whole_image=whole)
    if not result.ok:
        st.error(f"Could not use {result.error}")
        continue
    show_photo(result, recognizer, run_path, key)
    if not result.faces or whole:
        st.checkbox("Classify the whole photo as one face", key=f"whole_{key}")
    results.append(result)
    st.divider()

table = annotate.faces_table(results, recognizer.class_names)
st.subheader(f"All faces ({len(table)})")
if table.empty:
    st.write("No faces yet.")
else:
    pct = st.column_config.NumberColumn(format="percent")    # as the chart and the boxes show them
    st.dataframe(table, hide_index=True, key="faces_table",
                 column_config={c: pct for c in ["confidence", *recognizer.class_names]})
    st.download_button("Download table (CSV)", table.to_csv(index=False).encode(), file_name="faces.csv",
                       mime="text/csv", key="csv_download", on_click="ignore")
