"""Tables and figures' data for the Runs and Compare pages: pure functions over run folders.

Everything here reads what `store.read_run` returns (or the run folder itself) and
tolerates missing pieces: a failed run has no metrics, a reference run committed without
model.keras still has metrics.json (with model_bytes and parameters), a damaged run.json
gives a row of blanks rather than an exception.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from fer_core.data.emotions import canonical
from fer_core.report import browse, display
from fer_core.runs import store
from fer_core.runs.defaults import REPO_ROOT

RUNS_COLUMNS = ["name", "status", "dataset", "backbone", "test accuracy", "margin over baseline",
                "best val accuracy", "last val accuracy", "macro F1", "epochs", "weights", "train time (s)",
                "created", "id"]
# the figures people compare first, then the cost; model size before the long tail (no horizontal scroll for it)
COMPARE_COLUMNS = ["model", "test accuracy", "margin over baseline", "macro F1", "model size (MB)",
                   "train time (s)", "test ms/image", "train accuracy", "parameters", "backbone", "dataset", "id"]


def _num(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _weights_label(w) -> str | None:
    """'run:/abs/path/RUN' -> 'run:RUN' (the folder name is what a user recognises)."""
    if isinstance(w, str) and w.startswith("run:"):
        return "run:" + Path(w[4:]).name
    return w


def runs_table(runs: list[dict]) -> list[dict]:
    """One row per run for the Runs page: RUNS_COLUMNS, then every training parameter (to filter or sort by)."""
    rows = []
    for r in runs:
        rows.append({
            "name": r["name"], "status": r["status"], "dataset": r.get("dataset") or None,
            "backbone": r.get("backbone"), "weights": _weights_label(r.get("weights")),
            "epochs": r.get("epochs_done"), **browse.best_and_last(r),
            "test accuracy": _num(r.get("test_accuracy")), "macro F1": _num(r.get("macro_f1")),
            "margin over baseline": browse.margin_over_baseline(r),
            "train time (s)": _num(r.get("train_seconds")), "created": r.get("created"), "id": r["id"],
            "group": browse.fold_group(r),
            **{f"param {k}": v for k, v in browse.parameters(r).items()},
        })
    return rows


def filter_rows(rows: list[dict], status=None, backbone=None, dataset=None, text: str = "") -> list[dict]:
    """Keep rows whose status/backbone/dataset are among the chosen ones (empty = any) and whose name or id has
    `text`."""
    text = (text or "").strip().lower()
    out = []
    for r in rows:
        if status and r["status"] not in status:
            continue
        if backbone and r["backbone"] not in backbone:
            continue
        if dataset and r["dataset"] not in dataset:
            continue
        if text and text not in f"{r['name']} {r['id']}".lower():
            continue
        out.append(r)
    return out


def model_size_bytes(run: dict) -> int | None:
    """model.keras's size, or metrics.json's model_bytes for runs stored without the model file."""
    p = store.model_path(run["path"]) if run.get("path") else None
    if p is not None and p.is_file():
        return p.stat().st_size
    return (run.get("metrics") or {}).get("model_bytes")


def preselected(runs: list[dict], default_id: str, n: int = 4) -> list[str]:
    """The Compare page's first choice: the app's default model, then the newest runs on the same dataset
    that are not k-fold folds and learnt something, up to n.

    Why: a fresh clone lists ~100 committed fold records ("the newest four" picked four of them); figures of
    CK+ and FER2013 runs cannot be compared; a run at the majority-class baseline is not worth a slot.
    """
    standalone = sorted((r for r in runs if not (r.get("info") or {}).get("kfold")),
                        key=lambda r: r.get("created") or "", reverse=True)
    first = next((r for r in standalone if r["id"] == default_id), standalone[0] if standalone else None)
    if first is None:
        return [r["id"] for r in runs[:n]]
    same = [r for r in standalone if r["id"] != first["id"] and r.get("dataset") == first.get("dataset")
            and not browse.learnt_nothing(r)]
    return [first["id"]] + [r["id"] for r in same][:n - 1]


def training_budget(run: dict) -> float | None:
    """Seconds the run was allowed (its max_train_seconds), else the seconds it trained."""
    budget = _num(((run.get("info") or {}).get("config") or {}).get("max_train_seconds"))
    return budget if budget else _num(run.get("train_seconds"))


def budget_note(runs: list[dict], ratio: float = 1.5) -> str | None:
    """Says when the runs trained for very different times. Why: the 91-minute headline model beside runs of a
    150-second backbone comparison looks like a better recipe when it mostly had 36 times longer."""
    budgets = [(r["name"], training_budget(r)) for r in runs]
    budgets = [(n, b) for n, b in budgets if b]
    if len(budgets) < 2 or max(b for _, b in budgets) < ratio * min(b for _, b in budgets):
        return None
    spelt = "; ".join(f"{n}: {display.duration(b)}" for n, b in sorted(budgets, key=lambda x: -x[1]))
    return (f"These runs had different training budgets ({spelt}). A run trained longer can score higher with "
            "the same recipe: compare recipes at equal budgets.")


def comparison_table(runs: list[dict]) -> list[dict]:
    """The backbone comparison, one row per run, in COMPARE_COLUMNS order."""
    rows = []
    for r in runs:
        m = r.get("metrics") or {}
        size = model_size_bytes(r)
        params = m.get("parameters") or (r.get("info") or {}).get("parameters")
        rows.append({
            "model": r["name"], "backbone": r.get("backbone"), "dataset": r.get("dataset") or None,
            "train accuracy": _num((m.get("train") or {}).get("accuracy")),
            "test accuracy": _num((m.get("test") or {}).get("accuracy")),
            "macro F1": _num((m.get("test") or {}).get("macro_f1")),
            "train time (s)": _num(r.get("train_seconds")),
            "test ms/image": _num((m.get("test") or {}).get("ms_per_image")),
            "parameters": int(params) if isinstance(params, (int, float)) else None,
            "model size (MB)": round(size / 1e6, 2) if size else None,
            "margin over baseline": browse.margin_over_baseline(r),
            "id": r["id"],
        })
    return rows


def to_csv(rows: list[dict], columns: list[str] | None = None) -> str:
    """CSV with numbers rounded as the table shows them (4 decimals), not float noise."""
    columns = columns or (list(rows[0]) if rows else [])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    w.writerows([{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rows])
    return buf.getvalue()


def per_class(metrics: dict | None, split: str = "test") -> list[dict]:
    """[{class, precision, recall, f1, support}] in the model's class order."""
    part = (metrics or {}).get(split) or {}
    pc = part.get("per_class") or {}
    order = part.get("class_order") or list(pc)
    return [{"class": c, **{k: pc[c].get(k) for k in ("precision", "recall", "f1", "support")}}
            for c in order if isinstance(pc.get(c), dict)]


def per_class_f1(runs: list[dict], split: str = "test") -> list[dict]:
    """Long table [{run, class, f1}] for side-by-side bars. Class names are put in canonical form
    (CK+'s 'anger' and FER2013's 'angry' land on the same bar)."""
    out = []
    for r in runs:
        for row in per_class(r.get("metrics"), split):
            out.append({"run": r["name"], "class": canonical(row["class"]) or row["class"], "f1": row["f1"]})
    return out


def confusion(metrics: dict | None, split: str = "test", normalize: bool = False):
    """-> (matrix as list of rows, class labels) or (None, []) when the run has none.
    normalize: each row divided by its total, i.e. recall on the diagonal."""
    part = (metrics or {}).get(split) or {}
    cm = part.get("confusion_matrix")
    labels = part.get("class_order") or (metrics or {}).get("class_names") or []
    if not cm or not isinstance(cm, list):
        return None, []
    if normalize:
        cm = [[(v / sum(row)) if sum(row) else 0.0 for v in row] for row in cm]
    return cm, list(labels)


def available_splits(metrics: dict | None) -> list[str]:
    return [s for s in ("test", "val", "train") if isinstance((metrics or {}).get(s), dict)
            and (metrics or {})[s].get("confusion_matrix")]


def dataset_root(info: dict) -> Path | None:
    """Where the run's dataset is on this machine: run.json's dataset path, else its config's data path
    (relative paths are tried from the repository root too). None when it is not here."""
    candidates = [(info.get("dataset") or {}).get("path"), (info.get("config") or {}).get("data")]
    for c in candidates:
        if not c:
            continue
        for p in (Path(c), REPO_ROOT / c):
            if p.exists():
                return p
    return None


def _confidence(row: dict) -> float | None:
    try:
        return float(row.get(f"p_{row.get('predicted')}"))
    except (TypeError, ValueError):
        return None


def _image_path(root: Path | None, source: str) -> str | None:
    """The image file inside the dataset folder, never outside it."""
    if root is None or not root.is_dir():
        return None
    p = root / source
    return str(p) if p.is_file() and root.resolve() in p.resolve().parents else None


def misclassified(run_dir, true: str | None = None, predicted: str | None = None, page: int = 0,
                  per_page: int = 24) -> dict:
    """One page of the wrongly predicted test faces in predictions.csv, of one true and one predicted class
    (None = any), the most confident mistakes first.

    -> {'items', 'total' (all mistakes), 'matching' (items of this choice), 'pages', 'pairs' ({(true, predicted):
    count}), 'note' (why images are missing)}. Each item has the image file path (None when the run's dataset is
    not on this machine or is a CSV), the true and predicted labels and the model's confidence.
    Why paged and chosen: the first 24 mistakes of a file sorted by class were all of one class.
    """
    run_dir = Path(run_dir)
    info = store.read_json(store.run_json_path(run_dir), {}) or {}
    try:
        with open(store.predictions_path(run_dir), newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError):
        return {"items": [], "total": 0, "matching": 0, "pages": 0, "pairs": {},
                "note": "this run has no predictions.csv"}
    wrong = [r for r in rows if r.get("true") != r.get("predicted")]
    pairs: dict = {}
    for r in wrong:
        pairs[(r.get("true"), r.get("predicted"))] = pairs.get((r.get("true"), r.get("predicted")), 0) + 1
    chosen = [{"source": r.get("source") or "", "true": r.get("true"), "predicted": r.get("predicted"),
               "confidence": _confidence(r)} for r in wrong
              if true in (None, r.get("true")) and predicted in (None, r.get("predicted"))]
    chosen = one_per_sequence(sorted(chosen, key=lambda i: -(i["confidence"] or 0)))
    pages = -(-len(chosen) // per_page)
    page = min(max(int(page), 0), max(pages - 1, 0))
    root = dataset_root(info)
    items = [{**i, "path": _image_path(root, i["source"])} for i in chosen[page * per_page:(page + 1) * per_page]]
    note = None
    if root is None:
        note = "the run's dataset is not on this machine, so the images cannot be shown"
    elif root.is_file():
        note = "the dataset is a CSV file; its images are rows, not files"
    elif items and not any(i["path"] for i in items):
        note = f"the images listed in predictions.csv are not in {root}"
    return {"items": items, "total": len(wrong), "matching": len(chosen), "pages": pages, "page": page,
            "pairs": pairs, "note": note}


SEQUENCE = re.compile(r"(S\d+_\d+)_\d+")


def one_per_sequence(items: list[dict]) -> list[dict]:
    """CK+ keeps the last three frames of each sequence: one misread person shows up three times. Items of one
    sequence (S<subject>_<sequence>_<frame>) become one item that says how many of its frames were misread."""
    out, seen = [], {}
    for item in items:
        m = SEQUENCE.search(Path(item["source"]).name)
        if m is None:
            out.append({**item, "frames": 1})
            continue
        if m.group(1) in seen:
            seen[m.group(1)]["frames"] += 1
            continue
        seen[m.group(1)] = {**item, "frames": 1, "sequence": m.group(1)}
        out.append(seen[m.group(1)])
    return out


def saved_evaluations(run_dir) -> list[dict]:
    """Results of `evaluate --save` (evaluations/*.json), newest first."""
    d = Path(run_dir) / "evaluations"
    if not d.is_dir():
        return []
    out = []
    for p in d.glob("*.json"):
        e = store.read_json(p, None)
        if isinstance(e, dict):
            out.append({"file": p.name, "data": e.get("data"), "split": e.get("split"),
                        "accuracy": _num(e.get("accuracy")), "macro F1": _num(e.get("macro_f1")),
                        "images": e.get("num_samples"), "evaluated": e.get("evaluated")})
    return sorted(out, key=lambda e: e.get("evaluated") or "", reverse=True)


def input_sizes_label(summary: dict) -> str:
    """'48', or '40, 48, 56, 64' for a multi-scale ensemble; 0 is the backbone's own default size."""
    sizes = summary.get("input_sizes") or [(summary.get("config") or {}).get("input_size")]
    return ", ".join("default" if v == 0 else str(v) for v in sizes if v is not None)


def models_per_fold(summary: dict) -> int:
    """Seeds per fold times input sizes per fold (summaries older than multi-scale ensembles have no sizes)."""
    return summary.get("members", 1) * len(summary.get("input_sizes") or [None])


def kfold_summaries(runs_dir) -> list[dict]:
    """The kfold-*.json summaries fer_core.kfold writes into the run store, newest first."""
    d = Path(runs_dir)
    if not d.is_dir():
        return []
    out = []
    for p in sorted(d.glob("kfold-*.json")):
        s = store.read_json(p, None)
        if isinstance(s, dict) and isinstance(s.get("per_fold"), list):
            s = {**s, "file": p.name}
            out.append(s)
    return sorted(out, key=lambda s: s.get("created") or "", reverse=True)


# the mean accuracies first, then what the group was; the long tail last
KFOLD_COLUMNS = ["group", "mean accuracy", "std accuracy", "mean val accuracy", "mean macro F1", "models per fold",
                 "input size", "folds", "min accuracy", "max accuracy", "std macro F1", "backbone", "data",
                 "weights", "split", "seconds"]


def kfold_table(summaries: list[dict]) -> list[dict]:
    return [{"group": s.get("group"), "backbone": s.get("backbone"), "data": Path(str(s.get("data", ""))).name,
             "weights": _weights_label(s.get("weights")), "split": s.get("split"), "folds": s.get("folds"),
             "input size": input_sizes_label(s), "models per fold": models_per_fold(s),
             "mean val accuracy": _num(s.get("mean_val_accuracy")),
             "mean accuracy": _num(s.get("mean_accuracy")), "std accuracy": _num(s.get("std_accuracy")),
             "min accuracy": _num(s.get("min_accuracy")), "max accuracy": _num(s.get("max_accuracy")),
             "mean macro F1": _num(s.get("mean_macro_f1")), "std macro F1": _num(s.get("std_macro_f1")),
             "seconds": _num(s.get("seconds"))} for s in summaries]
