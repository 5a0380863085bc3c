"""The frozen-base phase of transfer learning: the head trains on a base that does not change.

With augmentation off, the base's features are computed once and the head trains on them (epochs
cost seconds); otherwise a model that runs the base in inference mode is fitted.
"""

from __future__ import annotations

import numpy as np

from fer_core.model.kerasenv import keras
from fer_core.progress import Progress


class _LogStream:
    """A file-like object that sends progress lines to the run's log."""

    def __init__(self, log):
        self.log = log

    def write(self, s):
        if s.strip():
            self.log(s.rstrip("\n"))

    def flush(self):
        pass


def compute_features(features, x: np.ndarray, log, label: str, batch_size: int = 256) -> np.ndarray:
    """Run the frozen base once over all images (with progress and ETA)."""
    prog = Progress(f"caching {label} features", len(x), stream=_LogStream(log))
    out = []
    for i in range(0, len(x), batch_size):
        chunk = x[i:i + batch_size]
        out.append(np.asarray(features(chunk, training=False)))
        prog.update(len(chunk))
    return np.concatenate(out)


def fit_head_on_features(head, f_train, y_train, f_val, y_val, epochs, batch_size, callbacks, class_weight,
                         initial_epoch=0, shuffle=True):
    """Train the head alone on pre-computed base features."""
    return head.fit(f_train, y_train, validation_data=(f_val, y_val), epochs=epochs, batch_size=batch_size,
                    callbacks=callbacks, class_weight=class_weight, initial_epoch=initial_epoch,
                    shuffle=shuffle, verbose=0)


class _HeadPhaseModel(keras.Model):
    """augmentation -> features (always in inference mode) -> head, sharing the layers of the full model.

    A functional graph cannot do this: Keras 3 overrides a node's training=False with fit's training=True.
    """

    def __init__(self, model):
        super().__init__(name=model.name)
        names = [layer.name for layer in model.layers]
        self.aug = model.get_layer("augmentation") if "augmentation" in names else None
        self.base_features = model.get_layer("features")
        self.head_model = model.get_layer("head")

    def call(self, x, training=None):
        if self.aug is not None:
            x = self.aug(x, training=training)
        return self.head_model(self.base_features(x, training=False), training=training)


def head_phase_model(model):
    """The model fitted while the base is frozen (it is never saved; the full model is).

    The frozen base runs in inference mode (the keras-io recipe: base(x, training=False)), so dropout
    inside it is off and the head learns from exactly the features the feature cache gives it.
    """
    return _HeadPhaseModel(model)
