"""Evaluation: accuracy, loss, per-class precision/recall/F1, confusion matrix, timing."""

from __future__ import annotations

import time

import numpy as np

from fer_core.data.emotions import canonical


def to_model_input(images: np.ndarray) -> np.ndarray:
    """(N, S, S) uint8 -> (N, S, S, 1) float32 pixels 0..255, the input every model takes."""
    x = images.astype(np.float32, copy=False)
    return x[..., None] if x.ndim == 3 else x


def tta_views(x: np.ndarray) -> list[np.ndarray]:
    """Ten-crop style test-time views: 5 crops (corners + centre, 90% side, resized back) x flip."""
    import cv2
    s = x.shape[1]
    c = int(round(s * 0.9))
    offsets = [(0, 0), (0, s - c), (s - c, 0), (s - c, s - c), ((s - c) // 2, (s - c) // 2)]
    views = []
    for oy, ox in offsets:
        crop = x[:, oy:oy + c, ox:ox + c, 0]
        resized = np.stack([cv2.resize(im, (s, s), interpolation=cv2.INTER_LINEAR) for im in crop])[..., None]
        views += [resized, resized[:, :, ::-1]]
    return views


def tta_mode(tta: bool | str) -> str:
    """off | flip | crops; True (the old flag) means crops."""
    mode = {True: "crops", False: "off", None: "off"}.get(tta, tta) if not isinstance(tta, str) else tta
    if mode not in ("off", "flip", "crops"):
        raise ValueError(f"unknown test-time augmentation '{tta}'; use off, flip or crops.")
    return mode


def predict_probs(predict_fn, x: np.ndarray, batch_size: int = 256, tta: bool | str = "off") -> np.ndarray:
    """Probabilities for (N, S, S, 1) inputs; with tta, the mean over the plain image and its views:
    flip = its mirror image, crops = its mirror and ten crops (5 positions x flip)."""
    def run(arr):
        out = [np.asarray(predict_fn(arr[i:i + batch_size])) for i in range(0, len(arr), batch_size)]
        return np.concatenate(out) if out else np.zeros((0,))
    mode = tta_mode(tta)
    probs = run(x)
    if mode != "off":
        views = [x[:, :, ::-1]] + (tta_views(x) if mode == "crops" else [])
        probs = (probs + sum(run(v) for v in views)) / (1 + len(views))
    return probs


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict:
    k = len(class_names)
    y_pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    per_class = {}
    f1s = []
    for i, name in enumerate(class_names):
        tp = cm[i, i]
        fp = cm[:, i].sum() - tp
        fn = cm[i, :].sum() - tp
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        support = int(cm[i, :].sum())
        per_class[name] = {"precision": float(p), "recall": float(r), "f1": float(f1), "support": support}
        if support:
            f1s.append(f1)
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y_true)), y_true], eps, 1)))) if len(y_true) else None
    return {
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else None,
        "loss": loss,
        "macro_f1": float(np.mean(f1s)) if f1s else None,
        "num_samples": int(len(y_true)),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "class_order": list(class_names),
    }


def evaluate_arrays(predict_fn, images: np.ndarray, labels: np.ndarray, class_names: list[str],
                    tta: bool | str = "off", batch_size: int = 256) -> tuple[dict, np.ndarray]:
    x = to_model_input(images)
    t0 = time.perf_counter()
    probs = predict_probs(predict_fn, x, batch_size, tta)
    seconds = time.perf_counter() - t0
    m = classification_metrics(labels, probs, class_names)
    m["eval_seconds"] = round(seconds, 3)
    m["ms_per_image"] = round(1000 * seconds / max(len(x), 1), 4)
    m["tta"] = tta_mode(tta)
    return m, probs


def match_labels(model_classes: list[str], data_classes: list[str]) -> tuple[dict, list[str]]:
    """Map data class index -> model class index by emotion name; return also the data classes the model lacks."""
    model_canon = [canonical(c) for c in model_classes]
    mapping, missing = {}, []
    for j, name in enumerate(data_classes):
        c = canonical(name)
        if c in model_canon:
            mapping[j] = model_canon.index(c)
        else:
            missing.append(name)
    return mapping, missing
