"""Export a run's model to LiteRT (`model.tflite`) and decide whether the app should use it.

`python -m fer_core export RUN_DIR --format tflite [--quantize none|float16|int8] [--data PATH]`

Steps, in order:
  1. load model.keras (safe mode) and make a float32 copy: runs trained with
     --precision mixed_bfloat16 carry a bf16 compute policy in every layer, which the
     LiteRT converter would bake in as casts; the copy has the same weights in float32;
  2. convert the copy's inference function, input (None, S, S, 1) float32 pixels 0..255,
     with tf.lite.TFLiteConverter (int8: calibrated on training images of the run's split);
  3. evaluate both the Keras model (as the app runs it) and the LiteRT model on the test images
     (FER2013: the PrivateTest files) and time them, batched and one face at a time;
  4. write model.tflite and export.json next to the run. export.json says `use_in_app: true`
     only if LiteRT loses at most 0.5 accuracy points AND is faster one face at a time
     (the webcam's case) without being slower batched; EmotionRecognizer.from_run reads it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from fer_core.errors import UserError
from fer_core.model.kerasenv import backend, keras
from fer_core.runs import store

MAX_ACCURACY_DROP_POINTS = 0.5     # LiteRT may lose at most this many accuracy points to be used
CALIBRATION_IMAGES = 500           # int8: training images fed to the converter's calibration
QUANTIZE_CHOICES = ("none", "float16", "int8")


class ExportError(UserError, RuntimeError):
    """The export could not be made; the message says why and what to do."""


# ---------------------------------------------------------------- float32 copy
def _float32_config(obj):
    """A model config with every bfloat16 / mixed_bfloat16 dtype rewritten to float32."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == "dtype" and v in ("bfloat16", "mixed_bfloat16"):
                v = "float32"
            elif (k == "dtype" and isinstance(v, dict) and v.get("class_name") == "DTypePolicy"
                  and v.get("config", {}).get("name") in ("bfloat16", "mixed_bfloat16")):
                v = {**v, "config": {**v["config"], "name": "float32"}}
            out[k] = _float32_config(v)
        return out
    if isinstance(obj, list):
        return [_float32_config(v) for v in obj]
    return obj


def uses_bfloat16(model) -> bool:
    return "bfloat16" in json.dumps(model.get_config())


def float32_copy(model):
    """The same network computing in float32 (weights copied exactly; they are stored in float32 anyway)."""
    from fer_core.model import layers  # noqa: F401  (registers our custom layers for from_config)
    if not uses_bfloat16(model):
        return model
    copy = keras.Model.from_config(_float32_config(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy


# ---------------------------------------------------------------- conversion
def convert_to_tflite(model, quantize: str = "none", calibration: np.ndarray | None = None) -> bytes:
    """Float32 Keras model -> LiteRT flatbuffer bytes. calibration: (N, S, S, 1) float32 pixels, for int8."""
    if quantize not in QUANTIZE_CHOICES:
        raise ExportError(f"unknown quantization '{quantize}'; use one of {', '.join(QUANTIZE_CHOICES)}.")
    if backend() != "tensorflow":
        raise ExportError(f"LiteRT export needs the TensorFlow backend (this process uses {backend()}); "
                          "run it with KERAS_BACKEND=tensorflow.")
    import tensorflow as tf
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="pixels")
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    # The weights frozen into the function first: left to the converter, they stayed variables whenever the
    # model has no augmentation layers (no constant folding, no XNNPACK, int8 failing at READ_VARIABLE).
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    concrete = convert_variables_to_constants_v2(fn.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        if calibration is None or len(calibration) == 0:
            raise ExportError("int8 quantization needs calibration images; pass --data with the training set.")

        def representative():
            for i in range(len(calibration)):
                yield [calibration[i:i + 1].astype(np.float32)]
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        # int8 inside; the input (pixels) and output (probabilities) stay float32 for the caller
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    try:
        return converter.convert()
    except Exception as e:  # the converter's messages are long MLIR dumps: keep the first line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"the LiteRT converter failed ({quantize}): {first[:300]}") from None


# ---------------------------------------------------------------- evaluation data
def _evaluation_data(run_dir: Path, info: dict, data: str | None):
    """(test images, labels mapped to the model's classes, calibration images, description).

    The test and calibration (training) faces are the run's parts as report.evaluate.part_indices decides
    them: the one rule for which faces are a run's test set.
    """
    from fer_core.report.evaluate import load_run_data, part_indices
    from fer_core.report.evaluation import match_labels, to_model_input
    data_path = data or (info.get("config", {}) or {}).get("data")
    if data_path and not Path(data_path).exists():
        raise ExportError(f"dataset not found: {data_path}. Pass --data with the dataset the model was trained on.")
    try:
        ds, same_data = load_run_data(run_dir, info, data)
    except UserError as e:
        raise ExportError(f"{e} Pass --data PATH (e.g. ../shared/data/fer2013) for the accuracy check.") from None
    test_idx, where = part_indices(run_dir, info, ds, "test", same_data)
    train_idx, _ = part_indices(run_dir, info, ds, "train", same_data)
    classes = info.get("class_names") or ds.class_names
    mapping, _ = match_labels(classes, ds.class_names)
    keep = np.array([i for i in test_idx if int(ds.labels[i]) in mapping], dtype=np.int64)
    if len(keep) == 0:
        raise ExportError(f"{data_path} has no test images of the model's classes ({', '.join(classes)}); "
                          "pass --data with the dataset the model was trained on.")
    y = np.array([mapping[int(ds.labels[i])] for i in keep], dtype=np.int64)
    rng = np.random.default_rng(0)
    calib_idx = rng.permutation(train_idx)[:CALIBRATION_IMAGES] if len(train_idx) else keep[:CALIBRATION_IMAGES]
    return (to_model_input(ds.images[keep]), y, to_model_input(ds.images[calib_idx]),
            f"{data_path}: {where}, {len(keep)} images")


def time_per_image(predict_fn, x: np.ndarray, batch: int, min_seconds: float = 1.0, max_calls: int = 400) -> float:
    """Median milliseconds per image of predict_fn on batches of `batch` images (after one warm-up call)."""
    xb = x[:batch] if len(x) >= batch else np.resize(x, (batch, *x.shape[1:]))
    predict_fn(xb)
    times = []
    t_end = time.perf_counter() + min_seconds
    while (time.perf_counter() < t_end or len(times) < 5) and len(times) < max_calls:
        t0 = time.perf_counter()
        predict_fn(xb)
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times)) / batch


def _accuracy(predict_fn, x, y, batch: int = 256) -> float:
    probs = np.concatenate([np.asarray(predict_fn(x[i:i + batch])) for i in range(0, len(x), batch)])
    return float((probs.argmax(1) == y).mean())


# ---------------------------------------------------------------- the command
def export_tflite(run_dir, quantize: str = "none", data: str | None = None, max_test_images: int = 0) -> dict:
    """Write RUN_DIR/model.tflite and RUN_DIR/export.json; return export.json's content.

    max_test_images > 0 evaluates on that many test images only (tests; the CLI uses all).
    """
    from fer_core.model.predict import make_predict_fn, make_tflite_fn
    from fer_core.model.saving import load_model_safe
    run_dir = Path(run_dir)
    if quantize not in QUANTIZE_CHOICES:
        raise ExportError(f"unknown quantization '{quantize}'; use one of {', '.join(QUANTIZE_CHOICES)}.")
    if not store.model_path(run_dir).is_file():
        raise ExportError(f"{run_dir} has no model.keras; export a completed run (python -m fer_core runs).")
    info = store.read_json(store.run_json_path(run_dir), {}) or {}
    model = load_model_safe(store.model_path(run_dir))
    x_test, y_test, x_calib, where = _evaluation_data(run_dir, info, data)
    if max_test_images:
        x_test, y_test = x_test[:max_test_images], y_test[:max_test_images]

    f32 = float32_copy(model)
    flat = convert_to_tflite(f32, quantize, x_calib if quantize == "int8" else None)
    tmp = run_dir / ".model.tflite.tmp"
    tmp.write_bytes(flat)

    keras_fn = make_predict_fn(model)          # what the app runs without the export
    tflite_fn = make_tflite_fn(tmp)
    acc_keras = _accuracy(keras_fn, x_test, y_test)
    acc_tflite = _accuracy(tflite_fn, x_test, y_test)
    delta = 100 * (acc_tflite - acc_keras)
    ms = {}
    for name, fn in (("keras", keras_fn), ("tflite", tflite_fn)):
        ms[name] = {"batch_1": round(time_per_image(fn, x_test, 1), 4),
                    "batch_256": round(time_per_image(fn, x_test, 256), 4)}
    faster = (ms["tflite"]["batch_1"] < ms["keras"]["batch_1"]
              and ms["tflite"]["batch_256"] <= ms["keras"]["batch_256"] * 1.05)
    within = delta >= -MAX_ACCURACY_DROP_POINTS
    result = {
        "format": "tflite",
        "quantize": quantize,
        "model_precision": "mixed_bfloat16" if uses_bfloat16(model) else "float32",
        "evaluated_on": where,
        "num_test_images": int(len(y_test)),
        "accuracy_keras": round(acc_keras, 5),
        "accuracy_tflite": round(acc_tflite, 5),
        "delta_points": round(delta, 3),
        "ms_per_image": ms,
        "tflite_bytes": len(flat),
        "use_in_app": bool(within and faster),
        "reason": ("within {:.1f} points and faster".format(MAX_ACCURACY_DROP_POINTS) if within and faster else
                   "; ".join(r for r in (
                       None if within else f"accuracy drops {-delta:.2f} points (limit {MAX_ACCURACY_DROP_POINTS})",
                       None if faster else "not faster than the Keras model on this machine") if r)),
        "created": store.now_iso(),
    }
    import os
    os.replace(tmp, store.tflite_path(run_dir))
    store.write_json_atomic(store.export_json_path(run_dir), result)
    return result
