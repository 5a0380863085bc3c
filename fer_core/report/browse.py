"""What people ask of a run browser (MLflow #3763, Aim #334, W&B #736, TensorBoard #1569): only the parameters
that differ, repeated runs grouped with mean ± std, best as well as last values, filter and sort by anything,
and whether a run learnt anything at all (its margin over always guessing the largest class).

Pure functions over what `runstore.read_run` returns.
"""

from __future__ import annotations

import hashlib
import math
import operator

import numpy as np

from fer_core.runs import store as runstore

NOT_PARAMETERS = {"name", "runs_dir"}                    # where and what-called, not how it trained
REPEAT_PARAMETERS = {"seed", "split_seed", "split"}      # what differs between repeats of one recipe


# ---------------------------------------------------------------- did it learn anything?
def majority_baseline(metrics: dict | None, split: str = "test") -> float | None:
    """The accuracy of always answering the part's largest class."""
    pc = ((metrics or {}).get(split) or {}).get("per_class") or {}
    supports = [v.get("support") or 0 for v in pc.values() if isinstance(v, dict)]
    return max(supports) / sum(supports) if supports and sum(supports) else None


def margin_over_baseline(run: dict) -> float | None:
    base, acc = majority_baseline(run.get("metrics")), run.get("test_accuracy")
    return None if base is None or acc is None else acc - base


def learnt_nothing(run: dict) -> bool:
    """At or below always guessing the largest class: the run did not learn (too few epochs, a bad rate...)."""
    m = margin_over_baseline(run)
    return m is not None and m <= 0.005


# ---------------------------------------------------------------- best and last
def best_and_last(run: dict) -> dict:
    """From history.csv: the best and the last validation accuracy, and the epoch of the best."""
    rows = runstore.read_history_rows(run["path"])
    vals = [(int(r[0]), float(r[5])) for r in rows if len(r) > 5 and r[5] not in ("", "None")]
    if not vals:
        return {"best val accuracy": None, "best epoch": None, "last val accuracy": None}
    best = max(vals, key=lambda v: v[1])
    return {"best val accuracy": best[1], "best epoch": best[0], "last val accuracy": vals[-1][1]}


# ---------------------------------------------------------------- parameters
def parameters(run: dict) -> dict:
    cfg = (run.get("info") or {}).get("config") or {}
    return {k: v for k, v in cfg.items() if k not in NOT_PARAMETERS}


def differing_parameters(runs: list[dict]) -> list[str]:
    """The config keys whose values are not the same in every one of these runs."""
    params = [parameters(r) for r in runs]
    keys = sorted({k for p in params for k in p})
    return [k for k in keys if len({repr(p.get(k)) for p in params}) > 1]


def parameters_table(runs: list[dict], only_differing: bool = True) -> list[dict]:
    keys = differing_parameters(runs) if only_differing else sorted({k for r in runs for k in parameters(r)})
    return [{"run": r["name"], **{k: parameters(r).get(k) for k in keys}} for r in runs]


# ---------------------------------------------------------------- repeated runs
def group_of(run: dict) -> str:
    """Runs that repeat one recipe (other seeds, other folds) share a group: the k-fold group where the run
    is a fold, else its parameters without seeds and split."""
    kfold = (run.get("info") or {}).get("kfold") or {}
    if kfold.get("group"):
        return f"k-fold {kfold['group']}"
    p = {k: v for k, v in parameters(run).items() if k not in REPEAT_PARAMETERS}
    digest = hashlib.sha1(repr(sorted(p.items())).encode()).hexdigest()[:6]
    return f"{p.get('backbone')} on {run.get('dataset')} ({digest})"


def _mean_std(values: list) -> str:
    v = [x for x in values if isinstance(x, (int, float)) and not math.isnan(x)]
    if not v:
        return "–"
    return f"{100 * np.mean(v):.1f}% ± {100 * np.std(v, ddof=1):.1f}" if len(v) > 1 else f"{100 * v[0]:.1f}%"


def grouped_table(runs: list[dict]) -> list[dict]:
    """One row per group of two or more runs: how many, and mean ± std of their figures."""
    groups: dict[str, list[dict]] = {}
    for r in runs:
        groups.setdefault(group_of(r), []).append(r)
    rows = []
    for name, members in groups.items():
        if len(members) < 2:
            continue
        rows.append({"group": name, "runs": len(members), "backbone": members[0].get("backbone"),
                     "dataset": members[0].get("dataset"),
                     "test accuracy": _mean_std([m.get("test_accuracy") for m in members]),
                     "best val accuracy": _mean_std([m.get("best_val_accuracy") for m in members]),
                     "macro F1": _mean_std([m.get("macro_f1") for m in members])})
    return sorted(rows, key=lambda r: -r["runs"])


# ---------------------------------------------------------------- filter and sort by anything
OPERATORS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "=": operator.eq,
             "contains": lambda a, b: str(b).lower() in str(a).lower()}


def _comparable(a, b):
    """(a, b) in one type: numbers when both read as numbers, else text."""
    try:
        return float(a), float(b)
    except (TypeError, ValueError):
        return str(a), str(b)


def filter_rows(rows: list[dict], column: str, op: str, value) -> list[dict]:
    """Rows whose `column` satisfies `op value` (a row without that column is left out)."""
    if not column or op not in OPERATORS or value in (None, ""):
        return rows
    out = []
    for r in rows:
        if r.get(column) is None:
            continue
        a, b = (r[column], value) if op == "contains" else _comparable(r[column], value)
        try:
            if OPERATORS[op](a, b):
                out.append(r)
        except TypeError:
            continue
    return out


def sort_rows(rows: list[dict], column: str, descending: bool = True) -> list[dict]:
    """Sorted by `column`, rows without it last, whichever the direction."""
    have = [r for r in rows if r.get(column) is not None]
    missing = [r for r in rows if r.get(column) is None]
    try:
        have.sort(key=lambda r: _comparable(r[column], 0)[0], reverse=descending)
    except TypeError:
        have.sort(key=lambda r: str(r[column]), reverse=descending)
    return have + missing
