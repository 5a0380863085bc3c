"""Reading a dataset on a page: a progress bar, a Stop button that works, and what was read kept per version.

Why not st.cache_data around the loader: a folder of 50,000 faces takes minutes, and a cached function runs to
its end whatever the user does. Here every progress update (every two seconds) is a Streamlit call, so Stop
reading, Streamlit's own Stop, a new path or another page ends the reading there (Streamlit stops the script at
its next call), and nothing half-read is kept. What was read whole is kept per (path, the dataset's folder times:
fer_core.data.stamp), so a changed dataset is read again and an unchanged one is instant.
"""

from __future__ import annotations

import collections
import threading
from typing import Callable

import streamlit as st

from fer_core.data.stamp import dataset_stamp
from fer_core.progress import format_seconds

KEPT = 8      # datasets kept read, the least recently used dropped first


@st.cache_resource
def _kept() -> tuple[collections.OrderedDict, threading.Lock]:
    """One store of read datasets per app process, shared by every session (each reads the same files)."""
    return collections.OrderedDict(), threading.Lock()


def read_dataset(path: str, summarise: Callable, key: str):
    """summarise(path, progress_cb) for the dataset at path, read once per version of it; None when the user
    stopped the reading (the page says so and offers to read it again). `key` names the page's widgets."""
    kept, lock = _kept()
    version = (path, summarise.__name__, dataset_stamp(path))
    with lock:
        if version in kept:
            kept.move_to_end(version)
            return kept[version]
    if st.session_state.get(f"{key}_stopped") == version:
        st.info(f"Reading {path} was stopped; nothing of it is kept.")
        st.button("Read it", key=f"{key}_read_again", on_click=st.session_state.pop, args=(f"{key}_stopped",))
        return None
    stop = st.empty()
    stop.button("Stop reading", key=f"{key}_stop", icon=":material/stop_circle:",
                on_click=st.session_state.__setitem__, args=(f"{key}_stopped", version))
    bar = st.progress(0.0, text=f"Reading {path}…")

    def progress(done: int, total: int, eta: float) -> None:
        left = f", about {format_seconds(eta)} left" if eta == eta else ""
        bar.progress(min(done / max(total, 1), 1.0), text=f"Reading {path}: {done:,} of {total:,} files{left}")

    result = summarise(path, progress)
    bar.empty()
    stop.empty()
    with lock:
        kept[version] = result
        while len(kept) > KEPT:
            kept.popitem(last=False)
    return result
