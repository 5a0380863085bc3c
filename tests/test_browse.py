"""The run browser's answers, on run folders written here in the run store's format."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from fer_core.report import browse, compare, display
from fer_core.runs import store

pytestmark = pytest.mark.unit


def make_run(root, name, *, created, dataset="ckplus", acc=0.9, supports=(10, 30, 60), config=None, kfold=None,
             history=((1, 0.5), (2, 0.8), (3, 0.7))):
    d = store.create_run_dir(root, name)
    cfg = {"backbone": "fer_vgg", "learning_rate": 1e-3, "seed": 1, "data": f"/data/{dataset}", **(config or {})}
    store.update_run(d, name=name, status="completed", created=created, config=cfg,
                        dataset={"name": dataset}, **({"kfold": kfold} if kfold else {}))
    classes = [f"c{i}" for i in range(len(supports))]
    store.write_json_atomic(store.metrics_path(d), {"test": {
        "accuracy": acc, "macro_f1": acc - 0.1,
        "per_class": {c: {"support": n, "f1": 0.5} for c, n in zip(classes, supports)}}})
    store.write_csv_atomic(store.history_path(d), ["epoch", "phase", "loss", "accuracy", "val_loss",
                                                         "val_accuracy", "learning_rate", "seconds"],
                              [[e, "full", 1, 0.5, 1, v, 1e-3, 10] for e, v in history])
    return d


def test_margin_over_the_majority_class_flags_a_run_that_learnt_nothing(tmp_path):
    good = store.read_run(make_run(tmp_path, "good", created="2026-01-02", acc=0.9))
    flat = store.read_run(make_run(tmp_path, "flat", created="2026-01-03", acc=0.6))   # largest class: 60/100
    assert browse.majority_baseline(good["metrics"]) == 0.6
    assert abs(browse.margin_over_baseline(good) - 0.3) < 1e-9 and not browse.learnt_nothing(good)
    assert browse.learnt_nothing(flat)


def test_best_and_last_validation_from_the_history(tmp_path):
    run = store.read_run(make_run(tmp_path, "r", created="2026-01-01"))
    assert browse.best_and_last(run) == {"best val accuracy": 0.8, "best epoch": 2, "last val accuracy": 0.7}


def test_only_differing_parameters_and_repeats_grouped(tmp_path):
    runs = [store.read_run(make_run(tmp_path, f"s{i}", created=f"2026-01-0{i + 1}", acc=0.8 + 0.02 * i,
                                       config={"seed": i})) for i in range(3)]
    runs.append(store.read_run(make_run(tmp_path, "lr", created="2026-01-09", config={"learning_rate": 3e-4})))
    assert browse.differing_parameters(runs) == ["learning_rate", "seed"]
    table = browse.parameters_table(runs)
    assert set(table[0]) == {"run", "Learning rate", "Seed"}                  # the options' labels, not keys
    groups = browse.grouped_table(runs)
    assert len(groups) == 1 and groups[0]["runs"] == 3
    assert groups[0]["test accuracy"] == "82.0% ± 2.0"


def test_filter_and_sort_by_any_figure_or_parameter(tmp_path):
    for i, lr in enumerate((1e-3, 3e-4, 1e-2)):
        make_run(tmp_path, f"r{i}", created=f"2026-01-0{i + 1}", acc=0.7 + 0.1 * i, config={"learning_rate": lr})
    rows = compare.runs_table(store.list_runs(tmp_path))
    assert [r["name"] for r in rows] == ["r2", "r1", "r0"]                 # newest first, by creation time
    kept = browse.filter_rows(rows, "param learning_rate", "<", "0.005")
    assert sorted(r["name"] for r in kept) == ["r0", "r1"]
    assert [r["name"] for r in browse.sort_rows(rows, "test accuracy", descending=False)] == ["r0", "r1", "r2"]
    assert [r["name"] for r in browse.filter_rows(rows, "name", "contains", "R1")] == ["r1"]


def test_compare_preselects_the_default_and_runs_of_its_dataset_that_learnt(tmp_path):
    make_run(tmp_path, "default", created="2026-01-01", dataset="fer2013")
    make_run(tmp_path, "ck", created="2026-01-05", dataset="ckplus")
    make_run(tmp_path, "flat", created="2026-01-04", dataset="fer2013", acc=0.55)
    make_run(tmp_path, "other", created="2026-01-03", dataset="fer2013")
    make_run(tmp_path, "fold", created="2026-01-06", dataset="fer2013", kfold={"group": "g", "fold": 0})
    runs = store.list_runs(tmp_path)
    default_id = next(r["id"] for r in runs if r["name"] == "default")
    names = {r["id"]: r["name"] for r in runs}
    assert [names[i] for i in compare.preselected(runs, default_id)] == ["default", "other"]


def test_csv_rounds_and_ck_mistakes_come_one_per_sequence():
    assert compare.to_csv([{"a": 0.123456789, "b": "x"}]).splitlines()[1] == "0.1235,x"
    items = ([{"source": f"anger/S005_001_0000001{i}.png"} for i in (1, 2, 3)]
             + [{"source": "sad/S010_004_00000019.png"}])
    grouped = compare.one_per_sequence(items)
    assert [(g["sequence"], g["frames"]) for g in grouped] == [("S005_001", 3), ("S010_004", 1)]


def test_a_killed_training_shows_failed_at_once_on_its_machine(tmp_path):
    d = store.create_run_dir(tmp_path, "killed")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store.update_run(d, status="running", pid=gone.pid, host=socket.gethostname(),
                        heartbeat_unix=__import__("time").time())      # a fresh heartbeat: not stale
    assert store.read_run(d)["status"] == "failed"
    store.update_run(d, host="another-machine")                      # elsewhere: only the heartbeat can tell
    assert store.read_run(d)["status"] == "running"


def test_percentages_are_read_as_people_type_them(tmp_path):
    for i, acc in enumerate((0.55, 0.65, 0.75)):
        make_run(tmp_path, f"r{i}", created=f"2026-01-0{i + 1}", acc=acc, supports=(10, 20, 20))
    rows = compare.runs_table(store.list_runs(tmp_path))
    columns = list(rows[0])
    for typed in ("test accuracy > 60", "> 60%", "> 60", "0.6", "60 %"):
        column, op, value, problem = browse.condition(typed, "test accuracy", ">", columns)
        assert (column, op, value, problem) == ("test accuracy", ">", 0.6, None), typed
        assert sorted(r["name"] for r in browse.filter_rows(rows, column, op, value)) == ["r1", "r2"], typed
    assert browse.condition("test acc <= 0.65", "", ">", columns)[:3] == ("test accuracy", "<=", 0.65)
    assert browse.condition("margin over baseline > -5", "", ">", columns)[2] == -0.05
    assert browse.condition("> sixty", "test accuracy", ">", columns)[3]          # said, not an empty table
    assert "no column" in browse.condition("speed > 3", "", ">", columns)[3]
    assert browse.condition("fer_vgg", "backbone", "contains", columns)[:3] == ("backbone", "contains", "fer_vgg")


def test_folds_and_backbone_comparisons_fold_into_one_row_until_opened(tmp_path):
    for fold, acc in enumerate((0.7, 0.8, 0.9)):
        make_run(tmp_path, f"ck-fold{fold}", created=f"2026-01-0{fold + 1}", acc=acc,
                 kfold={"group": "ck", "fold": fold, "folds": 3})
    for bb in ("fer_vgg", "vgg16"):
        d = tmp_path / f"fer-bb-{bb}"
        make_run(tmp_path, "x", created="2026-01-05", config={"backbone": bb}).rename(d)
        store.rename_run(d, f"fer-bb-{bb}")
    make_run(tmp_path, "alone", created="2026-01-09", acc=0.6)
    rows = compare.runs_table(store.list_runs(tmp_path))
    shown = browse.collapse_groups(rows)
    assert [r["name"] for r in shown] == ["alone", "backbone comparison fer (2 runs)", "k-fold ck (3 runs)"]
    ck = shown[2]
    assert ck["runs"] == 3 and abs(ck["test accuracy"] - 0.8) < 1e-9 and ck["created"] == "2026-01-03"
    assert shown[1]["backbone"] == "2 backbones" and shown[1]["status"] == "completed"
    opened = browse.collapse_groups(rows, opened={"k-fold ck"})
    assert [r["name"] for r in opened][-3:] == ["ck-fold2", "ck-fold1", "ck-fold0"]


def test_the_run_listing_sees_changes_and_does_not_reread_an_unchanged_store(tmp_path, monkeypatch):
    d = make_run(tmp_path, "first", created="2026-01-01")
    assert [r["name"] for r in store.list_runs(tmp_path)] == ["first"]
    reads = []
    real = store.read_run
    monkeypatch.setattr(store, "read_run", lambda p: reads.append(p) or real(p))
    assert [r["name"] for r in store.list_runs(tmp_path)] == ["first"] and reads == []
    store.rename_run(d, "renamed")                                      # an atomic write into the folder
    assert [r["name"] for r in store.list_runs(tmp_path)] == ["renamed"] and len(reads) == 1
    info = store.read_json(d / "run.json")
    (d / "run.json").write_text(__import__("json").dumps({**info, "epochs_done": 7}))   # edited in place
    assert store.list_runs(tmp_path)[0]["epochs_done"] == 7
    make_run(tmp_path, "second", created="2026-01-02")
    assert [r["name"] for r in store.list_runs(tmp_path)] == ["second", "renamed"]


def test_compare_says_when_training_budgets_differ_in_words(tmp_path):
    long = store.read_run(make_run(tmp_path, "headline", created="2026-01-01", config={"max_train_seconds": 5400}))
    store.update_run(long["path"], train_seconds=5446.0)
    short = [store.read_run(make_run(tmp_path, f"bb{i}", created="2026-01-02",
                                        config={"max_train_seconds": 150, "backbone": f"b{i}"})) for i in range(2)]
    assert compare.budget_note(short) is None                               # one budget: nothing to say
    note = compare.budget_note([store.read_run(long["path"])] + short)
    assert "headline: 1 h 30 min" in note and "bb0: 2 min 30 s" in note
    assert browse.parameters_table([long] + short)[0].keys() == {"run", "Backbone", "Training budget (s)"}
    assert [display.duration(s) for s in (None, 45.4, 150, 3600, 5446)] == ["", "45 s", "2 min 30 s", "1 h",
                                                                           "1 h 31 min"]
