"""The training queue (fer_core.runs.queue): real trainings launched as separate processes through the run store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_core.cli import build_parser, config_from_args
from fer_core.config import TrainConfig, options
from fer_core.errors import UserError
from fer_core.runs import queue
from fer_core.runs import store

pytestmark = pytest.mark.slow


def tiny_cfg(data: Path, **kw) -> TrainConfig:
    """A training that takes seconds on a laptop CPU: fer_vgg, 200 CK+ faces."""
    base = dict(data=str(data), backbone="fer_vgg", epochs=1, max_samples=200, split="subject-kfold:5:0",
                name="queue-test")
    return TrainConfig(**{**base, **kw})


def wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_every_option_is_one_cli_flag_that_round_trips(tmp_path):
    """Options are declared once (config.py); the CLI's flags are generated from them, none dropped."""
    cfg = TrainConfig(data="/data/x", backbone="mobilenetv2", weights="imagenet", split="random:0.2", input_size=96,
                      epochs=7, batch_size=16, learning_rate=3e-4, optimizer="sgd", schedule="cosine",
                      augment=False, class_weights=True, freeze_base=False, fine_tune_layers=-1,
                      fine_tune_epochs=3, fine_tune_lr=2e-5, max_samples=123, name="-a b", label_smoothing=0.1,
                      max_train_seconds=60.0, runs_dir=str(tmp_path), image_size=40, split_seed=3,
                      label_mode="probability", keep="last", test_tta="flip", mixup=0.2)
    argv = ["train"]
    for name in options():
        value = getattr(cfg, name)
        value = ("on" if value else "off") if isinstance(value, bool) else value
        argv.append(f"--{name.replace('_', '-')}={value}")     # --flag=value: safe for values starting with "-"
    assert config_from_args(build_parser().parse_args(argv)) == cfg


def test_queueing_refuses_bad_options_with_a_message(tmp_path, ckplus):
    from fer_core.train.submit import queue_training
    with pytest.raises(UserError, match="learning rate"):
        queue_training(tmp_path, tiny_cfg(ckplus, learning_rate=5.0))
    with pytest.raises(UserError, match="no ImageNet weights"):
        queue_training(tmp_path, tiny_cfg(ckplus, weights="imagenet"))
    with pytest.raises(UserError, match="not found"):
        queue_training(tmp_path, tiny_cfg(tmp_path / "no-such-data"))
    assert store.list_runs(tmp_path) == []   # nothing half-created


def test_queued_run_trains_to_completion(tmp_path, ckplus):
    run_dir = queue.enqueue(tmp_path, tiny_cfg(ckplus))
    info = store.read_run(run_dir)
    assert info["status"] == "queued" and info["backbone"] == "fer_vgg"

    assert queue.start_queued(tmp_path, 1) == [run_dir]
    assert store.read_run(run_dir)["status"] == "running"
    assert queue.start_queued(tmp_path, 1) == []          # launched once, not twice
    assert queue.wait(run_dir, timeout=300) == "completed", queue.log_tail(run_dir)

    run = store.read_run(run_dir)
    assert run["name"] == "queue-test"
    assert (run_dir / "model.keras").is_file()
    assert run["metrics"]["test"]["num_samples"] > 0
    assert 0.0 <= run["test_accuracy"] <= 1.0
    assert "run completed" in (run_dir / "train.log").read_text()
    assert not (run_dir / "progress.json").exists()
    assert queue.progress(run_dir)["epochs_done"] == 1
    assert queue.active_jobs(tmp_path) == {"queued": [], "running": []}


def test_cap_and_cancel(tmp_path, ckplus):
    """Two queued with a cap of 1: one runs. Cancelling it keeps its checkpoint; then the next one starts."""
    queue.set_max_concurrent(tmp_path, 1)
    first = queue.enqueue(tmp_path, tiny_cfg(ckplus, epochs=30, early_stopping=0, name="first"))
    time.sleep(0.01)
    second = queue.enqueue(tmp_path, tiny_cfg(ckplus, name="second"))

    assert queue.start_queued(tmp_path) == [first]
    active = queue.active_jobs(tmp_path)
    assert active == {"queued": [second], "running": [first]}

    wait_for(lambda: (first / "model.keras").exists(), 240, "the first epoch's checkpoint")
    assert queue.start_queued(tmp_path) == []             # still capped while the first one trains
    assert queue.cancel(first) == "cancelling"
    assert queue.wait(first, timeout=120) == "cancelled", queue.log_tail(first)
    run = store.read_run(first)
    assert (first / "model.keras").is_file()              # the checkpoint is kept
    assert 1 <= len(store.read_history(first)) < 30        # stopped early
    assert run["epochs_done"] >= 1

    # the queue moves on by itself (the cancelled run's process starts the next one as it ends),
    # and a cancel right after launch still ends as 'cancelled'
    wait_for(lambda: store.read_run(second)["status"] != "queued", 60, "the second run to start")
    queue.cancel(second)
    assert queue.wait(second, timeout=120) == "cancelled", queue.log_tail(second)


def test_the_queue_moves_on_with_no_page_open(tmp_path, ckplus):
    """A queued run starts when the one before it ends, though nothing calls start_queued again."""
    queue.set_max_concurrent(tmp_path, 1)
    first = queue.enqueue(tmp_path, tiny_cfg(ckplus, name="first"))
    time.sleep(0.01)
    second = queue.enqueue(tmp_path, tiny_cfg(ckplus, name="second"))
    assert queue.start_queued(tmp_path) == [first]
    assert queue.wait(second, timeout=300) == "completed", queue.log_tail(second)
    assert store.read_run(first)["status"] == "completed"
    assert f"queue: started {second}" in (first / "train.log").read_text()


def test_cancel_a_queued_run_and_refuse_finished_ones(tmp_path, ckplus):
    run_dir = queue.enqueue(tmp_path, tiny_cfg(ckplus))
    assert queue.cancel(run_dir) == "cancelled"
    assert store.read_run(run_dir)["status"] == "cancelled"
    assert queue.start_queued(tmp_path, 5) == []            # a cancelled run never starts
    with pytest.raises(UserError, match="cancelled"):
        queue.cancel(run_dir)


def _vanished_run(tmp_path, ckplus, log: str) -> dict:
    """A 'running' run whose process is gone, with LOG as its train.log, after the queue has looked at it."""
    run_dir = queue.enqueue(tmp_path, tiny_cfg(ckplus))
    store.update_run(run_dir, status="running", pid=2 ** 22 + 12345, heartbeat_unix=time.time())
    (run_dir / "train.log").write_text(log)
    assert queue.active_jobs(tmp_path)["running"] == []
    return store.read_run(run_dir)


def test_dead_training_process_is_reported_failed(tmp_path, ckplus):
    """A 'running' run whose process is gone (killed, crashed at start-up) must not block the queue."""
    run = _vanished_run(tmp_path, ckplus, "Segmentation fault\n")
    assert run["status"] == "failed" and "Segmentation fault" in run["error"]


def test_a_killed_run_s_error_is_not_a_normal_log_line(tmp_path, ckplus):
    """kill -9 leaves a log that ends with progress: the error says the process was killed, not 'epoch 3/20'."""
    run = _vanished_run(tmp_path, ckplus, "Epoch 3/20\n120/448 ETA 1:20 - accuracy: 0.41 - loss: 1.52\n")
    assert run["status"] == "failed" and "killed from outside" in run["error"] and "Epoch" not in run["error"]


def test_max_concurrent_setting_persists(tmp_path):
    assert queue.max_concurrent(tmp_path) == 1
    queue.set_max_concurrent(tmp_path, 3)
    assert queue.max_concurrent(tmp_path) == 3
    with pytest.raises(UserError):
        queue.set_max_concurrent(tmp_path, 0)
    assert store.list_runs(tmp_path) == []     # the setting file is not a run


def test_a_cancelled_run_resumes_from_its_checkpoint_through_the_queue(tmp_path, ckplus):
    """What the Runs page's Resume button does: back in the queue, continued by `fer_core resume`."""
    run_dir = queue.enqueue(tmp_path, tiny_cfg(ckplus, epochs=6, early_stopping=0, name="resumable"))
    with pytest.raises(UserError, match="cannot be resumed"):
        queue.queue_resume(run_dir)                         # queued, not ended: nothing to resume
    queue.start_queued(tmp_path, 1)
    wait_for(lambda: (run_dir / "last.keras").exists(), 240, "the first epoch's checkpoint")
    queue.cancel(run_dir)
    assert queue.wait(run_dir, timeout=120) == "cancelled", queue.log_tail(run_dir)
    done_before = store.read_run(run_dir)["epochs_done"]
    assert 1 <= done_before < 6
    assert queue.can_resume(store.read_run(run_dir))

    queue.queue_resume(run_dir)
    assert store.read_run(run_dir)["status"] == "queued"
    assert queue.start_queued(tmp_path, 1) == [run_dir]
    assert queue.wait(run_dir, timeout=300) == "completed", queue.log_tail(run_dir)
    assert [int(h["epoch"]) for h in store.read_history(run_dir)] == [1, 2, 3, 4, 5, 6]
    assert f"resuming after epoch {done_before}" in (run_dir / "train.log").read_text()
    assert not queue.can_resume(store.read_run(run_dir))


def test_a_queued_run_starts_when_its_slot_frees_with_no_app_and_no_page_open(tmp_path, ckplus, monkeypatch):
    """After an app restart nobody needs to open a page: queuing the run launched a keeper process (this test
    never calls start_queued and runs no app), which starts it once the busy slot frees, then exits."""
    from fer_core.runs import keeper
    from fer_core.train.submit import queue_training
    monkeypatch.setenv("FER_QUEUE_KEEPER", "on")
    busy_pid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    busy = tmp_path / "20200101-000000-busy-0000"
    busy.mkdir()
    store.write_json_atomic(store.run_json_path(busy), {"name": "busy", "status": "running", "pid": busy_pid.pid,
                                                        "host": socket.gethostname(), "heartbeat_unix": time.time()})
    try:
        run_dir = queue_training(tmp_path, tiny_cfg(ckplus, epochs=20, early_stopping=0, name="waiting"))
        wait_for(lambda: keeper.keeper_alive(tmp_path), 20, "the keeper to start")
        assert not keeper.ensure_keeper(tmp_path)                     # one keeper per store
        time.sleep(2 * keeper.INTERVAL_SECONDS)
        assert store.read_run(run_dir)["status"] == "queued"          # the only slot is still taken
    finally:
        busy_pid.kill()
        busy_pid.wait()
    wait_for(lambda: store.read_run(run_dir)["status"] == "running", 30, "the keeper to start the run")
    wait_for(lambda: not keeper.keeper_alive(tmp_path), 30, "the keeper to exit once nothing waits")
    assert "started " + run_dir.name in (tmp_path / keeper.KEEPER_LOG).read_text()
    queue.cancel(run_dir)
    assert queue.wait(run_dir, timeout=180) == "cancelled", queue.log_tail(run_dir)


def test_a_finished_training_is_not_left_defunct(tmp_path, ckplus):
    """The app that launched a training reaps it when it ends, not when the next one starts."""
    run_dir = queue.enqueue(tmp_path, tiny_cfg(ckplus))
    [launched] = queue.start_queued(tmp_path, 1)
    pid = store.read_json(launched / store.LAUNCH)["pid"]          # the launcher's record of its child
    assert isinstance(pid, int) and Path(f"/proc/{pid}").exists()
    wait_for(lambda: store.read_json(store.run_json_path(run_dir), {}).get("status") != "running", 300,
             "the training to end")
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 30, f"process {pid} to be reaped (not left <defunct>)")
    assert store.read_json(store.run_json_path(run_dir))["status"] == "completed", queue.log_tail(run_dir)


def test_the_keeper_is_seen_by_the_process_its_lock_names_and_leaves_when_nothing_waits(tmp_path):
    """Asking whether a keeper lives never takes its lock (a keeper starting then would think it had a rival); a
    keeper with nothing to do exits at once and no longer counts as alive; a dead keeper's file counts as none."""
    from fer_core.runs import keeper
    (tmp_path / keeper.KEEPER_LOCK).write_text("999999999\n")          # a pid no process has
    assert not keeper.keeper_alive(tmp_path)
    (tmp_path / keeper.KEEPER_LOCK).write_text(f"{os.getpid()}\n")     # a living process named: alive
    assert keeper.keeper_alive(tmp_path)
    started = time.monotonic()
    assert keeper.keep(tmp_path, interval=0.1, log=lambda msg: None) == 0 and time.monotonic() - started < 5
    assert not keeper.keeper_alive(tmp_path) and not keeper.ensure_keeper(tmp_path)   # nothing queued: none
