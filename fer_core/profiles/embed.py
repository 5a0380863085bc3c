"""The model's own view of a face as a vector: its convolutional features, pooled, with the probabilities.

A profile compares faces in this space, so the embedding must come from the very model that answers;
and one call returns both, so a calibrated frame costs one model call like an uncalibrated one. The vector is
the last convolutional map averaged over its positions (256 wide for fer_vgg), where the features end in a
Flatten, else the features as they are: on the development people (bench.calibration) it separated one person's
emotions better than the 256-wide layer before the classifier, which is trained to forget what the classifier
does not use.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from fer_core.errors import UserError
from fer_core.model.kerasenv import backend, keras


class EmbeddingError(UserError, ValueError):
    """The model has no classifier head this feature knows how to read."""


def pooled(features, flat):
    """The features' last map averaged over its positions, where they end in a Flatten of a map; else as is."""
    last = features.layers[-1]
    if isinstance(last, keras.layers.Flatten) and len(last.input.shape) == 4:
        h, w, c = last.input.shape[1:]
        return keras.ops.mean(keras.ops.reshape(keras.ops.cast(flat, "float32"), (-1, h * w, c)), axis=1)
    return flat


def embedding_model(model) -> keras.Model:
    """pixels -> (embedding, probabilities): the 'features' sub-model, pooled, and the 'head' on the features.

    The augmentation layers at the model's input are skipped: they do nothing at inference.
    """
    try:
        features, head = model.get_layer("features"), model.get_layer("head")
    except ValueError:
        raise EmbeddingError("this model has no 'features' and 'head' parts (it was not trained by this app); "
                             "profiles need a model trained here, e.g. the default model") from None
    inp = keras.Input(model.input_shape[1:], name="pixels")
    flat = features(inp)
    return keras.Model(inp, [pooled(features, flat), head(flat)], name="embedding_model")


def make_embed_fn(model):
    """A fast `x (N, S, S, 1) float32 -> (embeddings float32, probabilities float32)` for numpy batches."""
    em = embedding_model(model)
    if backend() == "tensorflow":
        import tensorflow as tf
        spec = tf.TensorSpec((None, *em.input_shape[1:]), tf.float32)
        fn = tf.function(lambda x: em(x, training=False), input_signature=[spec])

        def run(x):
            e, p = fn(np.asarray(x, dtype=np.float32))
            return e.numpy().astype(np.float32), p.numpy().astype(np.float32)
        return run

    def run_other(x):
        e, p = em(np.asarray(x, dtype=np.float32), training=False)
        return (keras.ops.convert_to_numpy(keras.ops.cast(e, "float32")),
                keras.ops.convert_to_numpy(keras.ops.cast(p, "float32")))
    return run_other


_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def embed_fn_for(model):
    """One traced embedding function per loaded model, shared by every view of the app's cached recognizer."""
    with _LOCK:
        fn = _FNS.get(model)
        if fn is None:
            fn = _FNS[model] = make_embed_fn(model)
    return fn
