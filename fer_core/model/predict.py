"""Fast `x -> probabilities` functions for numpy batches: a traced Keras call, or a LiteRT interpreter.

Per-frame work avoids `model.predict` (~60 ms of fixed overhead per call); these are what the
recognizer, the evaluation and the export check call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_core.model.kerasenv import backend, keras

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def make_predict_fn(model):
    """A fast `x -> probabilities` for numpy batches (N, S, S, 1) float32."""
    if backend() == "tensorflow":
        import tensorflow as tf
        spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
        fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        return lambda x: fn(np.asarray(x, dtype=np.float32)).numpy()
    if backend() == "jax":
        import jax
        fn = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]

        def predict(x):
            x = np.asarray(x, dtype=np.float32)
            n = len(x)
            bucket = next((b for b in BATCH_BUCKETS if b >= n), n)   # few shapes -> few compilations
            if bucket > n:
                x = np.concatenate([x, np.zeros((bucket - n, *x.shape[1:]), np.float32)])
            return np.asarray(fn(tv, ntv, x))[:n]
        return predict
    return lambda x: keras.ops.convert_to_numpy(model(np.asarray(x, dtype=np.float32), training=False))


def litert_interpreter(content: bytes, num_threads: int = 2):
    """A LiteRT interpreter for a .tflite model's bytes: ai-edge-litert where installed, else TensorFlow's."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import warnings

        import tensorflow as tf
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_content=content, num_threads=num_threads)


def make_tflite_fn(path: Path, num_threads: int = 2):
    """A LiteRT model as `x -> probabilities`.

    Resizing an interpreter's input re-plans all its buffers (milliseconds), which a webcam
    with 1, 2, 3 faces would pay on every change. So a batch is padded up to the next size in
    BATCH_BUCKETS and each bucket keeps its own interpreter, made on first use: at most
    len(BATCH_BUCKETS) of them, so memory stays bounded however many frames go through.
    """
    content = Path(path).read_bytes()       # read once; the file may be replaced later
    interpreters: dict[int, tuple] = {}

    def interpreter_for(n: int):
        if n not in interpreters:
            interp = litert_interpreter(content, num_threads)
            inp = interp.get_input_details()[0]
            interp.resize_tensor_input(inp["index"], [n, *inp["shape"][1:]])
            interp.allocate_tensors()
            interpreters[n] = (interp, interp.get_input_details()[0], interp.get_output_details()[0])
        return interpreters[n]

    def run(x: np.ndarray) -> np.ndarray:
        n = len(x)
        bucket = next(b for b in BATCH_BUCKETS if b >= n)
        if bucket > n:
            x = np.concatenate([x, np.zeros((bucket - n, *x.shape[1:]), np.float32)])
        interp, inp, out = interpreter_for(bucket)
        if inp["dtype"] == np.int8:          # fully-int8 inputs (our exports keep float32 inputs)
            scale, zero = inp["quantization"]
            x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        y = interp.get_tensor(out["index"])
        if out["dtype"] == np.int8:
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return y[:n].copy()

    def predict(x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        top = BATCH_BUCKETS[-1]
        if len(x) == 0:
            return np.zeros((0, *interpreter_for(1)[2]["shape"][1:]), np.float32)
        return np.concatenate([run(x[i:i + top]) for i in range(0, len(x), top)])
    return predict
