"""What makes a config impossible, checked before any data is loaded or model built."""

from __future__ import annotations

from pathlib import Path

from fer_core.config import TrainConfig, check_options
from fer_core.model.backbones import ModelConfigError, WeightsError, get_backbone, resolve_input_size
from fer_core.model.kerasenv import backend
from fer_core.runs import store


def validate_config(cfg: TrainConfig) -> None:
    """The declared choices and ranges (config.py), then what depends on the backbone, weights and backend."""
    check_options(cfg)
    bb = get_backbone(cfg.backbone)
    resolve_input_size(cfg.backbone, cfg.input_size)
    w = cfg.weights or "none"
    if w == "imagenet" and not bb.imagenet:
        raise ModelConfigError(f"{cfg.backbone} has no ImageNet weights; train from scratch or from an earlier run.")
    if w.startswith("run:"):
        _check_transfer_source(Path(w[4:]), cfg.backbone, w)
    elif w not in ("none", "imagenet") and not Path(w).is_file():
        raise WeightsError(f"weights {w}: no such file. Use imagenet, none, a weights file, or run:RUN_DIR.")
    if cfg.label_mode != "majority":
        from fer_core.data.datasets import detect_format
        if not detect_format(cfg.data).startswith("ferplus"):
            raise ModelConfigError(f"label mode {cfg.label_mode} trains on annotator votes, which only FER+ has; "
                                   f"{cfg.data} is not FER+. Use majority labels.")
    if cfg.epochs == 0 and cfg.fine_tune_epochs == 0:
        raise ModelConfigError("nothing to train: epochs and fine-tune epochs are both 0.")
    if cfg.strategy != "none" and backend() != "tensorflow":
        raise ModelConfigError(f"strategy {cfg.strategy} uses tf.distribute and needs the TensorFlow backend "
                               f"(this process uses {backend()}).")


def _check_transfer_source(src: Path, backbone: str, w: str) -> None:
    """A different input size is fine (conv and BatchNorm weights do not depend on it; the head is new)."""
    if not store.model_path(src).is_file():
        raise ModelConfigError(f"weights {w}: no model.keras in {src}; pick a completed run.")
    src_backbone = store.read_config(src).get("backbone")
    if src_backbone != backbone:
        raise ModelConfigError(f"weights {w}: that run trained a {src_backbone} backbone, not {backbone}; "
                               "its weights cannot be transferred.")
