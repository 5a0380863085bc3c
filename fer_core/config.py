"""Every training option, declared once: its default, help, choices and range.

The CLI's flags (`cli.add_train_args`), the checks before a run starts (`check_options`) and the Train
page's fields (choices, and `bounds` and `default`: ranges, steps and starting values) all read these
declarations, and a run's `run.json` stores the dataclass itself, so a run's config is exactly what
re-creates it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from fer_core.errors import UserError

DEFAULT_SEED = 1337
DEFAULT_RUNS_DIR = "runs"
MAX_INPUT_SIZE = 320      # the largest input a model is built for here (48-224 are sensible); the one limit
MAX_SEED = 2 ** 31 - 1    # NumPy, TensorFlow and Python all take it, with room for the k-fold members' offsets


class ConfigError(UserError, ValueError):
    """An option out of its range or choices; the message names the option and what would work."""


@dataclass(frozen=True)
class Option:
    help: str
    choices: tuple = ()
    low: float | None = None          # inclusive range, where one applies
    high: float | None = None
    flags: tuple = ()                 # extra CLI spellings, e.g. --lr
    metavar: str | None = None
    label: str | None = None         # what pages call it, where the name spelt out is not enough
    step: float | None = None         # the Train form's step, where the widget's own (1, or 0.01) does not suit


def option(default, help: str, **kw):
    return field(default=default, metadata={"option": Option(help, **kw)})


@dataclass
class TrainConfig:
    data: str = option("", "dataset: FER2013 csv or folders, FER+ (folders or fer2013new.csv), CK+48, or class "
                           "folders", label="Dataset")
    backbone: str = option("fer_vgg", "model architecture (see the backbone registry)")
    weights: str = option("none", "imagenet | none | PATH | run:RUN_DIR", label="Starting weights")
    split: str = option("auto", "official | subject-kfold:K:FOLD | random:FRACTION | auto")
    input_size: int = option(0, "pixels the model sees; 0 = the backbone's default", low=0,
                            high=MAX_INPUT_SIZE, label="Input size (px)")
    epochs: int = option(30, "training epochs", low=0, high=10_000)
    batch_size: int = option(64, "faces per step", low=1, high=4096)
    learning_rate: float = option(1e-3, "initial learning rate", low=1e-8, high=0.99, flags=("--lr",))
    optimizer: str = option("adam", "adam, or sgd (Nesterov momentum 0.9)", choices=("adam", "sgd"))
    schedule: str = option("plateau", "plateau: halve when validation loss stalls; cosine: decay to 0 over the "
                                      "epochs or the time budget", choices=("plateau", "cosine", "constant"),
                           label="Learning-rate schedule")
    weight_decay: float = option(1e-4, "L2 on the head's dense layers", low=0.0, high=1.0)
    dropout: float = option(0.5, "dropout in the head", low=0.0, high=0.95)
    head_units: int = option(256, "units of the head's hidden layer", low=8, high=4096)
    augment: bool = option(True, "flips, shifts, zoom, rotation, contrast", label="Augmentation")
    photometric: bool = option(False, "with augment: brightness changes and random erasing (part of the face "
                                      "covered)", label="Photometric augmentation")
    class_weights: bool = option(False, "weigh rare emotions up")
    early_stopping: int = option(10, "patience in epochs, 0 = off", low=0, high=10_000,
                                label="Early stopping (patience, epochs)")
    fine_tune_layers: int = option(0, "after the frozen phase, unfreeze the top N base layers (-1 = all)",
                                   low=-1, high=10_000, label="Fine-tuned base layers")
    fine_tune_epochs: int = option(0, "epochs of fine-tuning", low=0, high=10_000, label="Fine-tuning epochs")
    fine_tune_lr: float = option(1e-5, "learning rate while fine-tuning", low=1e-9, high=0.5,
                                label="Fine-tuning learning rate")
    freeze_base: bool = option(True, "pre-trained weights: train the head on a frozen base first",
                               label="Frozen base first")
    feature_cache: bool = option(True, "frozen base without augmentation: compute the base's features once")
    max_samples: int = option(0, "quick trials: cap the training part (0 = all)", low=0, step=100,
                             label="Training faces (cap)")
    eval_samples: int = option(-1, "cap on validation and test faces: -1 = max-samples/4, 0 = all", low=-1,
                              label="Validation and test faces (cap)")
    strategy: str = option("none", "tf.distribute strategy", choices=("none", "mirrored", "multiworker"),
                           label="Distribution strategy")
    seed: int = option(DEFAULT_SEED, "weights, augmentation, shuffling; also the split unless split-seed is set",
                       low=0, high=MAX_SEED)
    split_seed: int = option(-1, "-1 = seed; k-fold ensemble members share a split but not their seed", low=-1,
                        high=MAX_SEED)
    name: str = option("", "run name (default: backbone-dataset)")
    runs_dir: str = option(DEFAULT_RUNS_DIR, "the run store folder")
    image_size: int = option(48, "every dataset is read as grayscale image_size x image_size", low=8, high=512,
                            label="Image size read (px)")
    label_smoothing: float = option(0.0, "soften one-hot targets by this much", low=0.0, high=0.5)
    label_mode: str = option("majority", "FER+ only: majority labels, or the annotators' vote distribution "
                                         "(validation and test always use majority labels)",
                             choices=("majority", "probability"), label="FER+ labels")
    ferplus_votes: str = option("", "FER2013 only: a FER+ folder whose annotators' votes are blended half and "
                                    "half into the training faces' targets (validation and test keep FER2013's "
                                    "labels)", metavar="FERPLUS_DIR", label="FER+ votes blended in")
    mixup: float = option(0.0, "blend pairs of faces and labels, weight ~ Beta(ALPHA, ALPHA); 0 = off",
                          low=0.0, high=4.0, metavar="ALPHA", label="Mixup (alpha)")
    precision: str = option("auto", "auto: mixed_bfloat16 where the hardware computes bfloat16 natively (CPU "
                                    "flags avx512_bf16 or amx_bf16, a TPU, an Ampere or later GPU), else "
                                    "float32 (bfloat16 emulated is many times slower)",
                            choices=("auto", "float32", "mixed_bfloat16"))
    max_train_seconds: float = option(0.0, "wall-clock training budget in seconds (0 = none); the cosine "
                                           "schedule anneals over it", low=0.0,
                                     label="Training budget (s)")
    keep: str = option("best", "model.keras = the best validation epoch, or the last (small validation sets: "
                               "a schedule run to its end beats picking an epoch on a few dozen faces)",
                       choices=("best", "last"), label="Model kept")
    test_tta: str = option("off", "final val/test figures average each face with its mirror (flip) or ten crops",
                           choices=("off", "flip", "crops"), label="Test-time augmentation")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Unknown keys (options of older versions) are ignored, so old run.json files still load."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def options() -> dict[str, tuple[dataclasses.Field, Option]]:
    """{field name: (dataclass field, its Option)} in declaration order."""
    return {f.name: (f, f.metadata["option"]) for f in dataclasses.fields(TrainConfig)}


def choices(name: str) -> list:
    return list(options()[name][1].choices)


def help_text(name: str) -> str:
    return options()[name][1].help


def label(name: str) -> str:
    """The option as pages name it ('Learning rate', 'Training budget (s)'); keys of older versions, no longer
    declared, are spelt out the same way."""
    declared = options().get(name)
    if declared is not None and declared[1].label:
        return declared[1].label
    return name.replace("_", " ").capitalize()


def bounds(name: str) -> dict:
    """The declared range and step of a number option as a form's number field takes them (min_value,
    max_value, step: None where none is declared), in the option's own type (int or float)."""
    f, opt = options()[name]
    kind = type(f.default)
    cast = lambda v: None if v is None else kind(v)      # noqa: E731
    return {"min_value": cast(opt.low), "max_value": cast(opt.high), "step": cast(opt.step)}


def default(name: str):
    return options()[name][0].default


def check_options(cfg: TrainConfig) -> None:
    """Choices and ranges, as declared; raises ConfigError naming the option."""
    for name, (_, opt) in options().items():
        value = getattr(cfg, name)
        label = name.replace("_", " ")
        if opt.choices and value not in opt.choices:
            raise ConfigError(f"unknown {label} '{value}'; use one of: {', '.join(map(str, opt.choices))}.")
        if opt.low is not None and value < opt.low or opt.high is not None and value > opt.high:
            span = f"at least {opt.low:g}" if opt.high is None else f"between {opt.low:g} and {opt.high:g}"
            raise ConfigError(f"{label} {value} is out of range: use a value {span}.")
