"""The reliability diagram: for answers given with about x% confidence, how often they were right.

A bar on the diagonal is an honest probability; a bar below it, an overconfident one. Built from
fer_core.report.calibration's bins, so the page, the README image and the CLI agree on the same figures.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fer_core.report.calibration import ece_from_bins


def _panel_title(name: str, bins: list[dict]) -> str:
    ece = ece_from_bins(bins)
    return f"{name}: ECE {ece:.2%}" if ece is not None else f"{name}: no answers"


def reliability_figure(bins_before: list[dict], bins_after: list[dict] | None = None, title: str = "") -> go.Figure:
    """Accuracy per confidence bin beside the diagonal of perfect calibration; with bins_after, two panels
    (the model's own probabilities, then the calibrated ones the app shows)."""
    panels = [("model's own probabilities", bins_before)]
    if bins_after is not None:
        panels.append(("with the run's calibration", bins_after))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[_panel_title(n, b) for n, b in panels],
                        shared_yaxes=True)
    for col, (name, bins) in enumerate(panels, start=1):
        used = [b for b in bins if b["count"]]
        centres = [(b["lo"] + b["hi"]) / 2 for b in used]
        fig.add_trace(go.Bar(x=centres, y=[b["accuracy"] for b in used], width=[b["hi"] - b["lo"] for b in used],
                             name="share right", marker={"color": "#4c78a8", "line": {"color": "white", "width": 1}},
                             customdata=[[b["count"], b["confidence"]] for b in used], showlegend=col == 1,
                             hovertemplate="confidence %{customdata[1]:.1%}<br>right %{y:.1%}"
                                           "<br>%{customdata[0]} answers<extra></extra>"), row=1, col=col)
        fig.add_trace(go.Bar(x=centres, y=[b["confidence"] - b["accuracy"] for b in used],
                             base=[b["accuracy"] for b in used], width=[b["hi"] - b["lo"] for b in used],
                             name="gap to the mean confidence", showlegend=col == 1, hoverinfo="skip",
                             marker={"color": "rgba(228, 87, 86, 0.35)", "line": {"color": "#e45756", "width": 1}}),
                      row=1, col=col)
        fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                                 line={"color": "gray", "dash": "dash"}, showlegend=col == 1, hoverinfo="skip"),
                      row=1, col=col)
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title_text="confidence (top probability)")
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(title_text="answers that were right", row=1, col=1)
    fig.update_layout(height=380, margin={"t": 90 if title else 40, "b": 40, "l": 50, "r": 10},
                      title=title or None, legend={"orientation": "h", "y": -0.25}, bargap=0, barmode="overlay")
    return fig
