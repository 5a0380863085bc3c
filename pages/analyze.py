"""Analyze photos: upload photos, see every face boxed and labelled, with probabilities, a table and downloads.

The work is in fer_core.annotate (decode, detect, classify, draw) and fer_core.gradcam;
this page only lays it out. A bad file becomes an st.error naming it; the other photos go on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import plotly.express as px
import streamlit as st

from fer_core import annotate, runstore
from fer_core.faces import HaarFaceDetector
from pages._common import ensure_app_navigation, model_picker, recognizer_for

ensure_app_navigation()

DISPLAY_SIDE = 1400     # longest side sent to the browser; downloads keep full resolution


@st.cache_resource(show_spinner="Preparing Grad-CAM…", max_entries=4)
def get_gradcam(run_path: str, _mtime: float = 0.0):
    """One Grad-CAM model per run per server, like the recognizer."""
    from fer_core.gradcam import GradCam
    return GradCam(recognizer_for(run_path).model)


def model_mtime(run_path: Path) -> float:
    p = Path(run_path) / "model.keras"
    return p.stat().st_mtime if p.exists() else 0.0


def show_probabilities(result: annotate.PhotoResult, key: str) -> None:
    """One small horizontal bar chart per face, side by side."""
    df = annotate.probabilities_long(result)
    rows = (len(result.faces) + 2) // 3
    fig = px.bar(df, x="probability", y="emotion", orientation="h", facet_col="face", facet_col_wrap=3,
                 range_x=[0, 1], color="emotion", height=80 + 230 * rows)
    fig.update_layout(showlegend=False, margin=dict(l=10, r=10, t=30, b=10))
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    st.plotly_chart(fig, key=f"chart_{key}")


def show_why(result: annotate.PhotoResult, recognizer, run_path: Path) -> None:
    """Grad-CAM over each face, for the class the model predicted."""
    from fer_core.gradcam import GradCamError, overlay
    try:
        cam = get_gradcam(str(run_path), model_mtime(run_path))
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
        st.markdown(f"**{what}:** " + ", ".join(f"{i}: {f.emotion} {f.confidence:.0%}"
                                              for i, f in enumerate(result.faces, start=1)))
        show_probabilities(result, key)
    if st.toggle("Why? Show where the model looked (Grad-CAM)", key=f"why_{key}"):
        show_why(result, recognizer, run_path)


st.title("Analyze photos")
st.write("Upload photos: each face is found, boxed and labelled with its emotion.")

with st.sidebar:
    st.header("Model")
    run_path = model_picker(key="analyze_model")
    st.header("Face detector")
    min_size = st.slider("Minimum face size (pixels)", 12, 300, 30, step=2, key="analyze_min_size",
                         help="Smaller finds small faces in big group photos; larger ignores background clutter.")
    sensitivity = st.slider("Sensitivity", 0.0, 1.0, 0.5, step=0.05, key="analyze_sensitivity",
                            help="Higher finds more faces, including some false ones.")

uploads = st.file_uploader("Photos", type=annotate.UPLOAD_TYPES, accept_multiple_files=True, key="analyze_files",
                           help="JPEG, PNG, WebP, BMP, TIFF or GIF (first frame); colour or grayscale; up to 50 megapixels and 50 MB.")

if run_path is None:
    st.stop()
if not uploads:
    st.info("Choose one or more photos above to start.")
    st.stop()

base = recognizer_for(run_path)
run_name, run_id = runstore.read_run(run_path)["name"], Path(run_path).name
st.caption(f"Model: {run_name}{'' if run_name == run_id else f' ({run_id})'} · classes: {', '.join(base.class_names)}")
recognizer = annotate.with_detector(base, HaarFaceDetector(min_size=min_size, sensitivity=sensitivity))

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
    st.dataframe(table, hide_index=True, key="faces_table")
    st.download_button("Download table (CSV)", table.to_csv(index=False).encode(), file_name="faces.csv",
                       mime="text/csv", key="csv_download", on_click="ignore")
