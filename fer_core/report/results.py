"""The README's results tables, computed from the committed records (so every figure there has a command).

`python -m fer_core results` prints them as Markdown: the headline models (in the run store, with their
models), the FER2013 runs tried for the default, the CK+ protocols, and the backbone comparisons on CK+
(10-fold means) and on FER2013 (those from the reference collections in results/, fer_core/runs/archive.py).
`collect` packs a run store's reference runs into those collections: what the reference scripts end with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_core.report.compare import (
    comparison_table,
    input_sizes_label,
    kfold_summaries,
    model_size_bytes,
    models_per_fold,
)
from fer_core.report.browse import BACKBONE_COMPARISON
from fer_core.runs import archive, store
from fer_core.runs.defaults import FER2013_SCRATCH_RUN_ID, FER2013_CANDIDATE_RUN_IDS, FER2013_RUN_ID, FERPLUS_RUN_ID


def _fmt(v, pct=False, digits=1):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    return f"{100 * v:.{digits}f}%" if pct else (f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}")


def markdown(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def fold_runs(summary: dict, runs: dict) -> list[dict]:
    """The run of each fold, by folder name (summaries may hold another machine's paths)."""
    names = [Path(str(f.get("run", ""))).name for f in summary.get("per_fold", [])]
    return [runs[n] for n in names if n in runs]


def all_runs(runs_dir: Path, results_dir) -> dict:
    """{run id: run}: the reference collections' records, then the run store's runs (which win on a clash)."""
    return {r["id"]: r for r in [*archive.archived_runs(results_dir), *store.list_runs(runs_dir)]}


def all_kfold_summaries(runs_dir: Path, results_dir) -> dict:
    """{group: summary}: the reference collections' k-fold groups, then the run store's own."""
    return {s.get("group"): s for s in [*archive.kfold_summaries(results_dir), *kfold_summaries(runs_dir)]}


def kfold_backbone_row(summary: dict, runs: dict) -> dict:
    """Means over the folds: the CK+ row of the backbone table."""
    rows = comparison_table(fold_runs(summary, runs))

    def mean(key):
        vals = [r[key] for r in rows if r.get(key) is not None]
        return float(np.mean(vals)) if vals else None
    return {"backbone": summary.get("backbone"), "folds": summary.get("folds"),
            "train accuracy": mean("train accuracy"),
            "test accuracy": summary.get("mean_accuracy"), "test std": summary.get("std_accuracy"),
            "macro F1": summary.get("mean_macro_f1"), "train time (s)": mean("train time (s)"),
            "test ms/image": mean("test ms/image"), "parameters": rows[0]["parameters"] if rows else None,
            "model size (MB)": rows[0]["model size (MB)"] if rows else None}


def _order(backbone):
    """Tables list backbones in the registry's order."""
    from fer_core.model.backbones import BACKBONES
    names = list(BACKBONES)
    return names.index(backbone) if backbone in names else len(names)


def _headline_row(d: Path) -> list:
    r = store.read_run(d)
    m = r.get("metrics") or {}
    t = m.get("test") or {}
    export = store.read_json(store.export_json_path(d), {}) or {}
    int8 = (f"{_fmt(export.get('accuracy_tflite'), True)} ({export.get('delta_points', 0):+.2f})"
            if export.get("quantize") == "int8" else "–")
    return [d.name, r["dataset"], len(m.get("class_names") or []), _fmt(t.get("accuracy"), True),
            _fmt(t.get("macro_f1"), True), _fmt((m.get("val") or {}).get("accuracy"), True),
            _fmt((m.get("train") or {}).get("accuracy"), True), r.get("epochs_done"),
            _fmt(r.get("train_seconds") and r["train_seconds"] / 60, digits=0) + " min",
            _fmt((model_size_bytes(r) or 0) / 1e6, digits=2) + " MB", int8]


def headline_table(runs_dir: Path) -> str:
    rows = [_headline_row(runs_dir / i) for i in (FER2013_RUN_ID, FERPLUS_RUN_ID)
            if store.run_json_path(runs_dir / i).is_file()]
    if not rows:
        return ""
    return "### Headline models\n\n" + markdown(rows, [
        "run", "data", "classes", "test acc", "macro F1", "val acc", "train acc", "epochs", "train time",
        "model size", "int8 LiteRT test acc (points vs Keras)"])


def fer2013_candidates_table(runs: dict) -> str:
    """Every FER2013 run tried for the headline, so the choice can be checked: chosen on val, test beside it."""
    rows = []
    for run_id in FER2013_CANDIDATE_RUN_IDS:
        if run_id not in runs:
            continue
        r = runs[run_id]
        m, cfg = r.get("metrics") or {}, r["info"].get("config") or {}
        rows.append([run_id, cfg.get("weights"), cfg.get("learning_rate"),
                     _fmt((r.get("train_seconds") or 0) / 60, digits=0), r.get("epochs_done"),
                     _fmt((m.get("val") or {}).get("accuracy"), True),
                     _fmt((m.get("test") or {}).get("accuracy"), True),
                     "headline" if run_id == FER2013_RUN_ID else ""])
    if not rows:
        return ""
    return "### FER2013 runs tried (chosen on PublicTest)\n\n" + markdown(rows, [
        "run", "starts from", "learning rate", "train min", "epochs", "val acc (PublicTest)",
        "test acc (PrivateTest)", ""])


def unseen_people_table(runs_dir: Path) -> str:
    """The headline models on all of CK+ (trained on neither), from their saved evaluations."""
    rows = []
    for run_id in (FER2013_RUN_ID, FERPLUS_RUN_ID):
        for p in sorted((runs_dir / run_id / "evaluations").glob("CK*-all*.json")):
            e = store.read_json(p, {}) or {}
            rows.append([run_id, ", ".join(e.get("classes_scored") or []), e.get("num_samples"),
                         _fmt(e.get("accuracy"), True), _fmt(e.get("macro_f1"), True)])
    if not rows:
        return ""
    return "### The default: faces of people neither model saw (all of CK+)\n\n" + markdown(
        rows, ["run", "emotions scored (both models know them)", "faces", "accuracy", "macro F1"])


def _minutes_before(runs: dict, run_id: str) -> float:
    """Training seconds a run inherited: those of the committed run its weights continued ("run:" weights)."""
    weights = str((runs[run_id]["info"].get("config") or {}).get("weights") or "")
    parent = runs.get(Path(weights[4:]).name) if weights.startswith("run:") else None
    return float(parent.get("train_seconds") or 0) if parent else 0.0


def minutes_table(runs: dict, marks=(5, 10, 20, 30, 45, 60, 85, 120, 150, 170)) -> str:
    """What a shorter budget buys: the best validation accuracy by N minutes of training for the runs of the
    headline recipe; a run that continued another counts that run's minutes first."""
    rows = []
    for run_id in (FER2013_SCRATCH_RUN_ID, FER2013_RUN_ID, FERPLUS_RUN_ID):
        history = store.run_history(runs[run_id]) if run_id in runs else []
        if not history:
            continue
        start = _minutes_before(runs, run_id)
        cells, spent, best, i = [], start, None, 0
        total = start + sum(row["seconds"] or 0.0 for row in history)
        for mark in marks:
            while i < len(history) and spent + (history[i]["seconds"] or 0.0) <= mark * 60:
                spent += history[i]["seconds"] or 0.0
                best = max(best or 0.0, history[i]["val_accuracy"] or 0.0)
                i += 1
            reached = spent - start >= 0.5 * (mark * 60 - start) and total >= 0.98 * mark * 60
            cells.append(_fmt(best, True) if best is not None and reached else "–")   # "–": not run that long
        rows.append([run_id, *cells])
    if not rows:
        return ""
    return "### Accuracy per CPU-minute\n\n" + markdown(rows, ["run", *[f"{m} min" for m in marks]])


def results_markdown(runs_dir, results_dir=None) -> str:
    runs_dir = Path(runs_dir)
    runs, summaries = all_runs(runs_dir, results_dir), all_kfold_summaries(runs_dir, results_dir)
    parts = [headline_table(runs_dir), fer2013_candidates_table(runs), unseen_people_table(runs_dir),
             minutes_table(runs), kfold_tables(summaries, runs_dir), backbone_tables(summaries, runs)]
    return "\n\n".join(t for t in parts if t)


def kfold_tables(summaries: dict, runs_dir: Path) -> str:
    parts = []
    main_groups = ("ck-transfer-ferplus", "ck-scratch", "ck-transfer-ferplus-random")
    proto = [g for g in main_groups if g in summaries]
    # other CK+ recipes tried (not the backbone table's): listed after, so every one tried is on show
    proto += sorted(g for g in summaries if g and g.startswith("ck-") and not g.startswith("ck-bb-") and g not in proto)
    if proto:
        rows = []
        for g in proto:
            s = summaries[g]
            rows.append([g, s.get("weights", "").replace(str(runs_dir.resolve()) + "/", "runs/"), s.get("split"),
                         s.get("folds"), input_sizes_label(s), models_per_fold(s),
                         _fmt(s.get("mean_val_accuracy"), True),
                         f"{_fmt(s['mean_accuracy'], True)} ± {_fmt(s['std_accuracy'], True)}",
                         f"{_fmt(s['min_accuracy'], True)}–{_fmt(s['max_accuracy'], True)}",
                         _fmt(s.get("mean_macro_f1"), True),
                         _fmt(s.get("train_seconds_all_runs") or s.get("seconds"), digits=0)])
        parts.append("### CK+48: transfer vs from scratch, subject-independent 10-fold\n\n" + markdown(
            rows, ["group", "weights", "split", "folds", "input px", "models per fold", "val accuracy (mean)",
                   "test accuracy (mean ± std)", "min–max",
                   "macro F1", "run seconds (all runs)"]))

    return "\n\n".join(parts)


def backbone_tables(summaries: dict, runs: dict) -> str:
    parts = []
    ck = sorted((kfold_backbone_row(s, runs) for g, s in summaries.items() if g and g.startswith("ck-bb-")),
                key=lambda r: _order(r["backbone"]))
    if ck:
        parts.append("### Backbones on CK+48 (subject-independent 10-fold, means over folds)\n\n" + markdown(
            [[r["backbone"], _fmt(r["train accuracy"], True), f"{_fmt(r['test accuracy'], True)} ± "
              f"{_fmt(r['test std'], True)}", _fmt(r["macro F1"], True), _fmt(r["train time (s)"]),
              _fmt(r["test ms/image"], digits=2), _fmt(r["parameters"]), _fmt(r["model size (MB)"], digits=1)]
             for r in ck],
            ["backbone", "train acc", "test acc (± std)", "macro F1", "train s/fold", "test ms/image",
             "parameters", "model MB"]))

    fer = [r for r in runs.values() if r["id"].startswith("fer-bb-") and r.get("metrics")]
    if fer:
        rows = sorted(comparison_table(fer), key=lambda r: _order(r["backbone"]))
        parts.append("### Backbones on FER2013 (PrivateTest, 3,589 faces)\n\n" + markdown(
            [[r["backbone"], _fmt(r["train accuracy"], True), _fmt(r["test accuracy"], True), _fmt(r["macro F1"], True),
              _fmt(r["train time (s)"], digits=0), _fmt(r["test ms/image"], digits=2), _fmt(r["parameters"]),
              _fmt(r["model size (MB)"], digits=1)] for r in rows],
            ["backbone", "train acc", "test acc", "macro F1", "train s", "test ms/image", "parameters", "model MB"]))
    return "\n\n".join(parts)


def collect(runs_dir, results_dir=None) -> list[Path]:
    """Packs a run store's reference runs into results/ collections: each k-fold group (its summary and its
    folds' runs, exactly), each backbone comparison (runs named PREFIX-bb-BACKBONE outside a k-fold), and the
    FER2013 runs tried for the default other than the headline itself, which stays in runs/ with its model; the
    last two are merged into what the collection already holds, so one new run joins its earlier records."""
    runs_dir, written = Path(runs_dir), []
    for s in kfold_summaries(runs_dir):
        names = [Path(str(m)).name for f in s["per_fold"] for m in (f.get("members") or [f.get("run")]) if m]
        summary = {k: v for k, v in s.items() if k != "file"}
        written.append(archive.write_collection(s["group"], "kfold", f"k-fold {s['group']}",
                                                [runs_dir / n for n in names if (runs_dir / n).is_dir()],
                                                summary, results_dir))
    comparisons: dict[str, list[Path]] = {}
    for d in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        m = BACKBONE_COMPARISON.match(d.name)
        if m and not (store.read_json(store.run_json_path(d), {}) or {}).get("kfold"):
            comparisons.setdefault(m["prefix"], []).append(d)
    for prefix, dirs in comparisons.items():
        written.append(archive.write_collection(f"{prefix}-bb", "backbones", f"backbone comparison {prefix}", dirs,
                                                folder=results_dir, merge=True))
    tried = [runs_dir / i for i in FER2013_CANDIDATE_RUN_IDS
             if i != FER2013_RUN_ID and store.run_json_path(runs_dir / i).is_file()]
    if tried:
        written.append(archive.write_collection("fer2013-candidates", "runs", "FER2013 runs tried for the default",
                                                tried, folder=results_dir, merge=True))
    return written
