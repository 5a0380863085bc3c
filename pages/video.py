"""Video: upload a recording, follow every face through it, then watch the annotated video, each face's
emotions over time, and download both the video and the per-frame CSV.

The work is in fer_core.serve.video_file (streamed frame by frame) and fer_core.report.timeline.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import plotly.express as px
import streamlit as st

from fer_core.data import emotions
from fer_core.errors import UserError
from fer_core.report import timeline
from fer_core.serve import annotate
from fer_core.serve import video_work
from fer_core.serve.video_file import VIDEO_TYPES, analyze_video, probe
from pages._common import detector_settings, ensure_app_navigation, model_picker, recognizer_for
from pages._profiles import profile_picker

ensure_app_navigation()


def session_folders() -> video_work.SessionFolders:
    """This session's work folders: removed when the session ends (see fer_core.serve.video_work)."""
    if "video_folders" not in st.session_state:
        st.session_state["video_folders"] = video_work.SessionFolders()
    return st.session_state["video_folders"]


def progress_callback(bar, name: str):
    """Moves the progress bar; called by the analysis loop (on this script's thread) every couple of seconds."""
    def update(done: int, total: int, eta: float) -> None:
        eta_s = f", about {eta:.0f} s left" if eta == eta else ""
        bar.progress(min(done / max(total, 1), 1.0), text=f"Analysing {name}: frame {done} of {total}{eta_s}")
    return update


def analyse(data: bytes, name: str, run_path, detector, every: int, profile=None) -> dict | None:
    """Writes the upload to a temporary file, analyses it with a progress bar; None (and a message) on failure."""
    folder = session_folders().new(hashlib.sha1(data).hexdigest()[:12])
    src = folder / f"input{Path(name).suffix.lower() or '.mp4'}"
    src.write_bytes(data)
    try:
        info = probe(src, name)
    except UserError as e:
        st.error(str(e))
        return None
    bar = st.progress(0.0, text=f"Analysing {name}…")
    on_progress = progress_callback(bar, name)
    recognizer = annotate.with_detector(recognizer_for(run_path), detector)
    if profile is not None:
        recognizer = recognizer.with_profile(profile.profile, profile.profile_scope)
    out, csv_path = folder / "annotated.mp4", folder / "faces.csv"
    try:
        summary = analyze_video(src, recognizer, out, csv_path, every, progress_cb=on_progress, name=name)
    except UserError as e:
        st.error(str(e))
        return None
    except Exception as e:   # a codec hiccup deep in a file: one line, not a traceback
        st.error(f"{name}: the video could not be analysed ({type(e).__name__}: {e}). Try converting it to "
                 "H.264 mp4.")
        return None
    bar.empty()
    return {"name": name, "video": str(out), "csv": str(csv_path), "info": info, "summary": summary}


def show(result: dict) -> None:
    s, info = result["summary"], result["info"]
    if not (Path(result["video"]).is_file() and Path(result["csv"]).is_file()):
        st.info(f"The files of {result['name']} were removed ({video_work.keep_label()} after the analysis). "
                "Upload it again to see them.")
        return
    st.success(f"**{result['name']}**: {info.width}x{info.height}, {info.seconds:.1f} s; {s.frames_read} frames, "
               f"{s.frames_analysed} analysed, {s.faces_seen} face(s) followed")
    for w in s.warnings:
        st.warning(w)
    left, right = st.columns([3, 2])
    with left:
        st.video(result["video"])
        c1, c2 = st.columns(2)
        c1.download_button("Download annotated video", Path(result["video"]).read_bytes(),
                           file_name=f"{Path(result['name']).stem}-emotions.mp4", mime="video/mp4",
                           key="video_download", on_click="ignore")
        c2.download_button("Download per-frame CSV", Path(result["csv"]).read_bytes(),
                           file_name=f"{Path(result['name']).stem}-faces.csv", mime="text/csv",
                           key="csv_download", on_click="ignore")
    frames = timeline.read_frames(result["csv"])
    faces = timeline.face_summary(frames)
    with right:
        st.dataframe(faces.rename(columns=timeline.SUMMARY_LABELS), hide_index=True, key="faces_table",
                     column_config={"first seen (s)": st.column_config.NumberColumn(format="%.1f"),
                                    "last seen (s)": st.column_config.NumberColumn(format="%.1f")})
    if faces.empty:
        st.info("No face was found in this video.")
        return
    face_id = st.selectbox("Face", faces["face_id"].tolist(), key="timeline_face",
                           format_func=lambda i: f"face {i}")
    long = timeline.probabilities_over_time(frames, face_id)
    fig = px.line(long, x="time_s", y="probability", color="emotion", range_y=[0, 1],
                  color_discrete_map=emotions.color_map(long["emotion"].unique()),   # the boxes' colours
                  labels={"time_s": "time (s)"}, title=f"Face {face_id}: emotion probabilities over time")
    fig.update_yaxes(tickformat=".0%")
    st.plotly_chart(fig, key="timeline")


st.title("Analyze a video")
st.write("Upload a recording: every face is followed through it and labelled frame by frame.")
with st.sidebar:
    st.header("Model")
    run_path = model_picker(key="video_model")
    detector, detector_config = detector_settings("video")
    every = st.number_input("Analyse every N-th frame", 1, 30, 1, key="video_every",
                            help="Higher is faster on long videos; the frames between keep the last boxes.")
    if run_path is not None:
        st.header("Calibration")
        profiled, profile_name = profile_picker(recognizer_for(run_path), "video")
upload = st.file_uploader("Video", type=VIDEO_TYPES, key="video_file",
                          help="mp4, webm, mov, avi, mkv or m4v; up to 50 MB and 30 minutes.")
st.caption(f"Your video, its annotated copy and the per-frame CSV are kept on the server only while you look at "
           f"them: removed when your session ends, or {video_work.keep_label()} after the analysis at the latest. "
           "Download what you want to keep.")
video_work.remove_expired()
if run_path is None:
    st.stop()
if upload is None:
    st.info("Choose a video above to start.")
    st.stop()
data = upload.getvalue()
key = (hashlib.sha1(data).hexdigest(), str(run_path), int(every), detector_config, profile_name,
       profiled.profile_scope if profile_name else None)
if profile_name:
    st.caption(f"Read with the calibration profile **{profile_name}** "
               f"({'every face' if profiled.profile_scope == 'all' else 'the largest face of each frame'}); "
               "in the video, a label ending in * is read with it.")
if st.session_state.get("video_result_key") != key:
    st.session_state["video_result"] = analyse(data, upload.name, run_path, detector, int(every),
                                               profiled if profile_name else None)
    st.session_state["video_result_key"] = key
if st.session_state.get("video_result"):
    show(st.session_state["video_result"])
