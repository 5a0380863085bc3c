"""Model files: written atomically, read in Keras safe mode (no code runs from a model file)."""

from __future__ import annotations

import os
from pathlib import Path

from fer_core.errors import UserError
from fer_core.model.kerasenv import keras


def save_model_atomic(model, path: Path, include_optimizer: bool = True) -> None:
    """Save to a temp name then rename: a crash or a full disk never damages the previous checkpoint.

    The best checkpoint leaves out the optimizer state (a third of the size); last.keras keeps it to resume.
    """
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    optimizer = getattr(model, "optimizer", None)
    try:
        if not include_optimizer and optimizer is not None:
            model.optimizer = None
        try:
            model.save(tmp)
        finally:
            if not include_optimizer and optimizer is not None:
                model.optimizer = optimizer
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


class ModelFileError(UserError, ValueError):
    """A model file this version cannot load; the message says why and what to do."""


RETIRED_LAYERS = {
    "MatchSharpness": "it was trained with the retired MatchSharpness layer (a blur for an earlier, damaged "
                      "FER2013 copy). Its run still lists with its figures; to use such a model, train it again "
                      "on the current data.",
}


def load_model_safe(path):
    """Keras safe mode: a model file cannot run arbitrary code (no Lambda deserialisation)."""
    from fer_core.model import layers  # noqa: F401  (registers our custom layers)
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except (TypeError, ValueError) as e:
        retired = next((why for name, why in RETIRED_LAYERS.items() if name in str(e)), None)
        if retired is None:
            raise
        raise ModelFileError(f"{path} cannot be loaded by this version: {retired}") from None
