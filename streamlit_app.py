"""Entry page: declares the pages. Run with `streamlit run streamlit_app.py`."""

import streamlit as st

from fer_core.runs.quiet import quiet_startup
from pages._common import runs_dir
from pages._registry import PAGES

quiet_startup()          # once per server process, before a page imports TensorFlow

st.set_page_config(page_title="Emotion Studio", page_icon=":material/mood:", layout="wide")

pages = [st.Page(p.path, title=p.title, icon=p.icon, default=True) if p.url_path is None
         else st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path) for p in PAGES]


@st.cache_resource
def queue_scheduler(runs_dir: str):
    """One per app process and run store: queued runs start even when no page is open."""
    from fer_core.runs.scheduler import QueueScheduler
    return QueueScheduler(runs_dir).start()


queue_scheduler(str(runs_dir()))
st.navigation(pages).run()
