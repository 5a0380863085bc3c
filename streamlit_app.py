"""Entry page: declares the pages. Run with `streamlit run streamlit_app.py`."""

import streamlit as st

from fer_core.runs.keeper import ensure_keeper
from fer_core.runs.quiet import quiet_startup
from pages._common import runs_dir
from pages._registry import PAGES

quiet_startup()          # once per server process, before a page imports TensorFlow

st.set_page_config(page_title="Emotion Studio", page_icon=":material/mood:", layout="wide")

pages = [st.Page(p.path, title=p.title, icon=p.icon, default=True) if p.url_path is None
         else st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path) for p in PAGES]


if "queue_keeper_checked" not in st.session_state:
    # once per browser session: runs queued before a restart (or left by a keeper that died) get a keeper,
    # a process of its own that starts them as slots free up and outlives this app (fer_core/runs/keeper.py)
    st.session_state.queue_keeper_checked = True
    try:
        ensure_keeper(runs_dir())
    except OSError:      # a read-only or missing store: nothing can be queued there either
        pass
st.navigation(pages).run()
