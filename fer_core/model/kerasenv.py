"""Import Keras once, quietly. TensorFlow is the default backend; KERAS_BACKEND=jax also works."""

import gc
import os
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")      # hide TensorFlow's C++ start-up chatter
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402


def freeze_long_lived() -> None:
    """Move every object alive now out of the garbage collector's sight (gc.freeze): called once Keras is
    imported and after a model is loaded for the app's life.

    Why: Streamlit clears the Keras session after every script run, and Keras' clear_session runs a full
    gc.collect(); with TensorFlow imported that walked all its objects, about 0.2 s on every click of every
    page (bench.page_times). Frozen objects are never collected, which costs nothing for objects that live as
    long as the process; reference counting still frees everything else."""
    gc.freeze()


def collect_released(released=None, delay: float = 1.0) -> threading.Timer:
    """The model cache's on_release hook: a frozen model dropped from the cache would keep its reference
    cycles for good, so once the cache has let go of it (a moment later, on a timer thread) unfreeze, collect
    once (a pause of a fraction of a second, only when a model leaves the cache) and freeze the rest again."""
    del released              # the cache still holds it while this runs; the timer waits until it does not
    timer = threading.Timer(delay, _collect_unfrozen)
    timer.daemon = True
    timer.start()
    return timer


def _collect_unfrozen() -> None:
    gc.unfreeze()
    gc.collect()
    gc.freeze()


freeze_long_lived()


def backend() -> str:
    return keras.backend.backend()


def library_versions() -> dict:
    import numpy
    v = {"keras": keras.__version__, "backend": backend(), "numpy": numpy.__version__}
    try:
        import cv2
        v["opencv"] = cv2.__version__
    except ImportError:  # pragma: no cover
        pass
    if backend() == "tensorflow":
        import tensorflow as tf
        v["tensorflow"] = tf.__version__
    elif backend() == "jax":
        import jax
        v["jax"] = jax.__version__
    return v
