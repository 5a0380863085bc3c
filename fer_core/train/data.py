"""The data a run trains on: dataset -> split -> arrays, with the split recorded in the run folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_core.config import TrainConfig
from fer_core.data.dataset import Dataset, DatasetError
from fer_core.data.datasets import check_trainable, load_dataset
from fer_core.data.ferplus_votes import blend_vote_targets
from fer_core.data.sharpness import GAP_WARNING, sharpness_gap
from fer_core.data.splits import make_split, subsample
from fer_core.model.kerasenv import backend, keras
from fer_core.report.evaluation import to_model_input
from fer_core.runs import store


@dataclass
class TrainData:
    ds: Dataset
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray          # one-hot labels, or FER+ vote distributions
    x_val: np.ndarray
    y_val: np.ndarray
    class_weight: dict | None

    @property
    def num_classes(self) -> int:
        return len(self.ds.class_names)


def class_weight_dict(labels: np.ndarray, k: int) -> dict:
    counts = np.bincount(labels, minlength=k).astype(float)
    weights = len(labels) / (k * np.maximum(counts, 1))
    return {i: float(w) for i, w in enumerate(weights)}


def _split_indices(cfg: TrainConfig, ds: Dataset):
    split_seed = cfg.seed if cfg.split_seed < 0 else cfg.split_seed
    split = make_split(ds, cfg.split, split_seed)
    train_idx = subsample(ds.labels, split.train, cfg.max_samples, split_seed)
    eval_cap = cfg.max_samples // 4 if cfg.eval_samples < 0 else cfg.eval_samples
    val_idx = subsample(ds.labels, split.val, eval_cap, split_seed)
    test_idx = subsample(ds.labels, split.test, eval_cap, split_seed)
    if len(val_idx) == 0 or len(test_idx) == 0 or len(train_idx) == 0:
        raise DatasetError(f"the split {split.spec} left an empty part (train {len(train_idx)}, "
                           f"val {len(val_idx)}, test {len(test_idx)}); the dataset is too small for it.")
    return split, split_seed, train_idx, val_idx, test_idx


def _record_split(run_dir: Path, ds: Dataset, split, split_seed: int, parts: dict) -> None:
    split_json = split.to_json(split_seed, ds.fingerprint())
    split_json["indices"] = {k: v.tolist() for k, v in parts.items()}
    split_json["counts"] = {k: len(v) for k, v in parts.items()}
    store.write_text_atomic(store.split_path(run_dir), json.dumps(split_json))
    store.update_run(run_dir, dataset={"name": ds.name, "path": ds.path, "format": ds.format,
                                       "fingerprint": ds.fingerprint(), "num_samples": len(ds)},
                     split={"spec": split.spec, "leaks_subjects": split.leaks_subjects, "note": split.note,
                            "counts": split_json["counts"]},
                     class_names=ds.class_names, backend=backend())


def prepare_data(cfg: TrainConfig, run_dir: Path, dataset: Dataset | None, log) -> TrainData:
    ds = dataset or load_dataset(cfg.data, cfg.image_size, None, label_mode=cfg.label_mode)
    for p in ds.problems:
        log(f"dataset note: {p}")
    check_trainable(ds)
    split, split_seed, train_idx, val_idx, test_idx = _split_indices(cfg, ds)
    _record_split(run_dir, ds, split, split_seed, {"train": train_idx, "val": val_idx, "test": test_idx})
    log(f"data: {ds.name} ({ds.format}), split {split.spec}: train {len(train_idx)}, val {len(val_idx)}, "
        f"test {len(test_idx)}; classes {', '.join(ds.class_names)}")
    gap = sharpness_gap(ds.images[train_idx], ds.images[np.concatenate([val_idx, test_idx])])
    if gap >= GAP_WARNING:   # pixels only, no labels: looking at the test part's images here is fair
        log(f"note: the validation/test faces are {gap:.1f}x sharper than the training faces (mean pixel "
            "gradient); a model trained on these faces may fail on sharp ones. Use a copy with the original pixels.")
    k = len(ds.class_names)
    # FER+ in probability mode trains on the annotators' vote distribution; every other dataset on one-hot labels
    y_all = ds.targets if ds.targets is not None else keras.utils.to_categorical(ds.labels, k).astype("float32")
    if cfg.ferplus_votes:
        y_all = y_all.copy()
        n = blend_vote_targets(ds, y_all, train_idx, cfg.ferplus_votes)
        log(f"targets: FER+ votes from {cfg.ferplus_votes} blended into {n} of {len(train_idx)} training faces")
    x_all = to_model_input(ds.images)
    cw = class_weight_dict(ds.labels[train_idx], k) if cfg.class_weights else None
    return TrainData(ds, train_idx, val_idx, test_idx, x_all[train_idx], y_all[train_idx], x_all[val_idx],
                     y_all[val_idx], cw)
