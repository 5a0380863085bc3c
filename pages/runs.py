"""Runs: every training run in the run store, and one run in detail (curves, confusion matrix,
per-class scores, misclassified faces, log) with its actions (download, re-evaluate, rename, delete).

Nothing here assumes a run is complete: failed, cancelled, running and damaged folders all list,
and each section says what is missing instead of failing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from fer_core import compare, jobs, runstore
from fer_core.errors import UserError
from pages._common import ensure_app_navigation, runs_dir
from pages._run_charts import confusion_figure, curves_figure, per_class_figure

ensure_app_navigation()

STATUS_ICON = {"completed": "✅", "running": "🏋️", "queued": "⏳", "cancelled": "⏹️", "failed": "❌", "damaged": "⚠️"}
PCT = st.column_config.NumberColumn(format="percent")


def runs_table(runs: list[dict]) -> list[dict]:
    """The filterable table of all runs; returns the rows left after filtering."""
    rows = compare.runs_table(runs)
    c1, c2, c3, c4 = st.columns([2, 2, 2, 3])
    opts = lambda key: sorted({str(r[key]) for r in rows if r[key]})
    status = c1.multiselect("Status", opts("status"))
    backbone = c2.multiselect("Backbone", opts("backbone"))
    dataset = c3.multiselect("Dataset", opts("dataset"))
    text = c4.text_input("Name contains")
    rows = compare.filter_rows(rows, status, backbone, dataset, text)
    df = pd.DataFrame(rows, columns=compare.RUNS_COLUMNS)
    st.dataframe(df, hide_index=True, column_config={
        "best val accuracy": PCT, "test accuracy": PCT, "macro F1": st.column_config.NumberColumn(format="%.3f"),
        "train time (s)": st.column_config.NumberColumn(format="%.0f"), "id": None,
    }, key="runs_table")
    st.caption(f"{len(rows)} of {len(runs)} runs. Click a column header to sort.")
    return rows


def pick_run(runs: list[dict], rows: list[dict]) -> dict | None:
    """The run to show in detail; ?run=ID in the address selects one (links from other pages)."""
    ids = [r["id"] for r in rows] or [r["id"] for r in runs]
    by_id = {r["id"]: r for r in runs}
    wanted = st.query_params.get("run")
    index = ids.index(wanted) if wanted in ids else 0
    choice = st.selectbox("Run", ids, index=index, key="run_pick",
                          format_func=lambda i: f"{STATUS_ICON.get(by_id[i]['status'], '')} {by_id[i]['name']} ({i})")
    st.query_params["run"] = choice   # the address now links to this run
    return by_id.get(choice)


def overview(run: dict) -> None:
    info = run["info"]
    status = run["status"]
    msg = f"{STATUS_ICON.get(status, '')} **{status}**"
    if status in ("failed", "damaged"):
        st.error(f"{msg} — {run['error'] or 'no error message recorded'}")
    elif status == "cancelled":
        st.warning(f"{msg} — stopped on request; the best checkpoint so far is kept.")
    else:
        st.markdown(msg)
    for problem in run["problems"]:
        st.warning(f"This run folder is damaged: {problem}")
    m = st.columns(5)
    fmt = lambda v, f="{:.1%}": "–" if v is None else f.format(v)
    m[0].metric("Best val accuracy", fmt(run["best_val_accuracy"]))
    m[1].metric("Test accuracy", fmt(run["test_accuracy"]))
    m[2].metric("Macro F1", fmt(run["macro_f1"], "{:.3f}"))
    m[3].metric("Epochs", run["epochs_done"] or 0)
    m[4].metric("Train time", fmt(run["train_seconds"], "{:.0f} s"))
    split = info.get("split") or {}
    if split.get("note"):
        st.caption(f"Split {split.get('spec')}: {split['note']}")
    with st.expander("Config", expanded=False):
        st.json(info.get("config") or {})
    with st.expander("Run record (run.json)"):
        st.json({k: v for k, v in info.items() if k != "config"})


def curves(run: dict) -> None:
    history = jobs.read_history(run["path"])
    if not history:
        st.info("No epochs recorded (history.csv is missing or empty).")
        return
    st.plotly_chart(curves_figure(history), key="detail_curves")


def confusion(run: dict) -> None:
    splits = compare.available_splits(run["metrics"])
    if not splits:
        st.info("No evaluation yet (metrics.json is missing): the run did not finish.")
        return
    c1, c2 = st.columns(2)
    split = c1.radio("Part", splits, horizontal=True, key="cm_split")
    normalized = c2.toggle("Row-normalised (recall per true class)", key="cm_norm")
    cm, labels = compare.confusion(run["metrics"], split, normalized)
    st.plotly_chart(confusion_figure(cm, labels, normalized), key="detail_cm")
    rows = compare.per_class(run["metrics"], split)
    if rows:
        st.plotly_chart(per_class_figure(rows), key="detail_per_class")
        st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
            k: st.column_config.NumberColumn(format="%.3f") for k in ("precision", "recall", "f1")})


def gallery(run: dict) -> None:
    result = compare.misclassified(run["path"], limit=24)
    if not result["items"]:
        st.info(result["note"] or "No misclassified test faces.")
        return
    st.caption(f"{len(result['items'])} of {result['total']} misclassified test faces.")
    if result["note"]:
        st.info(result["note"])
    shown = [i for i in result["items"] if i["path"]]
    cols = st.columns(6)
    for n, item in enumerate(shown):
        conf = f" {item['confidence']:.0%}" if item["confidence"] is not None else ""
        cols[n % 6].image(item["path"], caption=f"true {item['true']} → {item['predicted']}{conf}", width=96)
    if not shown:
        st.dataframe(pd.DataFrame(result["items"]).drop(columns=["path"]), hide_index=True)


def log(run: dict) -> None:
    text = jobs.log_tail(run["path"], 400)
    st.code(text or "(no train.log)", language=None)


def actions(run: dict, root: Path) -> None:
    path = Path(run["path"])
    model = path / "model.keras"
    if model.is_file():
        st.download_button("Download model.keras", data=lambda: model.read_bytes(), file_name=f"{run['id']}.keras",
                           mime="application/octet-stream", key="download_model")
    else:
        st.caption("No model file in this run (reference runs are committed without it, failed runs may lack one).")

    if jobs.can_resume(run):
        st.markdown(f"**Resume**: this run is {run['status']} after epoch {run['epochs_done']}; "
                    "its checkpoint is kept")
        if st.button("Resume from the last checkpoint", key="resume_go"):
            try:
                jobs.queue_resume(path)
                jobs.start_queued(root)
            except (UserError, OSError) as e:
                st.error(f"Cannot resume: {e}")
            else:
                st.toast(f"{run['name']} is queued to resume; follow it on the Train page")
                st.rerun()

    st.markdown("**Re-evaluate** the model on another dataset (saved in the run's evaluations/)")
    e1, e2, e3 = st.columns([4, 1, 1])
    data = e1.text_input("Dataset path", key="eval_data", placeholder="e.g. ../shared/data/fer2013")
    split = e2.selectbox("Part", ["test", "all", "val", "train"], key="eval_split")
    if e3.button("Evaluate", disabled=not model.is_file() or not data.strip(), key="eval_go"):
        from fer_core.evaluate_run import evaluate_run
        try:
            with st.spinner("Evaluating…"):
                res = evaluate_run(path, data=data.strip(), split=split, save=True)
            st.success(f"accuracy {res['accuracy']:.1%}, macro F1 {res['macro_f1']:.3f} on {res['num_samples']} "
                       f"images ({res['ms_per_image']:.2f} ms/image)"
                       + (f"; classes the model lacks, not scored: {', '.join(res['classes_model_lacks'])}"
                          if res.get("classes_model_lacks") else ""))
        except (UserError, FileNotFoundError) as e:
            st.error(str(e))
        except Exception as e:   # an odd model or dataset: one line, not a traceback
            st.error(f"Evaluation failed: {type(e).__name__}: {e}")
    evals = compare.saved_evaluations(path)
    if evals:
        st.dataframe(pd.DataFrame(evals), hide_index=True, column_config={"accuracy": PCT})

    st.markdown("**Rename** (the folder keeps its id)")
    r1, r2 = st.columns([4, 1])
    new_name = r1.text_input("New name", value=run["name"], key=f"rename-{run['id']}")
    if r2.button("Rename", key="rename_go"):
        try:
            runstore.rename_run(path, new_name)
            st.rerun()
        except UserError as e:
            st.error(str(e))
        except OSError as e:
            st.error(f"Cannot write run.json: {e}")

    st.markdown("**Delete** this run and all its files")
    busy = run["status"] in ("running", "queued")
    sure = st.checkbox(f"Yes, delete {run['id']} permanently", key=f"sure-{run['id']}", disabled=busy)
    if busy:
        st.caption("Cancel it on the Train page first.")
    if st.button("Delete run", type="primary", disabled=not sure or busy, key="delete_go"):
        try:
            runstore.delete_run(root, path)
        except (UserError, OSError) as e:
            st.error(f"Cannot delete: {e}")
        else:
            st.query_params.pop("run", None)
            st.session_state.pop("run_pick", None)
            st.toast(f"Deleted {run['name']}")
            st.rerun()


st.title("Runs")
root = runs_dir()
try:
    jobs.start_queued(root)   # keep the queue moving for whoever has the app open
except (OSError, UserError):
    pass
all_runs = runstore.list_runs(root)
if not all_runs:
    st.info(f"No runs yet in {root}. Train one on the Train page.")
    st.stop()

rows = runs_table(all_runs)
st.divider()
run = pick_run(all_runs, rows)
if run is not None:
    st.header(run["name"])
    st.caption(f"{run['id']} · {run['backbone'] or '?'} on {run['dataset'] or '?'} · weights {run['weights'] or '?'}"
               f" · created {run['created'] or '?'}")
    tabs = st.tabs(["Overview", "Curves", "Confusion & per class", "Misclassified", "Log", "Actions"])
    sections = [overview, curves, confusion, gallery, log, lambda r: actions(r, root)]
    for tab, section in zip(tabs, sections):
        with tab:
            try:
                section(run)
            except Exception as e:   # one damaged file must not take the whole page down
                st.error(f"Cannot show this part of the run: {type(e).__name__}: {e}")
