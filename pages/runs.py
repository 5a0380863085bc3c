"""Runs: every training run in the run store, and one run in detail (curves, confusion matrix,
per-class scores, misclassified faces, log) with its actions (download, re-evaluate, rename, delete).
The committed reference collections (results/) list beside them, one row per collection until opened;
their runs show their figures, curves and confusion matrices (they keep no model, faces or log).

Nothing here assumes a run is complete: failed, cancelled, running and damaged folders all list,
and each section says what is missing instead of failing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from fer_core.errors import UserError
from fer_core.report import browse, compare, display, run_notes
from fer_core.runs import archive, keeper, queue
from fer_core.runs import store
from pages._calibration import calibration_section
from pages._common import ensure_app_navigation, literal, readable_path, runs_dir
from pages._run_charts import confusion_figure, curves_figure, per_class_figure

ensure_app_navigation()

# Material symbols ship with Streamlit: no emoji font needed
STATUS_ICON = {"completed": ":material/check_circle:", "running": ":material/model_training:",
               "queued": ":material/hourglass_empty:", "cancelled": ":material/stop_circle:",
               "failed": ":material/error:", "damaged": ":material/warning:"}
PCT = st.column_config.NumberColumn(format="percent")
MARGIN = st.column_config.NumberColumn(format="percent", help="test accuracy minus always guessing the largest class")


def filter_controls(rows: list[dict]) -> tuple[list[dict], str, str]:
    """The filters above the table -> (the runs that pass, the column to show and sort by, the sort order)."""
    c1, c2, c3, c4 = st.columns([2, 2, 2, 3])
    opts = lambda key: sorted({str(r[key]) for r in rows if r[key]})   # noqa: E731
    status = c1.multiselect("Status", opts("status"))
    backbone = c2.multiselect("Backbone", opts("backbone"))
    dataset = c3.multiselect("Dataset", opts("dataset"))
    text = c4.text_input("Name contains")
    rows = compare.filter_rows(rows, status, backbone, dataset, text)
    columns = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in ("group", "id")]
    f1, f2, f3, f4 = st.columns([3, 1, 2, 3])
    column = f1.selectbox("Filter or sort by", [""] + columns, key="runs_by",
                          format_func=lambda c: c or "(any figure or parameter)")
    op = f2.selectbox("Test", list(browse.OPERATORS), key="runs_op", disabled=not column)
    value = f3.text_input("Value", key="runs_value", placeholder="e.g. > 60%  or  test accuracy >= 70",
                          help="Percentages as you would type them: 60, 60% and 0.6 mean the same.")
    column, op, wanted, problem = browse.condition(value, column, op, columns)
    order = f4.radio("Sort", ["newest first", "largest first", "smallest first"], horizontal=True,
                     key="runs_order", disabled=not column)
    if problem:
        st.warning(f"Filter not applied: {problem}.")
    elif wanted is not None:
        rows = browse.filter_rows(rows, column, op, wanted)
    if column and order != "newest first":
        rows = browse.sort_rows(rows, column, descending=order == "largest first")
    return rows, column, (order if column else "newest first")


def runs_table(runs: list[dict]) -> list[dict]:
    """The table of all runs, newest first, filtered and sorted by any figure or parameter; the folds of a
    k-fold group (and the runs of a backbone comparison) as one row until opened."""
    rows, column, order = filter_controls(compare.runs_table(runs))
    groups = sorted(r["group"] for r in browse.collapse_groups(rows) if r.get("runs"))
    opened = st.multiselect("Open groups (list their runs one by one)", groups, key="runs_open") if groups else []
    shown_rows = browse.collapse_groups(rows, opened)
    if column and order != "newest first":
        shown_rows = browse.sort_rows(shown_rows, column, descending=order == "largest first")
    shown = ["name", "runs"] + compare.RUNS_COLUMNS[1:] + (
        [column] if column and column not in compare.RUNS_COLUMNS else [])
    st.dataframe(pd.DataFrame(shown_rows, columns=shown), hide_index=True, placeholder="", column_config={
        "best val accuracy": PCT, "last val accuracy": PCT, "test accuracy": PCT, "margin over baseline": MARGIN,
        "macro F1": st.column_config.NumberColumn(format="%.3f"), "runs": st.column_config.NumberColumn(
            help="how many runs a group row stands for (its figures are their means)"),
        "train time (s)": st.column_config.NumberColumn(format="%.0f"), "id": None,
    }, key="runs_table")
    flat = sum(1 for r in shown_rows if (r.get("margin over baseline") or 1) <= 0.005)
    folded = len(shown_rows) - sum(1 for r in shown_rows if not r.get("runs"))
    sort = f"sorted by {column}, {order}" if order != "newest first" else "newest first"
    st.caption(f"{len(rows)} of {len(runs)} runs in {len(shown_rows)} rows, {sort}"
               + (f"; {folded} group row(s) show their runs' means" if folded else "")
               + ". Click a column header to sort the table by it instead."
               + (f" {flat} row(s) score no better than always guessing the largest class (margin ≤ 0)."
                  if flat else ""))
    return rows


def pick_run(runs: list[dict], rows: list[dict]) -> dict | None:
    """The run to show in detail: ?run=ID in the address (links from other pages), else the run just
    launched from the Train page, else the newest."""
    ids = [r["id"] for r in rows] or [r["id"] for r in runs]
    by_id = {r["id"]: r for r in runs}
    launched = [Path(p).name for p in st.session_state.get("launched", [])]
    wanted = st.query_params.get("run") or next((i for i in reversed(launched) if i in ids), None)
    index = ids.index(wanted) if wanted in ids else 0
    choice = st.selectbox("Run", ids, index=index, key="run_pick",
                          format_func=lambda i: f"{by_id[i]['name']} ({i}) · {by_id[i]['status']}")
    st.query_params["run"] = choice   # the address now links to this run
    return by_id.get(choice)


def overview(run: dict) -> None:
    info = run["info"]
    status = run["status"]
    msg = f"{STATUS_ICON.get(status, '')} **{status}**"
    if status in ("failed", "damaged"):
        st.error(f"{msg} — {run['error'] or 'no error message recorded'}")
    elif status == "cancelled":
        st.warning(f"{msg} — {run_notes.cancelled_note(run)}.")
    else:
        st.markdown(msg)
    for problem in run["problems"]:
        st.warning(f"This run folder is damaged: {problem}")
    base = browse.majority_baseline(run["metrics"])
    if browse.learnt_nothing(run):
        st.warning(f"This model learnt nothing useful: its test accuracy ({run['test_accuracy']:.1%}) is no "
                   f"better than always answering the largest class ({base:.1%}). Train longer (see the Train "
                   "page's presets), or check the learning rate.")
    m = st.columns(5)

    def fmt(v, f="{:.1%}"):
        return "–" if v is None else f.format(v)

    m[0].metric("Best val accuracy", fmt(run["best_val_accuracy"]))
    m[1].metric("Test accuracy", fmt(run["test_accuracy"]))
    m[2].metric("Macro F1", fmt(run["macro_f1"], "{:.3f}"))
    m[3].metric("Epochs", run["epochs_done"] or 0)
    m[4].metric("Train time", display.duration(run["train_seconds"]) or "–")
    split = info.get("split") or {}
    if split.get("note"):
        st.caption(f"Split {split.get('spec')}: {split['note']}")
    with st.expander("Config", expanded=False):
        st.json(info.get("config") or {})
    with st.expander("Run record (run.json)"):
        st.json({k: v for k, v in info.items() if k != "config"})


def curves(run: dict) -> None:
    history = store.run_history(run)
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


def _class_choice(col, label: str, counts: dict, key: str) -> str | None:
    """A class picker whose options say how many mistakes each has; None = any class."""
    options = [None] + sorted(counts)
    return col.selectbox(label, options, key=key,
                         format_func=lambda c: f"any ({sum(counts.values())})" if c is None else f"{c} ({counts[c]})")


@st.cache_data(max_entries=64, show_spinner=False)
def misclassified(path: str, stamp: tuple, true: str | None = None, predicted: str | None = None,
                  page: int = 0, per_page: int = 24) -> dict:
    """compare.misclassified, read again only when predictions.csv changes (`stamp`): the Runs page reruns on
    every click, and each call parses the whole file."""
    return compare.misclassified(path, true, predicted, page=page, per_page=per_page)


def gallery(run: dict) -> None:
    """The wrongly predicted test faces, by true class and predicted class, a page at a time."""
    stamp = store.files_stamp(store.predictions_path(run["path"]))
    pairs = misclassified(run["path"], stamp, per_page=1)["pairs"]
    c1, c2, c3 = st.columns([2, 2, 1])
    trues: dict = {}
    for (t, _), n in pairs.items():
        trues[t] = trues.get(t, 0) + n
    true = _class_choice(c1, "True class", trues, "mis_true") if pairs else None
    preds: dict = {}
    for (t, p), n in pairs.items():
        if true in (None, t):
            preds[p] = preds.get(p, 0) + n
    predicted = _class_choice(c2, "Predicted as", preds, "mis_pred") if pairs else None
    page_key = f"mis_page-{true}-{predicted}"            # another choice starts again at page 1
    result = misclassified(run["path"], stamp, true, predicted, page=st.session_state.get(page_key, 1) - 1)
    if result["pages"] > 1:
        c3.number_input(f"Page (of {result['pages']})", 1, result["pages"], key=page_key)
    items = result["items"]
    if not items:
        st.info(result["note"] or "No misclassified test faces.")
        return
    start = result["page"] * 24
    st.caption(f"Faces {start + 1}–{start + len(items)} of {result['matching']} (of {result['total']} misclassified "
               "test faces), the most confident mistakes first"
               + (", one per sequence (CK+ keeps three frames of each)" if any("sequence" in i for i in items)
                  else "") + ".")
    if result["note"]:
        st.info(result["note"])
    shown = [i for i in items if i["path"]]
    cols = st.columns(6)
    for n, item in enumerate(shown):
        conf = f" {item['confidence']:.0%}" if item["confidence"] is not None else ""
        frames = f" ({item['frames']} frames)" if item.get("frames", 1) > 1 else ""
        cols[n % 6].image(item["path"], caption=f"true {item['true']} → {item['predicted']}{conf}{frames}",
                          width=96)
    if not shown:
        st.dataframe(pd.DataFrame(items).drop(columns=["path"]), hide_index=True)


def log(run: dict) -> None:
    text = queue.log_tail(run["path"], 400)
    st.code(text or "(no train.log)", language=None, wrap_lines=True)


def download_action(run: dict) -> Path:
    model = store.model_path(run["path"])
    if model.is_file():
        st.download_button("Download model.keras", data=lambda: model.read_bytes(), file_name=f"{run['id']}.keras",
                           mime="application/octet-stream", key="download_model")
    else:
        st.caption(run_notes.missing_model_note(run))
    return model


def resume_action(run: dict, root: Path) -> None:
    if not queue.can_resume(run):
        return
    st.markdown(f"**Resume**: this run is {run['status']} after epoch {run['epochs_done']}; its checkpoint is kept")
    if st.button("Resume from the last checkpoint", key="resume_go"):
        try:
            queue.queue_resume(run["path"])
            queue.start_queued(root)
            keeper.ensure_keeper(root)     # still queued (the slots are busy): started when one frees
        except (UserError, OSError) as e:
            st.error(f"Cannot resume: {e}")
        else:
            st.toast(f"{literal(run['name'])} is queued to resume; follow it on the Train page")
            st.rerun()


def evaluate_action(run: dict, has_model: bool) -> None:
    st.markdown("**Re-evaluate** the model on another dataset (saved in the run's evaluations/)")
    e1, e2, e3 = st.columns([4, 1, 1])
    data = e1.text_input("Dataset path", key="eval_data", placeholder="e.g. ../shared/data/fer2013")
    split = e2.selectbox("Part", ["test", "all", "val", "train"], key="eval_split")
    if e3.button("Evaluate", disabled=not has_model or not data.strip(), key="eval_go") \
            and readable_path(data.strip()) is not None:
        from fer_core.report.evaluate import evaluate_run
        try:
            with st.spinner("Evaluating…"):
                res = evaluate_run(run["path"], data=data.strip(), split=split, save=True)
            lacks = res.get("classes_model_lacks")
            st.success(f"accuracy {res['accuracy']:.1%}, macro F1 {res['macro_f1']:.3f} on {res['num_samples']} "
                       f"images ({res['ms_per_image']:.2f} ms/image)"
                       + (f"; classes the model lacks, not scored: {', '.join(lacks)}" if lacks else ""))
        except (UserError, FileNotFoundError) as e:
            st.error(str(e))
        except Exception as e:   # an odd model or dataset: one line, not a traceback
            st.error(f"Evaluation failed: {type(e).__name__}: {e}")
    evals = compare.saved_evaluations(run["path"])
    if evals:
        st.dataframe(pd.DataFrame(evals), hide_index=True, placeholder="", column_config={"accuracy": PCT})


def rename_action(run: dict) -> None:
    st.markdown("**Rename** (the folder keeps its id)")
    r1, r2 = st.columns([4, 1])
    new_name = r1.text_input("New name", value=run["name"], key=f"rename-{run['id']}")
    if r2.button("Rename", key="rename_go"):
        try:
            store.rename_run(run["path"], new_name)
            st.rerun()
        except UserError as e:
            st.error(str(e))
        except OSError as e:
            st.error(f"Cannot write run.json: {e}")


def delete_action(run: dict, root: Path) -> None:
    st.markdown("**Delete** this run and all its files")
    busy = run["status"] in ("running", "queued")
    sure = st.checkbox(f"Yes, delete {run['id']} permanently", key=f"sure-{run['id']}", disabled=busy)
    if busy:
        st.caption("Cancel it on the Train page first.")
    if st.button("Delete run", type="primary", disabled=not sure or busy, key="delete_go"):
        try:
            store.delete_run(root, run["path"])
        except (UserError, OSError) as e:
            st.error(f"Cannot delete: {e}")
        else:
            st.query_params.pop("run", None)
            st.session_state.pop("run_pick", None)
            st.toast(f"Deleted {literal(run['name'])}")
            st.rerun()


def actions(run: dict, root: Path) -> None:
    model = download_action(run)
    resume_action(run, root)
    evaluate_action(run, model.is_file())
    rename_action(run)
    delete_action(run, root)


st.title("Runs")
root = runs_dir()
try:
    queue.start_queued(root)   # keep the queue moving for whoever has the app open
except (OSError, UserError):
    pass
own_runs = store.list_runs(root)
if not own_runs:
    st.info(f"No runs of your own yet in {root}: train one on the Train page. The reference collections below "
            "are the committed records behind the README's tables.")
all_runs = archive.beside(own_runs)
if not all_runs:
    st.stop()

rows = runs_table(all_runs)
st.divider()
run = pick_run(all_runs, rows)
if run is not None:
    st.header(literal(run["name"]))
    st.caption(f"{run['id']} · {run['backbone'] or '?'} on {run['dataset'] or '?'} · weights {run['weights'] or '?'}"
               f" · created {run['created'] or '?'}")
    if run.get("collection"):
        st.info(f"A committed reference record ({literal(run['collection'])}): its figures, curves and confusion "
                "matrices are kept, not its model, faces or log. Re-made by "
                f"`{run.get('made_by') or 'no committed command'}`.", icon=":material/inventory_2:")
        names, sections = ["Overview", "Curves", "Confusion & per class"], [overview, curves, confusion]
    else:
        names = ["Overview", "Curves", "Confusion & per class", "Calibration", "Misclassified", "Log", "Actions"]
        sections = [overview, curves, confusion, calibration_section, gallery, log, lambda r: actions(r, root)]
    # Only the open tab's section runs (on_change="rerun"): each of them reads files and builds charts, and the
    # page reruns on every click, so drawing all seven each time made the page several times slower than Home.
    tabs = st.tabs(names, key="run_tab", on_change="rerun")
    for tab, section in zip(tabs, sections):
        if not tab.open:
            continue
        with tab:
            try:
                section(run)
            except Exception as e:   # one damaged file must not take the whole page down
                st.error(f"Cannot show this part of the run: {type(e).__name__}: {e}")
