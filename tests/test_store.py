"""The run store: atomic files, damaged runs still listed, names that cannot escape runs/, unique folders,
stale heartbeats."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from fer_core.runs import store

pytestmark = pytest.mark.unit


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or "tmp" in p.name]


# ---------------------------------------------------------------- atomic writes
def test_atomic_writes_leave_no_temp_files(tmp_path):
    store.write_json_atomic(tmp_path / "a.json", {"x": 1})
    store.write_csv_atomic(tmp_path / "h.csv", ["epoch", "loss"], [[1, 0.5], [2, 0.25]])
    store.write_text_atomic(tmp_path / "t.txt", "hello")
    assert store.read_json(tmp_path / "a.json") == {"x": 1}
    assert (tmp_path / "h.csv").read_text().splitlines() == ["epoch,loss", "1,0.5", "2,0.25"]
    assert (tmp_path / "t.txt").read_text() == "hello"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("broken", ["fsync", "replace"])
def test_a_failed_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch, broken):
    target = tmp_path / "run.json"
    store.write_json_atomic(target, {"status": "running", "epochs_done": 3})

    def fail(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(store.os, broken, fail)
    with pytest.raises(OSError):
        store.write_json_atomic(target, {"status": "completed"})
    monkeypatch.undo()
    assert store.read_json(target) == {"status": "running", "epochs_done": 3}
    assert _leftovers(tmp_path) == []


def test_update_run_merges_fields(tmp_path):
    store.update_run(tmp_path, status="running", epochs_done=1)
    info = store.update_run(tmp_path, epochs_done=2)
    assert info == {"status": "running", "epochs_done": 2} == store.read_json(tmp_path / "run.json")


# ---------------------------------------------------------------- listing damaged runs
def test_damaged_runs_are_still_listed(tmp_path):
    good = store.create_run_dir(tmp_path, "good")
    store.update_run(good, status="completed", name="good one", config={"backbone": "fer_vgg"})
    damaged = store.create_run_dir(tmp_path, "damaged")
    (damaged / "run.json").write_text('{"status": "compl')          # cut off mid-write by a crash
    no_json = store.create_run_dir(tmp_path, "nojson")
    bad_metrics = store.create_run_dir(tmp_path, "badmetrics")
    store.update_run(bad_metrics, status="completed")
    (bad_metrics / "metrics.json").write_text("not json")

    runs = {r["id"]: r for r in store.list_runs(tmp_path)}
    assert set(runs) == {good.name, damaged.name, no_json.name, bad_metrics.name}
    assert runs[good.name]["status"] == "completed" and runs[good.name]["name"] == "good one"
    assert runs[good.name]["backbone"] == "fer_vgg" and runs[good.name]["problems"] == []
    for d in (damaged, no_json):
        assert runs[d.name]["status"] == "damaged"
        assert any("run.json" in p for p in runs[d.name]["problems"])
    assert runs[bad_metrics.name]["status"] == "completed"
    assert any("metrics.json" in p for p in runs[bad_metrics.name]["problems"])


def test_listing_a_missing_runs_folder_is_empty(tmp_path):
    assert store.list_runs(tmp_path / "nothing-here") == []


# ---------------------------------------------------------------- names that try to escape
@pytest.mark.parametrize("name", ["../escape", "../../etc/passwd", "a/b/c", "/etc/passwd", "/tmp/x/..", "..",
                                  "..\\..\\win", "~/home", ""])
def test_run_names_cannot_escape_runs_dir(tmp_path, name):
    runs = tmp_path / "runs"
    d = store.create_run_dir(runs, name)
    assert d.parent.resolve() == runs.resolve()
    assert d.is_dir() and ".." not in d.name and "/" not in d.name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_delete_only_inside_the_run_store(tmp_path):
    runs = tmp_path / "runs"
    d = store.create_run_dir(runs, "mine")
    store.update_run(d, status="completed")
    outside = tmp_path / "other"
    outside.mkdir()
    with pytest.raises(store.RunStoreError):
        store.delete_run(runs, outside)
    assert outside.is_dir()
    store.delete_run(runs, d)
    assert not d.exists()


# ---------------------------------------------------------------- simultaneous creation
def test_runs_created_at_the_same_moment_get_distinct_folders(tmp_path):
    n = 16
    barrier = threading.Barrier(n)
    made, errors = [], []

    def create():
        try:
            barrier.wait()
            made.append(store.create_run_dir(tmp_path, "same-name"))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=create) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({str(p) for p in made}) == n and all(p.is_dir() for p in made)


def test_a_name_collision_is_retried_not_shared(tmp_path, monkeypatch):
    tokens = iter(["aaaa", "aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(store.secrets, "token_hex", lambda n: next(tokens))
    first = store.create_run_dir(tmp_path, "x")
    second = store.create_run_dir(tmp_path, "x")
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.endswith("aaaa") and second.name.endswith("bbbb")


# ---------------------------------------------------------------- heartbeats
def test_a_stale_heartbeat_shows_as_failed(tmp_path):
    alive = store.create_run_dir(tmp_path, "alive")
    dead = store.create_run_dir(tmp_path, "dead")
    store.update_run(alive, status="running", heartbeat_unix=time.time())
    store.update_run(dead, status="running", heartbeat_unix=time.time() - store.STALE_AFTER_SECONDS - 5)
    runs = {r["id"]: r for r in store.list_runs(tmp_path)}
    assert runs[alive.name]["status"] == "running"
    assert runs[dead.name]["status"] == "failed"
    assert runs[dead.name]["error"]
    # what is on disk is not rewritten by reading it
    assert json.loads((dead / "run.json").read_text())["status"] == "running"


def test_rename_changes_the_display_name_only(tmp_path):
    d = store.create_run_dir(tmp_path, "orig")
    store.update_run(d, status="completed")
    store.rename_run(d, "  my best model  ")
    assert store.read_run(d)["name"] == "my best model" and d.is_dir()
    with pytest.raises(store.RunStoreError):
        store.rename_run(d, "   ")
    elsewhere = store.create_run_dir(tmp_path / "elsewhere", "theirs")
    store.update_run(elsewhere, status="completed", name="theirs")
    (tmp_path / "store").mkdir()
    link = tmp_path / "store" / elsewhere.name
    link.symlink_to(elsewhere)
    before = (elsewhere / "run.json").read_bytes()
    with pytest.raises(store.RunStoreError, match="outside the run store"):
        store.rename_run(link, "mine now")
    assert (elsewhere / "run.json").read_bytes() == before


def test_the_app_asks_through_files_of_its_own_and_never_rewrites_run_json(tmp_path):
    """Rename, resume and cancelling a resume leave the training's run.json byte for byte as it was; the listing
    shows what was asked (the new name, 'queued', then the status the run ended with)."""
    from fer_core.runs import queue
    d = store.create_run_dir(tmp_path, "ended")
    store.update_run(d, status="cancelled", name="ended", epochs_done=3)
    store.write_bytes_atomic(store.last_model_path(d), b"checkpoint")
    before = (d / "run.json").read_bytes()
    store.rename_run(d, "kept for later")
    queue.queue_resume(d)
    assert (store.read_run(d)["name"], store.read_run(d)["status"]) == ("kept for later", "queued")
    assert queue.active_jobs(tmp_path)["queued"] == [d]
    assert queue.progress(d)["status"] == "queued" and queue.progress(d)["name"] == "kept for later"   # Train card
    assert queue.cancel(d) == "cancelled" and store.read_run(d)["status"] == "cancelled"
    assert (d / "run.json").read_bytes() == before


def test_damaged_request_files_count_as_none(tmp_path):
    """A name.json or calibration.json another program wrote: the listing and the model read as if absent."""
    d = store.create_run_dir(tmp_path, "odd")
    store.update_run(d, status="completed", name="odd")
    for bad in ("[1]", '"x"', '{"name": 5}', '{"name": "   "}', "{not json"):
        store.name_path(d).write_text(bad)
        assert store.read_run(d)["name"] == "odd" and store.list_runs(tmp_path)[0]["name"] == "odd"
    for shift in ("[1.0, Infinity]", "[NaN, 0.0]", "[true, 0.0]"):
        store.calibration_path(d).write_text('{"temperature": 1.2, "logit_adjustment": {"shift": %s}}' % shift)
        assert store.read_class_shift(d) is None


# ---------------------------------------------------------------- history.csv, read by column name
def test_history_is_read_by_column_name_whatever_the_order(tmp_path):
    rows = [{"epoch": 1, "phase": "frozen", "loss": 1.5, "accuracy": 0.4, "val_loss": 1.6, "val_accuracy": 0.35,
             "learning_rate": 0.001, "seconds": 12.5},
            {"epoch": 2, "phase": "full", "loss": 1.2, "accuracy": 0.5, "val_loss": None, "val_accuracy": None,
             "learning_rate": 1e-05, "seconds": 11.0}]
    store.write_history(tmp_path, rows)
    assert store.read_history(tmp_path) == rows
    shuffled = ["seconds", "val_accuracy", "epoch", "phase"]        # a file with other columns, in another order
    store.write_csv_atomic(store.history_path(tmp_path), shuffled, [[9.0, 0.7, 3, "full"]])
    assert store.read_history(tmp_path) == [{"seconds": 9.0, "val_accuracy": 0.7, "epoch": 3, "phase": "full"}]
    store.history_path(tmp_path).unlink()
    assert store.read_history(tmp_path) == []


# ---------------------------------------------------------------- run.json's writers
def _hammer(run_dir: str, who: str, n: int) -> None:
    for i in range(n):
        store.update_run(run_dir, **{f"{who}_{i}": i, "heartbeat_unix": i})


def test_concurrent_writers_of_run_json_lose_nothing(tmp_path):
    """The training's writers (its heartbeat, checkpointer and final status, in threads) merge into run.json;
    hammered from four processes at once, every field each of them wrote is there at the end."""
    import multiprocessing as mp
    d = store.create_run_dir(tmp_path, "hammered")
    store.update_run(d, status="running", name="hammered")
    ctx = mp.get_context("fork")
    writers = [ctx.Process(target=_hammer, args=(str(d), f"w{k}", 150)) for k in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(120)
    assert all(w.exitcode == 0 for w in writers)
    info = json.loads((d / "run.json").read_text())
    missing = [f"w{k}_{i}" for k in range(4) for i in range(150) if f"w{k}_{i}" not in info]
    assert not missing, f"{len(missing)} of 600 fields lost, e.g. {missing[:5]}"
    assert info["status"] == "running" and info["name"] == "hammered"


def test_the_heartbeat_stops_before_the_final_status(tmp_path, monkeypatch):
    """With the heartbeat beating as fast as it can, the status written at the end stays: no late beat merges
    an older run.json (status running) back over it."""
    from fer_core.config import TrainConfig
    from fer_core.train.lifecycle import RunLifecycle
    monkeypatch.setattr(store, "HEARTBEAT_SECONDS", 0.0005)
    for _ in range(5):
        d = store.create_run_dir(tmp_path, "beating")
        with RunLifecycle(d, TrainConfig(data=str(tmp_path)), resume=False):
            time.sleep(0.05)
        time.sleep(0.05)
        assert store.read_json(store.run_json_path(d))["status"] == "completed"
