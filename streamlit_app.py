"""Entry page: declares the pages. Run with `streamlit run streamlit_app.py`."""

import streamlit as st

from fer_core.runs.quiet import quiet_startup
from pages._common import runs_dir  # noqa: E402

quiet_startup()          # once per server process, before a page imports TensorFlow

st.set_page_config(page_title="Emotion Studio", page_icon=":material/mood:", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/analyze.py", title="Analyze photos", icon=":material/photo_library:", url_path="analyze"),
    st.Page("pages/video.py", title="Analyze a video", icon=":material/movie:", url_path="video"),
    st.Page("pages/webcam.py", title="Webcam", icon=":material/videocam:", url_path="webcam"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("pages/runs.py", title="Runs", icon=":material/folder_open:", url_path="runs"),
    st.Page("pages/compare.py", title="Compare", icon=":material/bar_chart:", url_path="compare"),
    st.Page("pages/dataset.py", title="Dataset", icon=":material/dataset:", url_path="dataset"),
]


@st.cache_resource
def queue_scheduler(runs_dir: str):
    """One per app process and run store: queued runs start even when no page is open."""
    from fer_core.runs.scheduler import QueueScheduler
    return QueueScheduler(runs_dir).start()


queue_scheduler(str(runs_dir()))
st.navigation(pages).run()
