"""What people ask of a run browser (MLflow #3763, Aim #334, W&B #736, TensorBoard #1569): only the parameters
that differ, repeated runs grouped with mean ± std, best as well as last values, filter and sort by anything,
and whether a run learnt anything at all (its margin over always guessing the largest class).

Pure functions over what `store.read_run` returns.
"""

from __future__ import annotations

import functools
import hashlib
import math
import operator
import re

import numpy as np

from fer_core import config
from fer_core.runs import store

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
    """From history.csv: the best and the last validation accuracy, and the epoch of the best. Remembered per
    history.csv version: the Runs page asks for every run on every rerun."""
    if not run.get("path"):     # a reference record carries its epochs
        return _best_and_last_of(store.run_history(run))
    return dict(_best_and_last(str(run["path"]), store.files_stamp(store.history_path(run["path"]))))


@functools.lru_cache(maxsize=4096)
def _best_and_last(path: str, _stamp) -> dict:
    return _best_and_last_of(store.read_history(path))


def _best_and_last_of(rows: list[dict]) -> dict:
    vals = [(int(r["epoch"]), r["val_accuracy"]) for r in rows
            if r.get("epoch") is not None and r.get("val_accuracy") is not None]
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
    """One row per run, its parameters under the labels the option declarations give them (not config keys)."""
    keys = differing_parameters(runs) if only_differing else sorted({k for r in runs for k in parameters(r)})
    return [{"run": r["name"], **{config.label(k): parameters(r).get(k) for k in keys}} for r in runs]


# ---------------------------------------------------------------- repeated runs
def group_of(run: dict) -> str:
    """Runs that repeat one recipe (other seeds, other folds) share a group: the k-fold group where the run
    is a fold, else its parameters without seeds and split."""
    if run.get("collection"):   # a committed reference record: its collection is one row
        return run["collection"]
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


# ---------------------------------------------------------------- percentages as people type them
PERCENT_COLUMNS = ("test accuracy", "margin over baseline", "best val accuracy", "last val accuracy")
_CONDITION = re.compile(r"^(?P<column>.*?)\s*(?P<op>>=|<=|>|<|=|\bcontains\b)\s*(?P<value>.*)$", re.I)


def percent_value(text: str) -> float:
    """'60', '60%', '60 %' and '0.6' all mean 0.6 in a column shown as a percentage: a number with '%', or
    beyond ±1, is read as percent. Raises ValueError on text that is not a number."""
    t = str(text).strip().replace(" ", "")
    if t.endswith("%"):
        return float(t[:-1]) / 100
    v = float(t)
    return v / 100 if abs(v) > 1 else v


def _column_named(text: str, columns: list[str]) -> str | None:
    t = text.strip().lower()
    exact = [c for c in columns if c.lower() == t]
    starts = [c for c in columns if c.lower().startswith(t)]
    return (exact or starts or [None])[0] if t else None


def condition(text: str, column: str, op: str, columns: list[str]) -> tuple[str, str, object, str | None]:
    """The filter typed in the Value box -> (column, operator, value, problem). The box takes a value ('0.6',
    '60%'), an operator and a value ('> 60%') or a whole condition ('test accuracy > 60'); what it names
    overrides the column and operator chosen beside it. problem says what is wrong instead of matching nothing."""
    text = (text or "").strip()
    m = _CONDITION.match(text)
    if m:
        op = m["op"].lower()
        text = m["value"].strip()
        if m["column"].strip():
            named = _column_named(m["column"], columns)
            if named is None:
                return column, op, None, f"no column called “{m['column'].strip()}”"
            column = named
    if not column or not text:
        return column, op, None, None if not text else "choose a column to filter by, or type one before the test"
    if column in PERCENT_COLUMNS and op != "contains":
        try:
            return column, op, percent_value(text), None
        except ValueError:
            return column, op, None, f"{column} is a percentage: type a number such as 60, 60% or 0.6"
    return column, op, text, None


# ---------------------------------------------------------------- one row per fold group on the Runs page
BACKBONE_COMPARISON = re.compile(r"^(?P<prefix>.+)-bb-[^/]+$")   # scripts/reference_runs_backbones.sh's names
GROUP_MEANS = ("test accuracy", "margin over baseline", "best val accuracy", "last val accuracy", "macro F1",
               "train time (s)", "epochs")


def fold_group(run: dict) -> str | None:
    """The group a run is listed under until it is opened: the folds of one k-fold cross-validation, or the
    runs of one backbone comparison (each backbone with the same budget), or a committed reference collection.
    Why: a k-fold makes K runs and the reference collections hold ~130 records; one row each buried the dozen
    runs a user looks for."""
    if run.get("collection"):   # a committed reference record: its collection is one row
        return run["collection"]
    kfold = (run.get("info") or {}).get("kfold") or {}
    if kfold.get("group"):
        return f"k-fold {kfold['group']}"
    m = BACKBONE_COMPARISON.match(str(run.get("id", "")))
    return f"backbone comparison {m['prefix']}" if m else None


def _summary(values: list, many: str) -> object:
    distinct = list(dict.fromkeys(v for v in values if v not in (None, "")))
    return distinct[0] if len(distinct) == 1 else (many.format(n=len(distinct)) if distinct else None)


def group_row(group: str, members: list[dict]) -> dict:
    """One row for a group's runs: their count, means of their figures, what they share."""
    def mean(key):
        v = [r[key] for r in members if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
        return float(np.mean(v)) if v else None
    statuses = [r.get("status") for r in members]
    status = statuses[0] if len(set(statuses)) == 1 else ", ".join(
        f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses))
    return {"name": f"{group} ({len(members)} runs)", "group": group, "runs": len(members), "status": status,
            "dataset": _summary([r.get("dataset") for r in members], "{n} datasets"),
            "backbone": _summary([r.get("backbone") for r in members], "{n} backbones"),
            "weights": _summary([r.get("weights") for r in members], "{n} kinds"),
            **{k: mean(k) for k in GROUP_MEANS},
            "created": max((r.get("created") or "" for r in members), default="") or None, "id": None}


def collapse_groups(rows: list[dict], opened=()) -> list[dict]:
    """Rows with each group of two or more runs folded into one row where its newest run was, except the
    groups in `opened`, whose runs are listed one by one."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("group"):
            groups.setdefault(r["group"], []).append(r)
    out, done = [], set()
    for r in rows:
        g = r.get("group")
        if not g or len(groups[g]) < 2 or g in opened:
            out.append(r)
        elif g not in done:
            done.add(g)
            out.append(group_row(g, groups[g]))
    return out
