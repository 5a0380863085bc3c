"""Train: choose a dataset and options, queue a run, and watch it train.

Each run trains in its own process (`python -m fer_core train --run-dir ...`, launched by
fer_core.jobs), so closing the browser or reloading the page does not stop it. The queue and
the progress shown here are read back from the run folders every few seconds.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from fer_core.config import TrainConfig, choices, help_text
from fer_core.data.datasets import load_dataset
from fer_core.errors import UserError
from fer_core.model.backbones import BACKBONES
from fer_core.progress import format_seconds
from fer_core.runs import queue as jobs
from fer_core.runs import store as runstore
from fer_core.runs.defaults import SHARED_DATA
from pages._common import completed_runs, ensure_app_navigation, runs_dir
from pages._run_charts import curves_figure

ensure_app_navigation()

D = TrainConfig()   # the defaults shown in the form
WEIGHTS_LABELS = {"none": "None (train from scratch)", "imagenet": "ImageNet (keras.applications)",
                  "run": "An earlier run (transfer its backbone)", "file": "A weights file"}


@st.cache_data(show_spinner="Reading the dataset…", max_entries=8)
def dataset_summary(path: str, stamp: float) -> dict:
    """The dataset's format, classes and counts; `stamp` (the folder's mtime) re-reads a changed dataset."""
    return load_dataset(path).summary()


def show_summary(path: str) -> bool:
    """Summary of the chosen dataset; False (with the reason shown) when it cannot be used."""
    p = Path(path).expanduser()
    if not path.strip():
        st.info("Enter the path of a dataset: a FER2013 csv or folder, CK+48, or a folder of class folders.")
        return False
    if not p.exists():
        st.error(f"Dataset path not found: {p}")
        return False
    try:
        s = dataset_summary(str(p.resolve()), p.stat().st_mtime)
    except UserError as e:
        st.error(str(e))
        return False
    except Exception as e:   # an unreadable dataset must not break the page
        st.error(f"Cannot read this dataset: {type(e).__name__}: {e}")
        return False
    st.success(f"**{s['name']}** — {s['format']}, {s['num_samples']:,} images, {len(s['classes'])} classes"
               + (f", {s['num_subjects']} subjects" if s["has_subjects"] else ""))
    import pandas as pd
    counts = pd.DataFrame(s["counts"]).T
    counts["total"] = counts.sum(axis=1)
    st.dataframe(counts, width="content")
    for problem in s["problems"][:10]:
        st.warning(problem)
    return True


def split_spec() -> str:
    kind = st.selectbox("Split", ["auto", "official", "subject-kfold", "random"],
                        help="auto: the dataset's own split (FER2013) or subject-independent (CK+), else random. "
                             "official needs a dataset that defines one.")
    if kind == "subject-kfold":
        c1, c2 = st.columns(2)
        k = c1.number_input("Folds (K)", 2, 20, 10)
        fold = c2.number_input("Test fold", 0, int(k) - 1, 0)
        return f"subject-kfold:{int(k)}:{int(fold)}"
    if kind == "random":
        frac = st.slider("Test fraction", 0.05, 0.5, 0.1, 0.05)
        return f"random:{frac:g}"
    return kind


def weights_choice(backbone: str) -> str | None:
    """'none' | 'imagenet' | 'run:DIR' | PATH, or None when the choice is incomplete."""
    kind = st.radio("Weights", list(WEIGHTS_LABELS), format_func=WEIGHTS_LABELS.get, horizontal=True,
                    help="ImageNet weights exist for the keras.applications backbones only.")
    if kind in ("none", "imagenet"):
        return kind
    if kind == "file":
        path = st.text_input("Weights file (.weights.h5 / .h5)")
        return path.strip() or None
    same = [r for r in completed_runs() if r["backbone"] == backbone]
    if not same:
        st.warning(f"No completed run with a {backbone} backbone yet.")
        return None
    i = st.selectbox("Run", range(len(same)), format_func=lambda i: f"{same[i]['name']} ({same[i]['dataset']}, "
                     f"test acc {same[i]['test_accuracy'] or 0:.1%})")
    return "run:" + same[i]["path"]


def config_form() -> TrainConfig | None:
    """All the options; returns the config, or None when the dataset cannot be used."""
    default_data = SHARED_DATA / "ckplus" / "CK+48"
    data = st.text_input("Dataset path", value=str(default_data) if default_data.exists() else "", key="data")
    data_ok = show_summary(data)

    c1, c2 = st.columns(2)
    with c1:
        backbone = st.selectbox("Backbone", list(BACKBONES), index=list(BACKBONES).index("fer_vgg"))
        bb = BACKBONES[backbone]
        weights = weights_choice(backbone)
        input_size = st.number_input(f"Input size (0 = {bb.default_size}, the backbone's default)", 0, 320, 0,
                                     help=f"At least {bb.min_size}. Faces are upscaled from 48x48.")
        split = split_spec()
    with c2:
        epochs = st.number_input("Epochs", 0, 1000, 30)
        batch_size = st.number_input("Batch size", 1, 1024, D.batch_size)
        lr = st.number_input("Learning rate", 1e-6, 0.9, D.learning_rate, format="%.6f")
        schedule = st.selectbox("Learning-rate schedule", choices("schedule"), help=help_text("schedule"))
        augment = st.checkbox("Augmentation (flips, shifts, zoom, rotation)", value=D.augment)
        class_weights = st.checkbox("Class weights (balance rare emotions)", value=D.class_weights)
    with st.expander("Freezing and fine-tuning (pre-trained weights)"):
        freeze = st.checkbox("Train the new head on a frozen base first", value=D.freeze_base)
        f1, f2, f3 = st.columns(3)
        ft_layers = f1.number_input("Then unfreeze the top N base layers (-1 = all, 0 = none)", -1, 1000, 0)
        ft_epochs = f2.number_input("Fine-tune epochs", 0, 1000, 0)
        ft_lr = f3.number_input("Fine-tune learning rate", 1e-8, 0.1, D.fine_tune_lr, format="%.7f")
    with st.expander("More options"):
        a1, a2, a3 = st.columns(3)
        optimizer = a1.selectbox("Optimizer", choices("optimizer"), help=help_text("optimizer"))
        early = a2.number_input("Early-stopping patience (0 = off)", 0, 1000, D.early_stopping)
        max_samples = a3.number_input("Max training images (0 = all; quick trials)", 0, 10_000_000, 0, step=100,
                                      key="max_samples")
        dropout = a1.number_input("Dropout", 0.0, 0.95, D.dropout)
        weight_decay = a2.number_input("Weight decay (L2)", 0.0, 1.0, D.weight_decay, format="%.5f")
        smoothing = a3.number_input("Label smoothing", 0.0, 0.5, D.label_smoothing)
        head_units = a1.number_input("Head units", 8, 4096, D.head_units)
        budget = a2.number_input("Time budget in seconds (0 = none)", 0, 10_000_000, 0)
        seed = a3.number_input("Seed", 0, 2 ** 31 - 1, D.seed)
        keep = a1.selectbox("Keep", choices("keep"), key="keep", help=help_text("keep"),
                            format_func={"best": "best validation epoch", "last": "last epoch"}.get)
        test_tta = a2.selectbox("Test-time augmentation", choices("test_tta"), key="test_tta",
                                help=help_text("test_tta"))
        mix = a3.number_input("Mixup alpha (0 = off)", 0.0, 4.0, D.mixup, key="mixup", help=help_text("mixup"))
        precision = a1.selectbox("Precision", choices("precision"), key="precision", help=help_text("precision"))
        label_mode = a2.selectbox("FER+ labels", choices("label_mode"), key="label_mode",
                                  help=help_text("label_mode"))
    name = st.text_input("Run name (optional)", placeholder=f"{backbone}-{Path(data).name}")
    if not data_ok or weights is None:
        return None
    return TrainConfig(data=data.strip(), backbone=backbone, weights=weights, split=split, input_size=int(input_size),
                       epochs=int(epochs), batch_size=int(batch_size), learning_rate=float(lr), optimizer=optimizer,
                       schedule=schedule, weight_decay=float(weight_decay), dropout=float(dropout),
                       head_units=int(head_units), augment=augment, class_weights=class_weights,
                       early_stopping=int(early), fine_tune_layers=int(ft_layers), fine_tune_epochs=int(ft_epochs),
                       fine_tune_lr=float(ft_lr), freeze_base=freeze, max_samples=int(max_samples), seed=int(seed),
                       name=name.strip(), label_smoothing=float(smoothing), max_train_seconds=float(budget),
                       keep=keep, test_tta=test_tta, mixup=float(mix), precision=precision, label_mode=label_mode)


def launch(cfg: TrainConfig) -> None:
    try:
        run_dir = jobs.enqueue(runs_dir(), cfg)
        jobs.start_queued(runs_dir())
    except UserError as e:
        st.error(str(e))
        return
    except OSError as e:
        st.error(f"Cannot write the run folder: {e}")
        return
    st.session_state.setdefault("launched", []).append(str(run_dir))
    st.success(f"Queued **{runstore.read_run(run_dir)['name']}** ({run_dir.name}). Progress below.")


def cancel_job(run_dir: Path, name: str) -> None:
    """Button callback: runs before the panel redraws, so the card already shows the new state."""
    try:
        st.toast(f"{name}: {jobs.cancel(run_dir)}")
    except UserError as e:
        st.toast(f"{name}: {e}")


def job_card(run_dir: Path) -> None:
    p = jobs.progress(run_dir)
    with st.container(border=True):
        top = st.columns([4, 1])
        if p["status"] == "queued":
            top[0].markdown(f":material/hourglass_empty: **{p['name']}** — queued")
        else:
            phase = f", {p['phase']} phase" if p["phase"] else ""
            top[0].markdown(f":material/model_training: **{p['name']}** — {'cancelling' if p['cancel_requested'] else 'running'}{phase}")
        top[1].button("Cancel", key=f"cancel-{run_dir.name}", disabled=p["cancel_requested"],
                      on_click=cancel_job, args=(run_dir, p["name"]))
        if p["status"] != "running":
            return
        total = max(int(p["epochs"] or 1), 1)
        batch = f", batch {p['batch']}/{p['batches']}" if p.get("batches") else ""
        eta = f" · ETA {format_seconds(p['eta_seconds'])}" if p.get("eta_seconds") else ""
        st.progress(min(p["epochs_done"] / total, 1.0),
                    text=f"epoch {min(p['epoch'], total)}/{total}{batch}{eta}")
        last = p["latest"]
        if last:
            m = st.columns(4)
            for col, key in zip(m, ("loss", "accuracy", "val_loss", "val_accuracy")):
                v = last.get(key)
                col.metric(key.replace("_", " "), "–" if v is None else f"{v:.4f}")
        if len(p["history"]) >= 1:
            st.plotly_chart(curves_figure(p["history"]), key=f"curves-{run_dir.name}-{len(p['history'])}")
        else:
            st.caption("Curves appear when the first epoch finishes.")


@st.fragment(run_every=3)
def queue_panel() -> None:
    """Polled every 3 s: starts queued runs when a slot is free and redraws every job's progress."""
    root = runs_dir()
    try:
        jobs.start_queued(root)
        active = jobs.active_jobs(root)
    except (OSError, UserError) as e:
        st.error(f"Cannot read the run store {root}: {e}")
        return
    if not active["running"] and not active["queued"]:
        st.caption("Nothing is training or queued.")
    for d in active["running"] + active["queued"]:
        job_card(d)
    finished = [Path(d) for d in st.session_state.get("launched", [])
                if Path(d) not in active["running"] + active["queued"]]
    for d in reversed(finished):
        r = runstore.read_run(d)
        icon = {"completed": ":material/check_circle:", "cancelled": ":material/stop_circle:"}.get(r["status"], ":material/error:")
        acc = f", test accuracy {r['test_accuracy']:.1%}" if r["test_accuracy"] is not None else ""
        msg = f"{icon} **{r['name']}** {r['status']}{acc}"
        if r["error"]:
            msg += f" — {r['error']}"
        st.markdown(msg)
    if finished:
        st.page_link("pages/runs.py", label="See the results on the Runs page", icon=":material/folder_open:")


st.title("Train a model")
cfg = config_form()
if st.button("Launch training", type="primary", disabled=cfg is None):
    launch(cfg)

st.subheader("Queue")
cap = st.number_input("Trainings at once", 1, 16, jobs.max_concurrent(runs_dir()),
                      help="Queued runs start when fewer than this many are training. Each one uses all CPU cores.")
if cap != jobs.max_concurrent(runs_dir()):
    jobs.set_max_concurrent(runs_dir(), int(cap))
queue_panel()
