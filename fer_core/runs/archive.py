"""The reference collections: the committed evidence behind the README's tables, kept apart from the run store.

Why: `runs/` is the user's store, what the Runs page and the model pickers open on. The reference runs (the
k-fold groups, the backbone comparisons, the FER2013 runs tried for the default) were ~200 folders there, of
which the README needs a few figures each and a user sees only as clutter. Each collection is now one file,
`results/<name>.json`, holding for each of its runs the run.json and metrics.json contents and the epochs of
history.csv: enough for the tables (`python -m fer_core results`), and for the Runs and Compare pages to show
the curves and confusion matrices, without models, predictions or splits.

File format (version 1), readable without this package: {"format": 1, "collection", "kind" ("kfold",
"backbones" or "runs"), "title", "made_by" (the committed command that re-makes it), "summary" (a k-fold
group's kfold-<name>.json, else null), "runs": [{"id", "run" (run.json), "metrics" (metrics.json), "history"
(one object per epoch, history.csv's columns)}]}. This module is the file's one reader and writer.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from fer_core.runs import store

RESULTS_DIR = Path(__file__).resolve().parents[2] / "results"
FORMAT = 1
KINDS = ("kfold", "backbones", "runs")
# the committed command that re-makes a collection, by the collection's name
MADE_BY = ((re.compile(r"^(ck|fer)-bb"), "scripts/reference_runs_backbones.sh"),
           (re.compile(r"^ck-"), "scripts/reference_runs.sh ckplus"),
           (re.compile(r"^fer2013"), "scripts/reference_runs.sh fer2013, and the README's lever commands"))


def results_dir() -> Path:
    """The collections' folder: the repository's results/; FER_RESULTS_DIR overrides it (tests point it at
    a folder of their own, as FER_RUNS_DIR does for the run store)."""
    return Path(os.environ.get("FER_RESULTS_DIR") or RESULTS_DIR)


def made_by(name: str) -> str | None:
    return next((command for pattern, command in MADE_BY if pattern.match(name)), None)


def pack_run(run_dir) -> dict:
    """One run folder's record as a collection keeps it."""
    run_dir = Path(run_dir)
    return {"id": run_dir.name, "run": store.read_json(store.run_json_path(run_dir), {}) or {},
            "metrics": store.read_json(store.metrics_path(run_dir), None), "history": store.read_history(run_dir)}


def write_collection(name: str, kind: str, title: str, run_dirs, summary: dict | None = None,
                     folder=None, merge: bool = False) -> Path:
    """results/<name>.json from run folders, one line per run (a re-made run changes its own line in a diff).
    merge: the collection's other records stay (a run added to the FER2013 candidates, whose earlier runs are
    records only); without it the collection is exactly these runs (a k-fold group is its folds)."""
    assert kind in KINDS, kind
    head = {"format": FORMAT, "collection": name, "kind": kind, "title": title, "made_by": made_by(name),
            "summary": summary}
    packed = [pack_run(d) for d in run_dirs]
    if merge:
        ids = {r["id"] for r in packed}
        old = next((d for d in read_collections(folder) if d.get("collection") == name), {"runs": []})
        packed = [r for r in old["runs"] if r.get("id") not in ids] + packed
    runs = [json.dumps(r, default=store._json_default) for r in sorted(packed, key=lambda r: r["id"])]
    text = json.dumps(head, indent=1, default=store._json_default)[:-2] + ',\n "runs": [\n  '
    text += ",\n  ".join(runs) + "\n ]\n}\n"
    path = Path(folder or results_dir()) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    store.write_text_atomic(path, text)
    return path


_READ: dict[str, tuple[tuple, list]] = {}   # results folder -> (its files' times and sizes, their contents)


def read_collections(folder=None) -> list[dict]:
    """Every collection, parsed once per change of its file (the pages list them on every rerun)."""
    folder = Path(folder or results_dir())
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    hit = _READ.get(str(folder))
    if hit is not None and hit[0] == stamp:
        return hit[1]
    docs = [doc for doc in (store.read_json(p, None) for p in files)
            if isinstance(doc, dict) and doc.get("format") == FORMAT and isinstance(doc.get("runs"), list)]
    _READ[str(folder)] = (stamp, docs)
    return docs


def archived_runs(folder=None) -> list[dict]:
    """The collections' runs in the run store's listed shape (store.run_record), each with its epochs, its
    collection's title (the Runs page folds a collection into one row by it) and the command that re-makes it.
    They have no folder: `path` is None, and no model."""
    out = []
    for doc in read_collections(folder):
        for r in doc["runs"]:
            info = r.get("run") or {}
            record = store.run_record(r.get("id") or "?", None, info, r.get("metrics"),
                                      status=info.get("status") or "completed")
            record.update(history=r.get("history") or [], collection=f"reference {doc.get('title')}",
                          collection_name=doc.get("collection"), made_by=doc.get("made_by"))
            out.append(record)
    return out


def beside(own_runs: list[dict], folder=None) -> list[dict]:
    """The run store's runs, then the collections' records whose ids the store does not hold: a reference run
    still in the store (the reference scripts leave their folders there) is listed once, as the run it is."""
    ids = {r["id"] for r in own_runs}
    return own_runs + [r for r in archived_runs(folder) if r["id"] not in ids]


def kfold_summaries(folder=None) -> list[dict]:
    """The k-fold groups' summaries, as kfold-<name>.json holds them."""
    return [{**doc["summary"], "file": f"{doc['collection']}.json"} for doc in read_collections(folder)
            if doc.get("kind") == "kfold" and isinstance(doc.get("summary"), dict)]


def collection_runs(name: str, folder=None) -> list[dict]:
    """The runs of one collection, by its name (results/<name>.json)."""
    return [r for r in archived_runs(folder) if r["collection_name"] == name]
