"""A stored run's model, loaded one way for everyone who needs it (the recogniser, evaluate, calibrate,
k-fold's ensemble): it sits below serve/, report/ and train/ so none of them climbs up to another to get one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fer_core.runs import store


@dataclass
class RunModel:
    """A run's best model (safe mode), its probabilities from the Keras model or, engine 'litert', from its
    model.tflite; its class names; its fitted temperature (None without one) and logit adjustment (per-class
    offsets, None without one)."""
    model: Any
    predict_fn: Callable
    class_names: list[str]
    temperature: float | None
    engine: str = "keras"
    class_shift: list[float] | None = None

    @classmethod
    def load(cls, run_dir, engine: str = "keras") -> "RunModel":
        """engine 'keras', 'litert' (model.tflite must exist) or 'app' (the engine the app runs: LiteRT where
        export.json marks the export use_in_app, else Keras)."""
        from fer_core.model.predict import make_predict_fn, make_tflite_fn
        from fer_core.model.saving import load_model_safe
        run_dir = Path(run_dir)
        path = store.model_path(run_dir)
        if not path.is_file():
            raise FileNotFoundError(f"{run_dir} has no model.keras (the run may have failed before its first epoch)")
        tflite = store.tflite_path(run_dir)
        if engine == "litert" and not tflite.is_file():
            raise FileNotFoundError(f"{run_dir} has no model.tflite; export it first: "
                                    f"python -m fer_core export {run_dir}")
        if engine == "app":
            in_app = (store.read_json(store.export_json_path(run_dir), {}) or {}).get("use_in_app", False)
            engine = "litert" if tflite.is_file() and in_app else "keras"
        model = load_model_safe(path)
        fn = make_tflite_fn(tflite) if engine == "litert" else make_predict_fn(model)
        shift = store.read_class_shift(run_dir)
        classes = run_class_names(run_dir, model)
        return cls(model, fn, classes, store.read_temperature(run_dir), engine,
                   shift if shift and len(shift) == len(classes) else None)


def run_class_names(run_dir, model) -> list[str]:
    """The run's class names as training recorded them; numbered names for a model with no record."""
    info = store.read_json(store.run_json_path(run_dir), {}) or {}
    metrics = store.read_json(store.metrics_path(run_dir), {}) or {}
    classes = info.get("class_names") or metrics.get("class_names")
    return list(classes) if classes else [f"class_{i}" for i in range(model.output_shape[-1])]
