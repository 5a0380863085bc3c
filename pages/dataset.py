"""Dataset: how many faces of each class, per split, and what they look like, for any dataset path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from fer_core.errors import UserError
from fer_core.runs import defaults
from pages._common import ensure_app_navigation, readable_path
from pages._dataset_reading import read_dataset

ensure_app_navigation()

SAMPLES_PER_CLASS = 8


def dataset_overview(path: str, progress_cb=None) -> tuple[dict, dict[str, list[np.ndarray]]]:
    """(summary, a few sample faces per class): only those are kept, not the whole dataset."""
    from fer_core.data.datasets import load_dataset
    ds = load_dataset(path, progress_cb=progress_cb)
    rng = np.random.default_rng(0)          # the same samples on every visit
    samples = {}
    for i, name in enumerate(ds.class_names):
        idx = np.flatnonzero(ds.labels == i)
        pick = rng.choice(idx, size=min(SAMPLES_PER_CLASS, len(idx)), replace=False) if len(idx) else []
        samples[name] = [ds.images[j] for j in pick]
    return ds.summary(), samples


def default_path() -> str:
    """../shared/data/fer2013 when the app runs from the repository root (as the README says)."""
    p = defaults.SHARED_DATA / "fer2013"
    try:
        return os.path.relpath(p)
    except ValueError:      # another drive on Windows
        return str(p)


st.title("Dataset")
path = st.text_input("Dataset path", value=default_path(), key="dataset_path",
                     help="A FER2013 csv, a train/test folder of class folders (FER2013), "
                          "or a folder of class folders (CK+48, your own).").strip()

if not path:
    st.info("Type the path of a dataset folder or FER2013 csv.")
    st.stop()
if readable_path(path) is None:
    st.stop()
if not Path(path).exists():
    st.error(f"Dataset path not found: {path}. Give a FER2013 csv, or a folder of class folders "
             f"(for example {default_path()}).")
    st.stop()

try:
    read = read_dataset(path, dataset_overview, key="dataset")
except UserError as e:
    st.error(str(e))
    st.stop()
if read is None:
    st.stop()
summary, samples = read

st.markdown(f"**{summary['name']}** · format `{summary['format']}` · {summary['num_samples']:,} faces · "
            f"{len(summary['classes'])} classes"
            + (f" · {summary['num_subjects']} subjects" if summary["has_subjects"] else "")
            + " · splits: " + ", ".join(f"{k} {v:,}" for k, v in summary["split_totals"].items()))

counts = pd.DataFrame([{"split": sp, "class": c, "faces": n}
                       for sp, per_class in summary["counts"].items() for c, n in per_class.items()])
fig = px.bar(counts, x="class", y="faces", color="split", barmode="group", text_auto=True,
             title="Class distribution")
fig.update_layout(margin=dict(l=10, r=10, t=50, b=10))
st.plotly_chart(fig, key="class_distribution")

total = counts.groupby("class", sort=False)["faces"].sum()
if total.max() > 3 * max(total.min(), 1):
    st.caption(f"Imbalanced: '{total.idxmax()}' has {total.max():,} faces, '{total.idxmin()}' "
               f"{total.min():,}. Class weights in training help the rare classes.")

st.subheader("Sample faces")
for name, faces in samples.items():
    st.markdown(f"**{name}**")
    if faces:
        st.image(faces, width=72)
    else:
        st.caption("no images")

if summary["problems"]:
    with st.expander(f"{len(summary['problems'])} problem(s) found while reading"):
        for p in summary["problems"][:200]:
            st.write(p)
