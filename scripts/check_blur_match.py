"""Is the default model's inference blur the whole gap between the shared FER2013 copy's parts?

    python scripts/check_blur_match.py [RUN_DIR] [--data ../shared/data/fer2013]

The copy's Training_* faces are blurred and then JPEG-saved; its PublicTest faces are sharp JPEGs.
The model blurs sharp faces at inference (MatchSharpness). This prints PublicTest accuracy for that
blur, for the same Gaussian applied outside the model, and for the blur followed by a JPEG round trip
at several qualities (the training files were JPEG-saved after their blur), plus each variant's mean
pixel gradient beside the training faces'. If a JPEG step were missing, one of those rows would score
higher than the model's own blur. Validation part only (never PrivateTest): a diagnosis, not a selection.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer_core.datasets import load_dataset  # noqa: E402
from fer_core.defaults import DEFAULT_RUN  # noqa: E402
from fer_core.layers import match_sharpness_layer  # noqa: E402
from fer_core.sharpness import mean_gradient  # noqa: E402
from fer_core.training import load_model_safe  # noqa: E402


def jpeg_round_trip(face: np.ndarray, quality: int) -> np.ndarray:
    _, buf = cv2.imencode(".jpg", np.clip(face, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", nargs="?", default=str(DEFAULT_RUN))
    p.add_argument("--data", default="../shared/data/fer2013")
    a = p.parse_args()
    ds = load_dataset(a.data)              # image folders or fer2013.csv; val = PublicTest
    if ds.splits is None or not (ds.splits == "val").any():
        sys.exit(f"{a.data}: no validation part (PublicTest); this check needs FER2013's official split")
    x = ds.images[ds.splits == "val"].astype(np.float32)
    y = ds.labels[ds.splits == "val"]
    model = load_model_safe(Path(a.run) / "model.keras")
    blur = match_sharpness_layer(model)
    if blur is None:
        sys.exit(f"{a.run}: this model has no MatchSharpness layer, nothing to check")
    own_sigma = float(np.asarray(blur.sigma))

    def accuracy(faces: np.ndarray, sigma: float) -> float:
        blur.sigma.assign(sigma)
        probs = model.predict(faces[..., None], batch_size=256, verbose=0)
        return float((probs.argmax(1) == y).mean())

    print(f"{a.run}: PublicTest {len(x)} faces; mean gradient (1,000 faces) of the training part "
          f"{mean_gradient(ds.images[ds.splits == 'train']):.2f}, of PublicTest {mean_gradient(x):.2f}")
    print(f"the model's own blur, sigma {own_sigma:g}: accuracy {accuracy(x, own_sigma):.4f}")
    for sigma in (own_sigma - 0.5, own_sigma, own_sigma + 0.5):
        blurred = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in x])
        print(f"Gaussian {sigma:g} outside the model: gradient {mean_gradient(blurred):.2f}, "
              f"accuracy {accuracy(blurred, 0.0):.4f}")
        for q in (50, 75, 90, 95):
            jpeg = np.stack([jpeg_round_trip(f, q) for f in blurred]).astype(np.float32)
            print(f"  then JPEG quality {q}: gradient {mean_gradient(jpeg):.2f}, accuracy {accuracy(jpeg, 0.0):.4f}")
    blur.sigma.assign(own_sigma)


if __name__ == "__main__":
    main()
