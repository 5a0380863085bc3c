"""Plotly figures shared by the Train, Runs and Compare pages (no Streamlit calls here)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots


def curves_figure(history: list[dict], title: str = "") -> go.Figure:
    """Loss, accuracy (train and validation) and learning rate by epoch, side by side."""
    epochs = [h.get("epoch") for h in history]
    fig = make_subplots(rows=1, cols=3, subplot_titles=("loss", "accuracy", "learning rate"))
    for col, metric in ((1, "loss"), (2, "accuracy")):
        for prefix, label, dash in (("", "train", "solid"), ("val_", "validation", "dash")):
            fig.add_trace(go.Scatter(x=epochs, y=[h.get(prefix + metric) for h in history], mode="lines+markers",
                                     name=f"{label} {metric}", line={"dash": dash}), row=1, col=col)
    fig.add_trace(go.Scatter(x=epochs, y=[h.get("learning_rate") for h in history], mode="lines+markers",
                             name="learning rate"), row=1, col=3)
    fig.update_yaxes(type="log", exponentformat="e", tickformat=".0e", row=1, col=3)   # 1e-3, not "100µ"
    fig.update_xaxes(title_text="epoch", **epoch_ticks(epochs))
    fig.update_layout(height=330, margin={"t": 50, "b": 40, "l": 40, "r": 10}, title=title or None,
                      legend={"orientation": "h", "y": -0.25})
    return fig


def epoch_ticks(epochs: list) -> dict:
    """Whole epochs only on the axis (plotly otherwise puts ticks at 1.5, 2.5 on short runs)."""
    n = max([e for e in epochs if isinstance(e, (int, float))] or [1])
    return {"tickmode": "linear", "tick0": 1, "dtick": max(1, int(round(n / 10))), "tickformat": "d"}


def confusion_figure(matrix: list[list], labels: list[str], normalized: bool, title: str = "") -> go.Figure:
    """Heatmap, true class down, predicted class across, each cell labelled."""
    text = [[f"{v:.0%}" if normalized else f"{int(v)}" for v in row] for row in matrix]
    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, text=text, texttemplate="%{text}",
                               colorscale="Blues", zmin=0, zmax=1 if normalized else None,
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text="true")
    fig.update_xaxes(title_text="predicted")
    fig.update_layout(height=420, margin={"t": 40 if title else 10, "b": 40, "l": 40, "r": 10},
                      title=title or None)
    return fig


def per_class_figure(rows: list[dict]) -> go.Figure:
    """Precision, recall and F1 per class as grouped bars."""
    classes = [r["class"] for r in rows]
    fig = go.Figure([go.Bar(name=k, x=classes, y=[r[k] for r in rows]) for k in ("precision", "recall", "f1")])
    fig.update_layout(barmode="group", height=320, yaxis={"range": [0, 1]}, margin={"t": 10, "b": 40})
    return fig


def overlay_figure(series: dict[str, list[dict]], metric: str) -> go.Figure:
    """One line per run: `metric` from history.csv by epoch."""
    fig = go.Figure()
    for name, history in series.items():
        fig.add_trace(go.Scatter(x=[h.get("epoch") for h in history], y=[h.get(metric) for h in history],
                                 mode="lines", name=name))
    fig.update_xaxes(**epoch_ticks([h.get("epoch") for hs in series.values() for h in hs]))
    fig.update_layout(height=340, xaxis_title="epoch", yaxis_title=metric.replace("_", " "),
                      margin={"t": 10, "b": 40}, legend={"orientation": "h", "y": -0.25})
    return fig


def grouped_f1_figure(rows: list[dict]) -> go.Figure:
    """Per-class F1, one bar per run in each class group."""
    runs = list(dict.fromkeys(r["run"] for r in rows))
    fig = go.Figure()
    for run in runs:
        mine = [r for r in rows if r["run"] == run]
        fig.add_trace(go.Bar(name=run, x=[r["class"] for r in mine], y=[r["f1"] for r in mine]))
    fig.update_layout(barmode="group", height=340, yaxis={"range": [0, 1], "title": "F1"},
                      margin={"t": 10, "b": 40}, legend={"orientation": "h", "y": -0.25})
    return fig
