"""Compare: runs side by side (the backbone comparison table, validation curves, per-class F1,
confusion matrices) and the k-fold summaries. Works from metrics.json alone, so the committed reference
records (results/, without their models) compare beside the run store's runs.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from fer_core.report import browse, compare
from fer_core.runs import archive, defaults
from fer_core.runs import store
from pages._common import ensure_app_navigation, literal, runs_dir
from pages._run_charts import confusion_figure, grouped_f1_figure, overlay_figure

ensure_app_navigation()

PCT = st.column_config.NumberColumn(format="percent")


def choose_runs(runs: list[dict]) -> list[dict]:
    """Runs with an evaluation can be compared; the default model and the newest runs are preselected."""
    evaluated = [r for r in runs if r["metrics"]]
    if not evaluated:
        st.info("No evaluated run yet: a run gets its metrics when training completes.")
        return []
    by_id = {r["id"]: r for r in evaluated}
    first = compare.preselected(evaluated, defaults.DEFAULT_RUN_ID)
    chosen = st.multiselect("Runs to compare", list(by_id), default=first, key="compare_runs",
                            format_func=lambda i: f"{by_id[i]['name']} ({by_id[i]['backbone']}, {by_id[i]['dataset']})")
    return [by_id[i] for i in chosen]


def table(runs: list[dict]) -> None:
    rows = compare.comparison_table(runs)
    flat = [literal(r["name"]) for r in runs if browse.learnt_nothing(r)]
    if flat:
        st.warning(f"No better than always guessing the largest class: {', '.join(flat)}. Their figures say "
                   "nothing about the recipe; train them longer.")
    datasets = {r.get("dataset") for r in runs}
    if len(datasets) > 1:
        st.info(f"These runs were tested on different datasets ({', '.join(sorted(map(str, datasets)))}): "
                "compare accuracies within one dataset only.")
    budgets = compare.budget_note(runs)
    if budgets:
        st.info(budgets, icon=":material/timer:")
    st.dataframe(pd.DataFrame(rows, columns=compare.COMPARE_COLUMNS), hide_index=True, placeholder="", column_config={
        "train accuracy": PCT, "test accuracy": PCT, "margin over baseline": PCT,
        "macro F1": st.column_config.NumberColumn(format="%.3f"),
        "train time (s)": st.column_config.NumberColumn(format="%.0f"),
        "test ms/image": st.column_config.NumberColumn(format="%.3f"),
        "parameters": st.column_config.NumberColumn(format="localized"), "id": None,
    }, key="compare_table")
    st.download_button("Download the table as CSV", compare.to_csv(rows, compare.COMPARE_COLUMNS),
                       file_name="comparison.csv", mime="text/csv", key="compare_csv")


def differences(runs: list[dict]) -> None:
    """Only the parameters that differ between the chosen runs; repeated runs grouped with mean ± std."""
    rows = browse.parameters_table(runs, only_differing=True)
    if len(rows[0]) > 1:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="param_diff", placeholder="")   # a blank, not "None"
    else:
        st.caption("These runs were trained with the same parameters.")
    groups = browse.grouped_table(runs)
    if groups:
        st.markdown("Repeated runs (other seeds or folds of one recipe), mean ± std:")
        st.dataframe(pd.DataFrame(groups), hide_index=True, key="groups", placeholder="")


def curves(runs: list[dict]) -> None:
    series = {r["name"]: store.run_history(r) for r in runs}
    series = {k: v for k, v in series.items() if v}
    if not series:
        st.info("None of these runs has a history.csv.")
        return
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("Validation accuracy")
        st.plotly_chart(overlay_figure(series, "val_accuracy"), key="overlay_val_acc")
    with c2:
        st.markdown("Validation loss")
        st.plotly_chart(overlay_figure(series, "val_loss"), key="overlay_val_loss")


def confusions(runs: list[dict]) -> None:
    normalized = st.toggle("Row-normalised", value=True, key="cmp_norm")
    cols = st.columns(min(len(runs), 2))     # two to a row: three were too small to read
    for n, r in enumerate(runs):
        cm, labels = compare.confusion(r["metrics"], "test", normalized)
        with cols[n % len(cols)]:
            if cm is None:
                st.caption(f"{literal(r['name'])}: no test confusion matrix")
            else:
                st.plotly_chart(confusion_figure(cm, labels, normalized, title=r["name"]), key=f"cmp_cm_{r['id']}")


def kfold() -> None:
    summaries = compare.kfold_summaries(runs_dir()) + archive.kfold_summaries()
    if not summaries:
        st.caption("No k-fold summaries (runs/kfold-*.json, written by `python -m fer_core kfold`).")
        return
    columns = {k: PCT for k in ("mean val accuracy", "mean accuracy", "std accuracy", "min accuracy", "max accuracy")}
    columns["input size"] = st.column_config.TextColumn(width="medium")   # "40, 48, 56, 64" in full
    rows = compare.kfold_table(summaries)
    st.dataframe(pd.DataFrame(rows, columns=compare.KFOLD_COLUMNS), hide_index=True, column_config=columns,
                 key="kfold_table", placeholder="")
    st.download_button("Download the k-fold table as CSV", compare.to_csv(rows, compare.KFOLD_COLUMNS),
                       file_name="kfold.csv", mime="text/csv", key="kfold_csv")
    for s in summaries:
        with st.expander(f"{s.get('group')}: per fold"):
            per_fold = pd.DataFrame(s["per_fold"]).rename(columns=lambda c: str(c).replace("_", " "))
            st.dataframe(per_fold, hide_index=True, placeholder="",
                         column_config={k: PCT for k in ("test accuracy", "train accuracy", "val accuracy")})


def curves_and_f1(runs: list[dict]) -> None:
    st.markdown("**Validation curves**")
    curves(runs)
    st.markdown("**Per-class F1 (test)**")
    rows = compare.per_class_f1(runs)
    if rows:
        st.plotly_chart(grouped_f1_figure(rows), key="cmp_f1")


st.title("Compare runs")
all_runs = archive.beside(store.list_runs(runs_dir()))
chosen = choose_runs(all_runs)
if chosen:
    st.subheader("Backbone comparison")
    table(chosen)
    st.subheader("What differs")
    differences(chosen)
# Only the open tab's section runs (on_change="rerun"): the charts and the k-fold tables are most of the page's
# work, and it reruns on every click.
sections = {"Curves and per-class F1": lambda: curves_and_f1(chosen), "Confusion matrices (test)":
            lambda: confusions(chosen), "K-fold cross-validation": kfold}
if not chosen:
    sections = {"K-fold cross-validation": kfold}
for tab, section in zip(st.tabs(list(sections), key="compare_tab", on_change="rerun"), sections.values()):
    if tab.open:
        with tab:
            section()
