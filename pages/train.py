"""Train: choose a dataset and options, queue a run, and watch it train.

Each run trains in its own process (`python -m fer_core train --run-dir ...`, launched by
fer_core.runs.queue), so closing the browser or reloading the page does not stop it. The queue and
the progress shown here are read back from the run folders every few seconds.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st

from fer_core.config import TrainConfig, bounds, choices, help_text
from fer_core.data.datasets import load_dataset
from fer_core.errors import UserError
from fer_core.model.backbones import BACKBONES
from fer_core.progress import format_seconds
from fer_core.runs import queue
from fer_core.runs import store
from fer_core.runs.defaults import SHARED_DATA
from fer_core.train.submit import queue_training
from pages._common import completed_runs, ensure_app_navigation, literal, readable_path, runs_dir
from pages._dataset_reading import read_dataset
from pages._run_charts import curves_figure

ensure_app_navigation()

WEIGHTS_LABELS = {"none": "None (train from scratch)", "imagenet": "ImageNet (keras.applications)",
                  "run": "An earlier run (transfer its backbone)", "file": "A weights file"}


def dataset_summary(path: str, progress_cb=None) -> dict:
    """The dataset's format, classes and counts."""
    return load_dataset(path, progress_cb=progress_cb).summary()


def show_summary(path: str) -> dict | None:
    """Summary of the chosen dataset; None (with the reason shown) when it cannot be used."""
    p = Path(path).expanduser()
    if not path.strip():
        st.info("Enter the path of a dataset: a FER2013 csv or folder, CK+48, or a folder of class folders.")
        return None
    if readable_path(path.strip()) is None:
        return None
    if not p.exists():
        st.error(f"Dataset path not found: {p}")
        return None
    try:
        s = read_dataset(str(p.resolve()), dataset_summary, key="train_data")
        if s is None:
            return None
    except UserError as e:
        st.error(str(e))
        return None
    except Exception as e:   # an unreadable dataset must not break the page
        st.error(f"Cannot read this dataset: {type(e).__name__}: {e}")
        return None
    st.success(f"**{s['name']}** — {s['format']}, {s['num_samples']:,} images, {len(s['classes'])} classes"
               + (f", {s['num_subjects']} subjects" if s["has_subjects"] else ""))
    import pandas as pd
    counts = pd.DataFrame(s["counts"]).T
    counts["total"] = counts.sum(axis=1)
    st.dataframe(counts, width="content")
    for problem in s["problems"][:10]:
        st.warning(problem)
    return s


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


FORM_DEFAULTS = TrainConfig().to_dict()          # the declared defaults (config.py), the CLI's too


def k(name: str) -> str:
    """The session-state key of a form field: presets write here, the widgets read from here."""
    return f"f_{name}"


def init_form_state() -> None:
    for name, value in FORM_DEFAULTS.items():
        st.session_state.setdefault(k(name), value)
    st.session_state.setdefault("weights_kind", "none")


def apply_preset(preset) -> None:
    """Button callback: fills the form's fields (all stay editable)."""
    for name, value in preset.options.items():
        if name == "weights":
            st.session_state["weights_kind"] = "none" if value == "none" else "run"
            st.session_state["weights_run"] = value[4:] if value.startswith("run:") else None
        else:
            st.session_state[k(name)] = value


def training_runs() -> bool:
    return bool(queue.active_jobs(runs_dir())["running"])


def preset_panel(summary: dict, training_busy: bool) -> None:
    """Presets for this dataset's size, each with what it takes here and what it reached (from the run store).
    A recipe counted in epochs is timed on this machine (a few training steps, once per app process), never
    while a training runs (`training_busy`, asked of the queue once per rerun)."""
    from fer_core.data.splits import training_faces
    from fer_core.train import presets
    from fer_core.train.precision import choose
    num_train = training_faces(summary)
    choices_here = presets.PRESETS[presets.kind_of(summary["split_totals"].get("train") or summary["num_samples"])]
    st.markdown("**Presets** (fill the form below; every field stays editable)")
    for col, preset in zip(st.columns(len(choices_here)), choices_here):
        f = presets.figures(preset, runs_dir())
        used = choose(preset.options.get("precision", "auto")).used
        budget = bool(preset.options.get("max_train_seconds"))
        here = None if budget else presets.minutes_here(preset, num_train, used, wait=0)    # never blocks the page
        pending = "" if budget or here is not None else (
            "; this machine's own time is measured when no training runs" if training_busy else
            "; this machine's own time is being measured and shows when you next use the form")
        minutes = here or f.get("minutes")
        took = f"~{max(1, round(minutes))} min" if minutes else "time not measured"
        got = f"{f['accuracy']:.1%} {f['measure']}" if f.get("accuracy") is not None else "accuracy not measured here"
        col.button(preset.name, key=f"preset_{preset.name}", on_click=apply_preset, args=(preset,),
                   help=f"{preset.what}; from {f['source']}", use_container_width=True)
        col.caption(f"{preset.what}: {took}, {got}; " + presets.timing_note(f, used, budget, here is not None)
                    + pending)


def weights_choice(backbone: str) -> str | None:
    """'none' | 'imagenet' | 'run:DIR' | PATH, or None when the choice is incomplete."""
    kind = st.radio("Weights", list(WEIGHTS_LABELS), format_func=WEIGHTS_LABELS.get, horizontal=True,
                    key="weights_kind", help="ImageNet weights exist for the keras.applications backbones only.")
    if kind in ("none", "imagenet"):
        return kind
    if kind == "file":
        path = st.text_input("Weights file (.weights.h5 / .h5)")
        return path.strip() if path.strip() and readable_path(path.strip()) is not None else None
    same = [r for r in completed_runs() if r["backbone"] == backbone]
    if not same:
        st.warning(f"No completed run with a {backbone} backbone yet.")
        return None
    wanted = st.session_state.get("weights_run")
    index = next((i for i, r in enumerate(same) if wanted and Path(r["path"]).name == Path(wanted).name), 0)
    i = st.selectbox("Run", range(len(same)), index=index, format_func=lambda i: f"{same[i]['name']} "
                     f"({same[i]['dataset']}, test acc {same[i]['test_accuracy'] or 0:.1%})")
    return "run:" + same[i]["path"]


def number(container, label: str, name: str, **kw):
    """A number field for one option: its range and step are the option's declaration in config.py."""
    return container.number_input(label, **bounds(name), key=k(name), **kw)


def main_options(c1, c2) -> dict:
    with c1:
        backbone = st.selectbox("Backbone", list(BACKBONES), key=k("backbone"))
        bb = BACKBONES[backbone]
        weights = weights_choice(backbone)
        input_size = number(st, f"Input size (0 = {bb.default_size}, the backbone's default)", "input_size",
                            help=f"At least {bb.min_size}. Faces are upscaled from 48x48.")
        split = split_spec()
    with c2:
        number(st, "Epochs", "epochs")
        number(st, "Batch size", "batch_size")
        number(st, "Learning rate", "learning_rate", format="%.6f")
        st.selectbox("Learning-rate schedule", choices("schedule"), key=k("schedule"), help=help_text("schedule"))
        number(st, "Time budget in seconds (0 = none)", "max_train_seconds", help=help_text("max_train_seconds"))
        st.checkbox("Augmentation (flips, shifts, zoom, rotation)", key=k("augment"))
        st.checkbox("Class weights (balance rare emotions)", key=k("class_weights"))
    return {"backbone": backbone, "weights": weights, "input_size": int(input_size), "split": split}


def more_options() -> None:
    with st.expander("Freezing and fine-tuning (pre-trained weights)"):
        st.checkbox("Train the new head on a frozen base first", key=k("freeze_base"))
        f1, f2, f3 = st.columns(3)
        number(f1, "Then unfreeze the top N base layers (-1 = all, 0 = none)", "fine_tune_layers")
        number(f2, "Fine-tune epochs", "fine_tune_epochs")
        number(f3, "Fine-tune learning rate", "fine_tune_lr", format="%.7f")
    with st.expander("More options"):
        a1, a2, a3 = st.columns(3)
        a1.selectbox("Optimizer", choices("optimizer"), key=k("optimizer"), help=help_text("optimizer"))
        number(a2, "Early-stopping patience (0 = off)", "early_stopping")
        number(a3, "Max training images (0 = all; quick trials)", "max_samples")
        number(a1, "Dropout", "dropout")
        number(a2, "Weight decay (L2)", "weight_decay", format="%.5f")
        number(a3, "Label smoothing", "label_smoothing")
        number(a1, "Head units", "head_units")
        number(a2, "Seed", "seed")
        number(a3, "Mixup alpha (0 = off)", "mixup", help=help_text("mixup"))
        a1.selectbox("Keep", choices("keep"), key=k("keep"), help=help_text("keep"),
                     format_func={"best": "best validation epoch", "last": "last epoch"}.get)
        a2.selectbox("Test-time augmentation", choices("test_tta"), key=k("test_tta"), help=help_text("test_tta"))
        a3.selectbox("Precision", choices("precision"), key=k("precision"), help=help_text("precision"))
        from fer_core.train.precision import choose
        a3.caption(f"{choose(st.session_state[k('precision')]).reason}.")
        a1.selectbox("FER+ labels", choices("label_mode"), key=k("label_mode"), help=help_text("label_mode"))


def config_form() -> TrainConfig | None:
    """All the options; returns the config, or None when the dataset cannot be used."""
    init_form_state()
    from fer_core.train.precision import choose
    from fer_core.train.presets import start_timing
    training_busy = training_runs()
    if not training_busy:   # a timing beside a training would read slow and slow the training down
        start_timing(choose("auto").used)      # in the background: usually done by the time data is read
    default_data = SHARED_DATA / "ckplus" / "CK+48"
    data = st.text_input("Dataset path", value=str(default_data) if default_data.exists() else "", key="data")
    summary = show_summary(data)
    if summary:
        preset_panel(summary, training_busy)
    main = main_options(*st.columns(2))
    more_options()
    name = st.text_input("Run name (optional)", placeholder=f"{main['backbone']}-{Path(data).name}")
    if not summary or main["weights"] is None:
        return None
    values = {f: st.session_state[k(f)] for f in FORM_DEFAULTS if k(f) in st.session_state}
    values.update(main, data=data.strip(), name=name.strip(), runs_dir=FORM_DEFAULTS["runs_dir"])
    cast = {f.name: type(FORM_DEFAULTS[f.name]) for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{f: cast[f](v) for f, v in values.items() if f in cast})


def launch(cfg: TrainConfig) -> None:
    try:
        run_dir = queue_training(runs_dir(), cfg)
        queue.start_queued(runs_dir())
    except UserError as e:
        st.error(str(e))
        return
    except OSError as e:
        st.error(f"Cannot write the run folder: {e}")
        return
    st.session_state.setdefault("launched", []).append(str(run_dir))
    st.success(f"Queued **{literal(store.read_run(run_dir)['name'])}** ({run_dir.name}). Progress below.")


def cancel_job(run_dir: Path, name: str) -> None:
    """Button callback: runs before the panel redraws, so the card already shows the new state."""
    try:
        st.toast(f"{literal(name)}: {queue.cancel(run_dir)}")
    except UserError as e:
        st.toast(f"{literal(name)}: {e}")


def job_card(run_dir: Path) -> None:
    p = queue.progress(run_dir)
    with st.container(border=True):
        top = st.columns([4, 1])
        if p["status"] == "queued":
            top[0].markdown(f":material/hourglass_empty: **{literal(p['name'])}** — queued")
        else:
            phase = f", {p['phase']} phase" if p["phase"] else ""
            doing = "cancelling" if p["cancel_requested"] else "running"
            top[0].markdown(f":material/model_training: **{literal(p['name'])}** — {doing}{phase}")
        top[1].button("Cancel", key=f"cancel-{run_dir.name}", disabled=p["cancel_requested"],
                      on_click=cancel_job, args=(run_dir, p["name"]))
        if p["status"] != "running":
            return
        total = max(int(p["epochs"] or 1), 1)
        batch = f", batch {p['batch']}/{p['batches']}" if p.get("batches") else ""
        eta = f" · ETA {format_seconds(p['eta_seconds'])}" if p.get("eta_seconds") else (
            " · ETA estimating…" if p.get("batches") else "")
        within = p["batch"] / p["batches"] if p.get("batches") and p.get("batch") else 0.0    # inside the epoch
        st.progress(min((p["epochs_done"] + within) / total, 1.0),
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
        queue.start_queued(root)
        active = queue.active_jobs(root)
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
        r = store.read_run(d)
        icon = {"completed": ":material/check_circle:", "cancelled": ":material/stop_circle:"}.get(
            r["status"], ":material/error:")
        acc = f", test accuracy {r['test_accuracy']:.1%}" if r["test_accuracy"] is not None else ""
        msg = f"{icon} **{literal(r['name'])}** {r['status']}{acc}"
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
cap = st.number_input("Trainings at once", 1, 16, queue.max_concurrent(runs_dir()),
                      help="Queued runs start when fewer than this many are training. Each one uses all CPU cores.")
if cap != queue.max_concurrent(runs_dir()):
    queue.set_max_concurrent(runs_dir(), int(cap))
queue_panel()
