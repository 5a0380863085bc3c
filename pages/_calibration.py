"""The Runs page's Calibration tab: the run's logit adjustment and temperature, ECE before and after them, accuracy
as the app answers, the reliability diagram."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from fer_core.report.calibrate import run_reliability
from fer_core.report.reliability import reliability_figure
from fer_core.runs import store


@st.cache_data(max_entries=16, show_spinner=False)
def reliability(path: str, stamp: tuple) -> dict:
    """run_reliability, computed again only when the run's predictions.csv or calibration.json changes (`stamp`):
    parsing a FER2013 run's predictions took longer than the rest of the Runs page, on every click."""
    return run_reliability(path)


def calibration_section(run: dict) -> None:
    rel = reliability(run["path"], store.files_stamp(store.predictions_path(run["path"]),
                                                     store.calibration_path(run["path"])))
    cal, test = rel["calibration"], rel["test"]
    if cal:
        tau = (cal.get("logit_adjustment") or {}).get("tau") or 0
        adjusted = (f"Logit adjustment **tau {tau:g}** (emotions rare in training weighed up by their share of it "
                    "to the power -tau, chosen on validation faces), then t" if tau else "T")
        st.markdown(f"{adjusted}emperature **{rel['temperature']:.3f}**, fitted on "
                    f"{cal['fitted_on']['num_faces']:,} validation faces ({cal['fitted'][:10]}): every probability "
                    "the app and the CLI show is the model's softmax with its logits so adjusted and divided by it.")
    else:
        st.info("No temperature fitted: the app shows the model's own probabilities. "
                f"`python -m fer_core calibrate {run['path']}` fits one on the run's validation part.")
    rows = [_row("validation (fitted on)", cal)] if cal else []
    if test is not None:
        rows.append(_row("test (never seen by the fit)", test))
    if rows:
        pct = st.column_config.NumberColumn(format="%.2f%%")
        st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
            "ECE before": pct, "ECE after": pct, "accuracy before": pct, "accuracy after": pct,
            "faces": st.column_config.NumberColumn(format="%d")})
    if test is None:
        st.info("No test predictions (predictions.csv) to draw the reliability diagram from.")
        return
    st.plotly_chart(reliability_figure(test["bins_before"], test["bins_after"]), key="detail_reliability")
    st.caption(f"The run's {test['num_faces']:,} test faces, from predictions.csv, in {test['bins']} equal-width "
               "confidence bins. A bar below the diagonal: answers given with that confidence were right less "
               "often (overconfident); above it, underconfident. ECE: the faces-weighted mean gap.")


def _row(part: str, figures: dict) -> dict:
    after = figures.get("after") or {}
    pct = lambda v: None if v is None else 100 * v   # noqa: E731
    return {"part": part, "faces": figures.get("num_faces") or figures.get("fitted_on", {}).get("num_faces"),
            "ECE before": pct(figures["before"]["ece"]), "ECE after": pct(after.get("ece")),
            "NLL before": round(figures["before"]["nll"], 4),
            "NLL after": round(after["nll"], 4) if after else None,
            "accuracy before": pct(figures["before"].get("accuracy")), "accuracy after": pct(after.get("accuracy"))}
