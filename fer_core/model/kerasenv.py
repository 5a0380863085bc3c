"""Import Keras once, quietly. TensorFlow is the default backend; KERAS_BACKEND=jax also works."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")      # hide TensorFlow's C++ start-up chatter
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402


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
