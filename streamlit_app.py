"""Entry page: declares the pages. Run with `streamlit run streamlit_app.py`."""

import streamlit as st

st.set_page_config(page_title="Emotion Studio", page_icon="🙂", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/analyze.py", title="Analyze photos", icon="🖼️", url_path="analyze"),
    st.Page("pages/webcam.py", title="Webcam", icon="🎥", url_path="webcam"),
    st.Page("pages/train.py", title="Train", icon="🏋️", url_path="train"),
    st.Page("pages/runs.py", title="Runs", icon="📁", url_path="runs"),
    st.Page("pages/compare.py", title="Compare", icon="📊", url_path="compare"),
    st.Page("pages/dataset.py", title="Dataset", icon="🗂️", url_path="dataset"),
]
st.navigation(pages).run()
