"""Grad-CAM: which parts of a face made the model choose its emotion.

Every model here is  input -> 'augmentation' (identity at inference) -> 'features' -> 'head'.
We take the last convolutional feature map inside 'features' that is still at least 6x6
(late maps know most about the class; a 3x3 one cannot say which part of the face), get the gradient of the
chosen class's probability with respect to it, and weight each channel by its mean gradient (Selvaraju et al., 2017).

Uses tf.GradientTape, so it needs the TensorFlow backend (the app's default).
"""

from __future__ import annotations

import cv2
import numpy as np

from fer_core.errors import UserError
from fer_core.model.kerasenv import backend, keras

# Layers that do not make a new feature map; the map *before* them is more detailed.
_SKIP = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D, keras.layers.Dropout,
         keras.layers.SpatialDropout2D)


class GradCamError(UserError):
    """The model cannot be explained this way; the message says why."""


def _layer_output_in(layer, model):
    """The layer's output tensor *inside* `model`'s graph.

    For a plain layer `layer.output` is that tensor; for a nested sub-model (an ImageNet base)
    `layer.output` is the sub-model's own graph output, not connected to `model`'s input,
    so we take the output of the call node that lives in `model`.
    """
    for node in reversed(getattr(layer, "_inbound_nodes", [])):
        tensors = node.output_tensors
        if tensors:
            try:
                keras.Model(model.input, tensors[0])
                return tensors[0]
            except ValueError:
                continue
    return layer.output


MIN_MAP_SIDE = 6   # a coarser map (3x3 for a 24-px input) can only paint one blob over the whole face


def last_conv_layer(features) -> keras.layers.Layer:
    """The last layer of `features` that outputs a (N, H, W, C) map of at least MIN_MAP_SIDE cells a side
    and is not pooling/dropout (the last such layer of any size when none is that fine)."""
    maps = []
    for layer in features.layers:
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        if shape is None or len(shape) != 4 or isinstance(layer, _SKIP) or isinstance(layer, keras.layers.InputLayer):
            continue
        if layer.name in ("preprocess", "gray_to_rgb", "resize"):   # still pixels, not features
            continue
        maps.append((layer, shape[1]))
    if not maps:
        raise GradCamError("this model has no convolutional feature map to explain.")
    fine = [layer for layer, side in maps if side is not None and side >= MIN_MAP_SIDE]
    return fine[-1] if fine else maps[-1][0]


class GradCam:
    """Built once per model (building the gradient model costs ~0.1 s); call `heatmaps` per batch."""

    def __init__(self, model):
        if backend() != "tensorflow":
            raise GradCamError(f"Grad-CAM needs the TensorFlow backend (this process uses {backend()}).")
        try:
            self.features = model.get_layer("features")
            self.head = model.get_layer("head")
        except ValueError:
            raise GradCamError("this model has no 'features' and 'head' parts (it was not trained by this app), "
                               "so it cannot be explained with Grad-CAM.") from None
        self.conv_layer = last_conv_layer(self.features)
        conv_out = _layer_output_in(self.conv_layer, self.features)
        self._grad_model = keras.Model(self.features.input, [conv_out, self.features.output])
        self.input_size = int(model.input_shape[1])

    def heatmaps(self, faces: np.ndarray, class_indices=None) -> tuple[np.ndarray, np.ndarray]:
        """faces (N, S, S, 1) pixels 0-255 -> (heatmaps (N, S, S) in 0..1, probabilities (N, classes)).

        class_indices: the class to explain per face; default the predicted one.
        """
        import tensorflow as tf
        x = tf.convert_to_tensor(np.asarray(faces, np.float32))
        with tf.GradientTape() as tape:
            tape.watch(x)     # so the tape records the graph even when the weights are frozen
            conv, feats = self._grad_model(x, training=False)
            probs = self.head(feats, training=False)
            idx = tf.argmax(probs, axis=-1) if class_indices is None else tf.constant(class_indices, tf.int64)
            score = tf.reduce_sum(tf.gather(probs, idx, axis=1, batch_dims=1))
        grads = tape.gradient(score, conv)                        # (N, h, w, C)
        # float32: a mixed_bfloat16 model's maps are bfloat16, which NumPy/OpenCV cannot resize
        conv, grads = tf.cast(conv, tf.float32), tf.cast(grads, tf.float32)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * conv, axis=-1)).numpy()   # (N, h, w)
        s = self.input_size
        out = np.zeros((len(cam), s, s), np.float32)
        for i, c in enumerate(cam):
            peak = float(c.max())
            if peak > 0:    # all-zero map: nothing pushed towards the class; leave it blank
                out[i] = cv2.resize(c / peak, (s, s), interpolation=cv2.INTER_CUBIC).clip(0, 1)
        return out, np.asarray(probs, np.float32)


def overlay(face_bgr: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """A face crop (BGR or gray, any size) with the heatmap blended on top as a JET colour map."""
    if face_bgr.ndim == 2:
        face_bgr = cv2.cvtColor(face_bgr, cv2.COLOR_GRAY2BGR)
    h, w = face_bgr.shape[:2]
    heat = cv2.resize(heatmap.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    colored = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(colored, alpha, face_bgr, 1 - alpha, 0)
