"""Every training hyper-parameter and its default, in one place.

The CLI, the Train page and the stored `run.json` all use this dataclass, so a
run's config is exactly what re-creates it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

DEFAULT_SEED = 1337
DEFAULT_RUNS_DIR = "runs"


@dataclass
class TrainConfig:
    data: str = ""
    backbone: str = "custom_cnn"
    weights: str = "none"             # imagenet | none | PATH | run:RUN_DIR
    split: str = "auto"               # official | subject-kfold:K:FOLD | random:FRACTION | auto
    input_size: int = 0               # 0 = the backbone's default
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "adam"           # adam | sgd (Nesterov momentum 0.9)
    schedule: str = "plateau"         # plateau | cosine | constant
    weight_decay: float = 1e-4        # L2 on the head's dense layers
    dropout: float = 0.5
    head_units: int = 256
    augment: bool = True
    class_weights: bool = False
    early_stopping: int = 10          # patience in epochs, 0 = off
    fine_tune_layers: int = 0         # after the frozen phase, unfreeze the top N base layers (-1 = all)
    fine_tune_epochs: int = 0
    fine_tune_lr: float = 1e-5
    freeze_base: bool = True          # for pre-trained weights: train the head on a frozen base first
    feature_cache: bool = True        # frozen base + no augmentation: compute base features once
    max_samples: int = 0              # 0 = all; otherwise a stratified subset of the training part
    eval_samples: int = -1            # cap on val and test: -1 = max_samples // 4 (quick trials), 0 = all
    strategy: str = "none"            # none | mirrored | multiworker
    seed: int = DEFAULT_SEED          # weights, augmentation, shuffling; also the split unless split_seed is set
    split_seed: int = -1              # -1 = seed; k-fold ensemble members share a split but not their seed
    name: str = ""
    runs_dir: str = DEFAULT_RUNS_DIR
    image_size: int = 48              # every dataset is read as grayscale image_size x image_size
    label_smoothing: float = 0.0
    mixup: float = 0.0                # Beta(alpha, alpha) of mixup (fer_core/mixup.py); 0 = off
    precision: str = "float32"        # float32 | mixed_bfloat16 (~2.7x faster on CPUs with AMX/AVX512-BF16)
    max_train_seconds: float = 0.0    # wall-clock training budget (0 = none): fair backbone comparisons
    match_sharpness: str = "off"      # off | auto | SIGMA: blur faces at inference to the training faces' sharpness
    keep: str = "best"                # best | last: which epoch's weights become model.keras (see training.py)
    label_mode: str = "majority"      # FER+: majority | probability (train on the annotators' vote distribution)
    test_tta: str = "off"             # off | flip | crops: test-time augmentation in the final val/test evaluation

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
