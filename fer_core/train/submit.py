"""Queue a training the way the Train page does: the options are checked once, here, by the caller; the queue
(runs/queue.py) only stores the run and launches it, and the training process checks what it is given. A queue
keeper (runs/keeper.py) is made sure of, so the run starts when a slot frees even if the app is restarted."""

from __future__ import annotations

from pathlib import Path

from fer_core.config import TrainConfig
from fer_core.runs import keeper, queue
from fer_core.train.checks import validate_config


def queue_training(runs_dir, cfg: TrainConfig) -> Path:
    """A queued run folder for CFG, or a UserError naming what is wrong (nothing is created then)."""
    validate_config(cfg)
    run_dir = queue.enqueue(runs_dir, cfg)
    keeper.ensure_keeper(runs_dir)
    return run_dir
