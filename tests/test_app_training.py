"""Train, Runs and Compare pages through streamlit.testing's AppTest, on a real run store (FER_RUNS_DIR)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fer_core.config import TrainConfig
from fer_core.runs import queue
from fer_core.runs import archive
from fer_core.runs import store

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def runs_root(tmp_path, monkeypatch) -> Path:
    """An empty run store the app reads through FER_RUNS_DIR, without the committed reference collections (an
    empty FER_RESULTS_DIR), so a test sees only the runs it made."""
    root = tmp_path / "runs"
    root.mkdir()
    (tmp_path / "results").mkdir()
    monkeypatch.setenv("FER_RUNS_DIR", str(root))
    monkeypatch.setenv("FER_RESULTS_DIR", str(tmp_path / "results"))
    return root


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=180)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_tab(at: AppTest, label: str) -> AppTest:
    """Click a tab of the opened run: only the open tab's section runs (as in the browser, where a click reruns)."""
    at.session_state["run_tab"] = label
    return at.run()


def copy_run(src: Path, runs_root: Path, name: str, keep_model: bool = True) -> Path:
    """A copy of a real run under a new name; without model.keras it is like a committed reference run."""
    dst = runs_root / f"{src.name}-{store.safe_slug(name)}"
    shutil.copytree(src, dst, ignore=None if keep_model else shutil.ignore_patterns("model.keras", "last.keras"))
    store.rename_run(dst, name)
    return dst


def number_input(at: AppTest, label: str):
    return next(n for n in at.number_input if n.label.startswith(label))


def texts(at: AppTest) -> str:
    """The page's text as shown: without the backslashes that keep a run's name from being read as Markdown."""
    return "\n".join(str(e.value) for kind in ("markdown", "success", "error", "warning", "info", "caption")
                     for e in at.get(kind)).replace("\\", "")


# ---------------------------------------------------------------- Train
def test_train_page_refuses_bad_options_then_trains_a_run_to_completion(runs_root, ckplus):
    at = open_page("pages/train.py")
    at.text_input(key="data").set_value(str(ckplus)).run()
    assert "ckplus" in texts(at) and "981 images" in texts(at)      # the summary before launching

    number_input(at, "Epochs").set_value(0).run()
    next(b for b in at.button if b.label == "Launch training").click().run()
    assert any("nothing to train" in e.value for e in at.error), texts(at)
    assert not at.exception and store.list_runs(runs_root) == []

    number_input(at, "Epochs").set_value(1)
    at.number_input(key="f_max_samples").set_value(200)
    at.selectbox(key="f_keep").set_value("last")
    at.selectbox(key="f_test_tta").set_value("flip")
    at.number_input(key="f_mixup").set_value(0.2)
    at.text_input(key="data").run()
    name_box = next(t for t in at.text_input if t.label.startswith("Run name"))
    name_box.set_value("from-the-page").run()
    launch = next(b for b in at.button if b.label == "Launch training")
    launch.click().run()
    assert any("Queued" in s.value for s in at.success), texts(at)
    [run] = store.list_runs(runs_root)
    run_dir = Path(run["path"])
    assert run["name"] == "from-the-page" and run["info"]["config"]["max_samples"] == 200
    assert run["info"]["config"]["keep"] == "last" and run["info"]["config"]["test_tta"] == "flip"
    assert run["info"]["config"]["mixup"] == 0.2
    assert run["status"] == "running"                                 # launched by the page, cap 1

    seen_running = False
    deadline = time.time() + 300
    while store.read_run(run_dir)["status"] in ("queued", "running") and time.time() < deadline:
        time.sleep(2)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        seen_running |= "from-the-page** — running" in texts(at)
    assert store.read_run(run_dir)["status"] == "completed", queue.log_tail(run_dir)
    assert seen_running
    at.run()
    assert "**from-the-page** completed, test accuracy" in texts(at)
    assert (run_dir / "model.keras").is_file() and (run_dir / "metrics.json").is_file()
    metrics = store.read_json(run_dir / "metrics.json")
    assert metrics["kept"] == "last" and metrics["test"]["tta"] == "flip"


def test_train_page_cancels_a_queued_run(runs_root, ckplus):
    queue.set_max_concurrent(runs_root, 1)
    # a run that looks busy (fresh heartbeat, live pid: this test process) holds the only slot
    busy = queue.enqueue(runs_root, TrainConfig(data=str(ckplus), backbone="fer_vgg", epochs=1, name="busy"))
    import os
    store.update_run(busy, status="running", pid=os.getpid(), heartbeat_unix=time.time())
    waiting = queue.enqueue(runs_root, TrainConfig(data=str(ckplus), backbone="fer_vgg", epochs=1, name="waiting"))
    at = open_page("pages/train.py")
    assert "**waiting** — queued" in texts(at)
    assert store.read_run(waiting)["status"] == "queued"          # the cap holds it back
    at.button(key=f"cancel-{waiting.name}").click().run()
    assert store.read_run(waiting)["status"] == "cancelled"
    assert "waiting** — queued" not in texts(at)


# ---------------------------------------------------------------- Runs
@pytest.fixture
def runs_store(runs_root, tiny_run) -> Path:
    """The tiny real run, plus a failed, a damaged and a died-while-running run folder."""
    copy_run(tiny_run, runs_root, "tiny copy")
    failed = runs_root / "20200101-000000-failed-0000"
    failed.mkdir()
    store.write_json_atomic(failed / "run.json", {"name": "broken", "status": "failed",
                                                    "error": "dataset path not found: /nowhere"})
    (runs_root / "20200101-000001-damaged-0000").mkdir()
    (runs_root / "20200101-000001-damaged-0000" / "run.json").write_text("{not json")
    dead = runs_root / "20200101-000002-dead-0000"
    dead.mkdir()
    store.write_json_atomic(dead / "run.json", {"name": "died", "status": "running", "heartbeat_unix": 1.0,
                                                  "config": {"backbone": "fer_vgg"}})
    return runs_root


def test_runs_page_lists_every_run_and_shows_one_in_detail(runs_store):
    at = open_page("pages/runs.py")
    table = at.dataframe[0].value
    assert set(table["name"]) >= {"tiny copy", "broken", "died", "20200101-000001-damaged-0000"}
    statuses = dict(zip(table["name"], table["status"]))
    assert statuses["tiny copy"] == "completed" and statuses["died"] == "failed"
    assert statuses["20200101-000001-damaged-0000"] == "damaged"
    tiny = table[table["name"] == "tiny copy"].iloc[0]
    assert 0 <= tiny["test accuracy"] <= 1 and tiny["backbone"] == "fer_vgg" and tiny["dataset"] == "CK+48"

    at.multiselect[0].set_value(["failed"]).run()                     # filter by status
    assert set(at.dataframe[0].value["name"]) == {"broken", "died"}
    at.multiselect[0].set_value([]).run()

    tiny_id = tiny["id"]
    at.selectbox(key="run_pick").set_value(tiny_id).run()
    assert not at.exception
    assert at.query_params["run"] == [tiny_id] or at.query_params["run"] == tiny_id
    assert not at.get("plotly_chart") and not at.get("image")         # Overview only: the other tabs wait for a click
    assert any(m.label == "Test accuracy" for m in at.metric)
    curves = [json.loads(c.proto.spec) for c in open_tab(at, "Curves").get("plotly_chart")]
    assert curves and curves[0]["data"][0]["type"] == "scatter"
    figures = [json.loads(c.proto.spec) for c in open_tab(at, "Confusion & per class").get("plotly_chart")]
    assert len(figures) >= 2                                          # confusion matrix, per-class
    heatmap = next(f for f in figures if f["data"][0]["type"] == "heatmap")
    metrics = store.read_json(Path(runs_store / tiny_id / "metrics.json"))
    assert heatmap["data"][0]["z"] == metrics["test"]["confusion_matrix"]
    at.toggle(key="cm_norm").set_value(True).run()
    heat = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if json.loads(c.proto.spec)["data"][0]["type"] == "heatmap")
    assert all(abs(sum(row) - 1) < 1e-6 or sum(row) == 0 for row in heat["data"][0]["z"])
    assert len(open_tab(at, "Misclassified").get("image")) > 0        # misclassified faces from CK+48
    assert "run completed" in open_tab(at, "Log").code[0].value      # the log
    open_tab(at, "Overview")

    for broken in ("20200101-000002-dead-0000", "20200101-000001-damaged-0000"):
        at.selectbox(key="run_pick").set_value(broken).run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.error, "a failed or damaged run shows its problem"
    assert "no heartbeat" in texts(at) or "damaged" in texts(at)


def test_runs_page_actions_reevaluate_rename_delete(runs_store, ckplus):
    run_dir = next(d for d in runs_store.iterdir() if d.name.endswith("tiny-copy"))
    at = open_page("pages/runs.py")
    at.selectbox(key="run_pick").set_value(run_dir.name).run()
    open_tab(at, "Actions")
    assert at.get("download_button")[0].label == "Download model.keras"

    assert at.button(key="eval_go").disabled                          # no dataset given yet
    at.text_input(key="eval_data").set_value(str(ckplus))
    at.selectbox(key="eval_split").set_value("test").run()
    at.button(key="eval_go").click().run()
    assert not at.error, texts(at)
    assert any("accuracy" in s.value for s in at.success)
    saved = list((run_dir / "evaluations").glob("*.json"))
    assert len(saved) == 1 and store.read_json(saved[0])["num_samples"] > 0

    at.text_input(key="eval_data").set_value(str(ckplus / "no-such-dataset")).run()
    at.button(key="eval_go").click().run()
    assert not at.exception and any("not found" in e.value for e in at.error)
    at.text_input(key="eval_data").set_value("/etc").run()               # outside the allowed data folders
    at.button(key="eval_go").click().run()
    assert not at.exception and any("outside the folders" in e.value for e in at.error)

    at.text_input(key=f"rename-{run_dir.name}").set_value("renamed by test")
    at.button(key="rename_go").click().run()
    assert store.read_run(run_dir)["name"] == "renamed by test"

    assert at.button(key="delete_go").disabled                        # not confirmed yet
    at.checkbox(key=f"sure-{run_dir.name}").check().run()
    at.button(key="delete_go").click().run()
    assert not run_dir.exists()
    assert not at.exception
    assert run_dir.name not in set(at.dataframe[0].value["id"])


def test_runs_page_folds_groups_reads_percentages_and_says_how_it_sorts(runs_root):
    from test_browse import make_run
    for fold, acc in enumerate((0.5, 0.7, 0.9)):
        make_run(runs_root, f"ck-fold{fold}", created=f"2026-01-0{fold + 1}", acc=acc, supports=(10, 20, 20),
                 kfold={"group": "ck", "fold": fold, "folds": 3})
    make_run(runs_root, "alone", created="2026-01-09", acc=0.65, supports=(10, 20, 20))
    at = open_page("pages/runs.py")
    table = at.dataframe[0].value
    assert list(table["name"]) == ["alone", "k-fold ck (3 runs)"]          # the folds as one row
    assert table["runs"][1] == 3 and table["test accuracy"][1] == pytest.approx(0.7)
    assert at.dataframe[0].proto.placeholder == ""                          # blanks, not "None"
    assert "newest first" in at.caption[0].value

    at.text_input(key="runs_value").set_value("test accuracy > 60").run()   # as people type it
    assert sorted(at.dataframe[0].value["name"]) == ["alone", "k-fold ck (2 runs)"]
    assert at.caption[0].value.startswith("3 of 4 runs")
    at.text_input(key="runs_value").set_value("> 60%").run()
    assert "choose a column" in at.warning[0].value                         # said, not an empty table
    at.selectbox(key="runs_by").set_value("test accuracy").run()
    assert at.caption[0].value.startswith("3 of 4 runs") and not at.warning
    at.text_input(key="runs_value").set_value("> lots").run()
    assert "percentage" in at.warning[0].value

    at.text_input(key="runs_value").set_value("").run()
    at.selectbox(key="runs_by").set_value("test accuracy").run()
    at.radio(key="runs_order").set_value("smallest first").run()
    assert "sorted by test accuracy, smallest first" in at.caption[0].value
    assert "newest first" not in at.caption[0].value
    at.multiselect(key="runs_open").set_value(["k-fold ck"]).run()          # opened: one row per fold
    assert list(at.dataframe[0].value["name"]) == ["ck-fold0", "alone", "ck-fold1", "ck-fold2"]


def test_a_fresh_store_lists_the_reference_collections_one_row_each_and_opens_their_records(runs_root, monkeypatch):
    """A fresh clone: the user's runs (none here) and the committed collections, each one row until opened; a
    record shows its figures, curves and confusion matrix, and says it keeps no model and what re-makes it."""
    monkeypatch.delenv("FER_RESULTS_DIR")
    docs = archive.read_collections()
    if not docs:
        pytest.skip("no reference collections in this checkout")
    at = open_page("pages/runs.py")
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == len(docs) <= 20
    assert set(table["name"]) == {f"reference {d['title']} ({len(d['runs'])} runs)" for d in docs}
    assert set(table["status"]) == {"completed"}

    ck = next(d for d in docs if d["collection"] == "ck-scratch")
    at.multiselect(key="runs_open").set_value([f"reference {ck['title']}"]).run()
    assert len(at.dataframe[0].value) == len(docs) - 1 + len(ck["runs"])
    record = ck["runs"][0]
    at.selectbox(key="run_pick").set_value(record["id"]).run()
    assert not at.exception and not at.error
    assert any("scripts/reference_runs.sh ckplus" in i.value for i in at.info)
    assert [t.label for t in at.tabs] == ["Overview", "Curves", "Confusion & per class"]
    figures = [json.loads(c.proto.spec) for c in open_tab(at, "Confusion & per class").get("plotly_chart")]
    heatmap = next(f for f in figures if f["data"][0]["type"] == "heatmap")
    assert heatmap["data"][0]["z"] == record["metrics"]["test"]["confusion_matrix"]
    figures = [json.loads(c.proto.spec) for c in open_tab(at, "Curves").get("plotly_chart")]
    curves = next(f for f in figures if f["data"][0]["type"] == "scatter")
    assert len(curves["data"][0]["x"]) == len(record["history"])


def test_misclassified_tab_by_true_and_predicted_class_paged(runs_root, fer2013, default_run):
    """The default model's real mistakes on FER2013's PrivateTest (its run record, without the model file)."""
    import csv
    copy_run(default_run, runs_root, "default", keep_model=False)
    with open(default_run / "predictions.csv", newline="") as f:
        wrong = [r for r in csv.DictReader(f) if r["true"] != r["predicted"]]
    fear_as_sad = [r for r in wrong if r["true"] == "fear" and r["predicted"] == "sad"]
    at = open_tab(open_page("pages/runs.py"), "Misclassified")
    images = lambda: [i.proto.imgs[0].caption for i in at.get("image")]     # noqa: E731
    assert len({c.split(" → ")[0] for c in images()}) > 1                 # not all of one true class
    at.selectbox(key="mis_true").set_value("fear").run()
    at.selectbox(key="mis_pred").set_value("sad").run()
    assert images() and all(c.startswith("true fear → sad") for c in images())
    pages = -(-len(fear_as_sad) // 24)
    assert at.number_input(key="mis_page-fear-sad").max == pages
    at.number_input(key="mis_page-fear-sad").set_value(pages).run()
    assert len(images()) == len(fear_as_sad) - 24 * (pages - 1)
    assert f"of {len(fear_as_sad)} (of {len(wrong)} misclassified" in texts(at)


# ---------------------------------------------------------------- Compare
def test_compare_first_view_says_budgets_differ_and_labels_what_differs(runs_root):
    from test_browse import make_run
    make_run(runs_root, "headline", created="2026-01-01", config={"max_train_seconds": 5400})
    make_run(runs_root, "quick", created="2026-01-02", config={"max_train_seconds": 150, "backbone": "vgg16"})
    at = open_page("pages/compare.py")
    assert len(at.multiselect(key="compare_runs").value) == 2                # the first view, nothing chosen
    note = next(i.value for i in at.info if "training budgets" in i.value)
    assert "headline: 1 h 30 min" in note and "quick: 2 min 30 s" in note
    differs = next(d.value for d in at.dataframe if "run" in d.value.columns)    # "What differs"
    assert {"Training budget (s)", "Backbone"} <= set(differs.columns) and "max_train_seconds" not in differs.columns
    assert all(d.proto.placeholder == "" for d in at.dataframe)            # a missing value shows blank, not "None"


def test_compare_page_compares_two_runs_and_a_kfold_summary(runs_root, tiny_run):
    a = copy_run(tiny_run, runs_root, "with model")
    b = copy_run(tiny_run, runs_root, "reference", keep_model=False)     # like a run committed without model.keras
    store.update_run(b, train_seconds=123.0)
    ma = store.read_json(a / "metrics.json")
    summary = {"group": "tiny-kfold", "backbone": "fer_vgg", "data": str(tiny_run), "folds": 2, "input_sizes": [40, 48],
               "mean_accuracy": ma["test"]["accuracy"], "std_accuracy": 0.0, "mean_val_accuracy": ma["val"]["accuracy"],
               "mean_macro_f1": ma["test"]["macro_f1"],
               "std_macro_f1": 0.0, "per_fold": [{"fold": i, "run": str(d), "test_accuracy": ma["test"]["accuracy"],
                                                  "macro_f1": ma["test"]["macro_f1"]} for i, d in enumerate((a, b))],
               "created": store.now_iso()}
    store.write_json_atomic(runs_root / "kfold-tiny-kfold.json", summary)

    at = open_page("pages/compare.py")
    assert set(at.multiselect(key="compare_runs").value) <= {a.name, b.name}   # runs that learnt nothing are left out
    at.multiselect(key="compare_runs").set_value([a.name, b.name]).run()
    table = at.dataframe[0].value
    assert list(table["model"].sort_values()) == ["reference", "with model"]
    ref = table[table["model"] == "reference"].iloc[0]
    assert ref["model size (MB)"] == round(ma["model_bytes"] / 1e6, 2)     # from metrics.json, no model file
    assert ref["parameters"] == ma["parameters"] and ref["train time (s)"] == 123.0
    assert ref["test accuracy"] == ma["test"]["accuracy"] and ref["test ms/image"] == ma["test"]["ms_per_image"]
    csv_button = at.get("download_button")[0]
    assert csv_button.label == "Download the table as CSV"
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]      # the first tab: curves, F1
    assert any(len(f["data"]) == 2 and f["data"][0]["type"] == "bar" for f in charts)  # per-class F1, 2 runs
    assert not any(f["data"][0]["type"] == "heatmap" for f in charts)      # the other tabs wait for a click
    at.session_state["compare_tab"] = "Confusion matrices (test)"
    charts = [json.loads(c.proto.spec) for c in at.run().get("plotly_chart")]
    assert sum(f["data"][0]["type"] == "heatmap" for f in charts) == 2     # confusion matrices side by side
    at.session_state["compare_tab"] = "K-fold cross-validation"
    kf = next(d.value for d in at.run().dataframe if "folds" in d.value.columns)
    assert list(kf["group"]) == ["tiny-kfold"] and kf["folds"][0] == 2
    assert kf["input size"][0] == "40, 48" and kf["models per fold"][0] == 2      # a multi-scale ensemble
    assert kf["mean val accuracy"][0] == pytest.approx(summary["mean_val_accuracy"])

    at.multiselect(key="compare_runs").set_value([a.name]).run()
    assert len(at.dataframe[0].value) == 1
