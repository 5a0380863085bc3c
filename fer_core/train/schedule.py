"""Optimizers and learning-rate schedules."""

from __future__ import annotations

import math

from fer_core.config import TrainConfig
from fer_core.model.kerasenv import keras
from fer_core.train.callbacks import TrainClock


def make_optimizer(name: str, lr: float):
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True)
    return keras.optimizers.Adam(learning_rate=lr)


class CosineSchedule(keras.callbacks.Callback):
    """Cosine decay to ~0 over the epochs, or over the wall-clock budget when that ends first.

    With a time budget the learning rate still anneals fully, so runs cut by the clock end at a low
    rate, not mid-descent. The clock is the run's one `TrainClock`, read every batch; it starts after
    the first batch, whose graph tracing is not training (a schedule that counted it once annealed a
    big net to nothing after one epoch).
    """

    def __init__(self, base_lr: float, epochs: int, clock: TrainClock):
        super().__init__()
        self.base_lr, self.epochs, self.clock = base_lr, max(epochs, 1), clock
        self.epoch = 0

    def _set(self) -> None:
        progress = min(max(self.epoch / self.epochs, self.clock.fraction_used(), 0.0), 1.0)
        lr = self.base_lr * 0.5 * (1 + math.cos(math.pi * progress))
        self.model.optimizer.learning_rate = max(lr, self.base_lr * 1e-3)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._set()

    def on_train_batch_begin(self, batch, logs=None):
        if self.clock.budget:
            self._set()


def schedule_callbacks(cfg: TrainConfig, lr: float, epochs: int, clock: TrainClock) -> list:
    if cfg.schedule == "plateau":
        return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3, min_lr=lr / 100,
                                                  verbose=0)] + _early_stopping(cfg)
    if cfg.schedule == "cosine":
        return [CosineSchedule(lr, epochs, clock)] + _early_stopping(cfg)
    return _early_stopping(cfg)


def _early_stopping(cfg: TrainConfig) -> list:
    if not cfg.early_stopping:
        return []
    return [keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=cfg.early_stopping)]


def compile_model(model, cfg: TrainConfig, lr: float) -> None:
    model.compile(optimizer=make_optimizer(cfg.optimizer, lr),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
                  metrics=["accuracy"])
