"""Progress that tells the truth at every moment: an ETA inside epoch 1 from the batches done so far, no
absurd first estimate while loading, and no claim of a checkpoint a cancelled run does not have."""

from __future__ import annotations

import io
import json
import math
import shutil

import pytest

from fer_core import progress as progress_mod
from fer_core.runs import store

pytestmark = pytest.mark.slow


class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_loading_gives_no_estimate_from_the_first_item(monkeypatch):
    """Opening a folder takes seconds, then each face takes milliseconds: the first face's time is no pace."""
    clock = FakeClock()
    monkeypatch.setattr(progress_mod.time, "time", clock)
    seen = []
    p = progress_mod.Progress("loading", 10_000, every=0.0, stream=io.StringIO(),
                              callback=lambda d, t, eta: seen.append((d, eta)))
    clock.t += 8.0                     # start-up before the first face
    p.update()
    assert math.isnan(seen[-1][1])     # not 8 s x 10,000 = 22 hours
    assert "ETA estimating" in p.stream.getvalue()
    for _ in range(999):
        clock.t += 0.002
        p.update()
    done, eta = seen[-1]
    assert done == 1000 and eta == pytest.approx(0.002 * 9000, rel=0.01)
    clock.t += 0.002 * 9000
    p.update(9000)
    assert seen[-1][1] == 0.0


def test_epoch_one_has_an_eta_from_its_own_batches(monkeypatch, tmp_path):
    from fer_core.train import callbacks
    clock = FakeClock()
    monkeypatch.setattr(callbacks.time, "time", clock)
    state = callbacks.RunState(total_epochs=10)
    rec = callbacks.HistoryRecorder(tmp_path, "full", state, callbacks.TrainClock(0, 0, state, print), print)
    rec.params = {"steps": 100}
    rec.on_epoch_begin(0)
    clock.t += 30.0                    # the first batch traces the model
    rec.on_train_batch_end(0)
    assert rec.eta_seconds(1, 100) is None          # one batch is no pace yet
    for b in range(1, 21):
        clock.t += 0.5
        rec.on_train_batch_end(b)
    # 21 of 100 batches done after 40 s, 0.5 s a batch since the first: 79 x 0.5 s left in this epoch, and
    # 9 more epochs of the length this one is heading for (40 + 39.5 s)
    assert rec.eta_seconds(21, 100) == pytest.approx(39.5 + 9 * 79.5, rel=1e-6)
    written = json.loads(store.progress_path(tmp_path).read_text())
    assert written["batch"] >= 1 and written["batches"] == 100 and written["epoch"] == 1


def test_later_epochs_count_down_inside_the_epoch(monkeypatch, tmp_path):
    from fer_core.train import callbacks
    clock = FakeClock()
    monkeypatch.setattr(callbacks.time, "time", clock)
    state = callbacks.RunState(total_epochs=4, epochs_done=2, epoch_seconds=[60.0, 60.0])
    rec = callbacks.HistoryRecorder(tmp_path, "full", state, callbacks.TrainClock(0, 0, state, print), print)
    rec.params = {"steps": 60}
    rec.on_epoch_begin(2)
    etas = []
    for b in range(60):
        clock.t += 1.0
        rec.on_train_batch_end(b)
        etas.append(rec.eta_seconds(b + 1, 60))
    known = [e for e in etas if e is not None]
    assert known == sorted(known, reverse=True) and known[0] > known[-1]      # it moves, downwards
    assert known[-1] == pytest.approx(60.0, abs=1.0)                           # one epoch left after this one


# ---------------------------------------------------------------- what a cancelled run claims
@pytest.fixture()
def cancelled_in_epoch_one(default_run, tmp_path):
    """A run as the store leaves one cancelled during its first epoch: run.json, train.log, no model files."""
    run = tmp_path / "runs" / "20990101-000000-cancelled-early"
    run.mkdir(parents=True)
    info = json.loads((default_run / "run.json").read_text())
    info.update(name="cancelled early", status="cancelled", epochs_done=0, best_epoch=0, error=None,
                best_val_accuracy=None, train_seconds=12.0)
    (run / "run.json").write_text(json.dumps(info))
    (run / "train.log").write_text("cancel requested\n")
    return run


def test_a_run_cancelled_in_epoch_one_claims_no_checkpoint(cancelled_in_epoch_one):
    from fer_core.report import run_notes
    run = store.read_run(cancelled_in_epoch_one)
    note = run_notes.cancelled_note(run)
    assert "checkpoint" in note and "no checkpoint or model was saved" in note and "is kept" not in note
    assert "first epoch" in run_notes.missing_model_note(run)
    assert "reference" not in run_notes.missing_model_note(run)


def test_a_run_cancelled_later_names_what_is_kept(cancelled_in_epoch_one, default_run):
    from fer_core.report import run_notes
    shutil.copy(default_run / "model.keras", cancelled_in_epoch_one / "model.keras")
    info = json.loads((cancelled_in_epoch_one / "run.json").read_text())
    info.update(epochs_done=3, best_epoch=2)
    (cancelled_in_epoch_one / "run.json").write_text(json.dumps(info))
    note = run_notes.cancelled_note(store.read_run(cancelled_in_epoch_one))
    assert "after epoch 3" in note and "epoch 2" in note and "is kept" in note


def test_runs_page_tells_the_truth_about_a_run_cancelled_in_epoch_one(cancelled_in_epoch_one, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from conftest import REPO
    monkeypatch.setenv("FER_RUNS_DIR", str(cancelled_in_epoch_one.parent))
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=240)
    at.run()
    at.switch_page("pages/runs.py")
    at.run()
    at.selectbox(key="run_pick").set_value(cancelled_in_epoch_one.name).run()
    assert not at.exception, at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "no checkpoint or model was saved" in warnings and "best checkpoint so far is kept" not in warnings
    at.session_state["run_tab"] = "Actions"            # where the model would be downloaded
    at.run()
    captions = " ".join(c.value for c in at.caption)
    assert "cancelled during its first epoch" in captions and "reference runs" not in captions
