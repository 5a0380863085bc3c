"""Queue a training the way the Train page does: the options are checked once, here, by the caller; the queue
(runs/queue.py) only stores the run and launches it, and the training process checks what it is given."""

from __future__ import annotations

from pathlib import Path

from fer_core.config import TrainConfig
from fer_core.runs import queue
from fer_core.train.checks import validate_config


def queue_training(runs_dir, cfg: TrainConfig) -> Path:
    """A queued run folder for CFG, or a UserError naming what is wrong (nothing is created then)."""
    validate_config(cfg)
    return queue.enqueue(runs_dir, cfg)
