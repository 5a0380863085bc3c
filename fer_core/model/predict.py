"""Fast `x -> probabilities` functions for numpy batches: a traced Keras call, or a LiteRT interpreter.

Per-frame work avoids `model.predict` (~60 ms of fixed overhead per call); these are what the
recognizer, the evaluation and the export check call.
"""

from __future__ import annotations

import os
import queue
import threading
from contextlib import contextmanager
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


def allocated_interpreter(content: bytes, num_threads: int = 2):
    """A LiteRT interpreter ready to run at the model's own input shape."""
    interp = litert_interpreter(content, num_threads)
    interp.allocate_tensors()
    return interp


class InterpreterPool:
    """Interpreters of one model at one batch size, lent to one caller at a time.

    A LiteRT interpreter holds its input and output buffers, so two threads in one interpreter
    crash it or read each other's answer, and the app's cached recognizer is called from every
    session's thread. Each caller borrows an idle interpreter; a new one is made only when all are
    busy, up to `limit` (then callers wait), so the number made is the peak number of callers at once
    and memory stays bounded. limit=1 is the same as one interpreter behind a lock.
    """

    def __init__(self, make, limit: int | None = None):
        self._make, self._limit = make, limit
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._lock = threading.Lock()
        self.made = 0

    @contextmanager
    def borrow(self):
        with self._lock:
            try:
                item = self._idle.get_nowait()
            except queue.Empty:
                item = None
                new = self._limit is None or self.made < self._limit
                self.made += new
        if item is None:
            item = self._make() if new else self._idle.get()      # all busy and at the limit: wait
        try:
            yield item
        finally:
            self._idle.put(item)


class PerThread:
    """One object per thread, made on the thread's first use; attributes are the thread's own object's.

    For objects used in several calls that must not interleave (set input, invoke, read output),
    where a lock around the whole sequence would have to live in the caller.
    """

    def __init__(self, make):
        object.__setattr__(self, "_make", make)
        object.__setattr__(self, "_local", threading.local())

    def __getattr__(self, name):
        local = self._local
        if not hasattr(local, "obj"):
            local.obj = self._make()
        return getattr(local.obj, name)


def make_tflite_fn(path: Path, num_threads: int = 2, max_interpreters: int | None = None):
    """A LiteRT model as `x -> probabilities`, safe to call from many threads at once.

    Resizing an interpreter's input re-plans all its buffers (milliseconds), which a webcam
    with 1, 2, 3 faces would pay on every change. So a batch is padded up to the next size in
    BATCH_BUCKETS and each bucket keeps its own interpreters (an InterpreterPool), made on first use.
    max_interpreters caps each bucket's pool. The default runs as many at once as the cores can serve
    at num_threads each: more only share the cores and cost memory (bench.throughput compares them);
    on 2 cores that is one interpreter behind a lock.
    """
    content = Path(path).read_bytes()       # read once; the file may be replaced later
    if max_interpreters is None:
        max_interpreters = max(1, (os.cpu_count() or 1) // max(1, num_threads))
    pools: dict[int, InterpreterPool] = {}
    pools_lock = threading.Lock()

    def make(n: int):
        interp = litert_interpreter(content, num_threads)
        inp = interp.get_input_details()[0]
        interp.resize_tensor_input(inp["index"], [n, *inp["shape"][1:]])
        interp.allocate_tensors()
        return interp, interp.get_input_details()[0], interp.get_output_details()[0]

    def pool_for(n: int) -> InterpreterPool:
        with pools_lock:
            if n not in pools:
                pools[n] = InterpreterPool(lambda: make(n), max_interpreters)
            return pools[n]

    def run(x: np.ndarray) -> np.ndarray:
        n = len(x)
        bucket = next(b for b in BATCH_BUCKETS if b >= n)
        if bucket > n:
            x = np.concatenate([x, np.zeros((bucket - n, *x.shape[1:]), np.float32)])
        with pool_for(bucket).borrow() as (interp, inp, out):
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
            with pool_for(1).borrow() as (_, _, out):
                return np.zeros((0, *out["shape"][1:]), np.float32)
        return np.concatenate([run(x[i:i + top]) for i in range(0, len(x), top)])
    return predict
