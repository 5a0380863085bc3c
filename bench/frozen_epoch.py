"""The frozen-feature cache: `python -m bench.frozen_epoch [--quick] [--fer-samples 2000]`.

A VGG16 backbone (input 48x48, frozen) with the app's head, trained on CK+48 and on a FER2013
subset two ways from identical starting weights, with the training code's own functions:

  recompute: model.fit on images, the frozen backbone runs forward on every batch of every epoch;
  cached:    training.compute_features once, then training.fit_head_on_features on the features.

Printed per dataset: seconds per epoch each way (the 2nd epoch, after tracing), the ratio,
the one-time cost of caching, and whether the results agree (head weights, test predictions).
The head's dropout is 0 here so both ways see the same arithmetic; shuffle is off for the
same reason. ImageNet weights are not needed for timing (random frozen weights do the same work).
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from bench.common import CKPLUS, FER2013, need, parser, print_machine


def image_folder(root, per_class: int, seed: int = 0):
    """(images (N,48,48,1) float32, one-hot labels, class names): up to per_class images per class folder."""
    rng = np.random.default_rng(seed)
    classes = sorted(d.name for d in need(root).iterdir() if d.is_dir())
    xs, ys = [], []
    for k, c in enumerate(classes):
        files = sorted(p for p in (root / c).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        for f in rng.permutation(files)[:per_class]:
            img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            xs.append(cv2.resize(img, (48, 48)) if img.shape != (48, 48) else img)
            ys.append(k)
    order = rng.permutation(len(xs))
    x = np.stack(xs)[order][..., None].astype(np.float32)
    y = np.eye(len(classes), dtype=np.float32)[np.array(ys)[order]]
    return x, y, classes


class EpochTimes:
    def __init__(self):
        from fer_core.model.kerasenv import keras

        class CB(keras.callbacks.Callback):
            def on_epoch_begin(cb, epoch, logs=None):
                cb.t0 = time.perf_counter()

            def on_epoch_end(cb, epoch, logs=None):
                self.seconds.append(time.perf_counter() - cb.t0)
        self.seconds: list[float] = []
        self.callback = CB()


def compare(name: str, x, y, epochs: int, batch: int) -> None:
    from fer_core.model.backbones import build_model, freeze_base
    from fer_core.model.kerasenv import keras
    from fer_core.train.frozen import compute_features, fit_head_on_features
    n_test = max(len(x) // 5, 1)
    x_tr, y_tr, x_te, y_te = x[n_test:], y[n_test:], x[:n_test], y[:n_test]
    keras.utils.set_random_seed(7)
    model, features, head = build_model("vgg16", y.shape[1], image_size=48, input_size=48, weights="none",
                                        dropout=0.0, augment=False)
    freeze_base(features)
    start = [w.copy() for w in head.get_weights()]

    def compile_(m):
        m.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.CategoricalCrossentropy(),
                  metrics=["accuracy"])

    # recompute: the whole model sees images; the frozen backbone runs on every batch
    rec_t = EpochTimes()
    compile_(model)
    model.fit(x_tr, y_tr, epochs=epochs, batch_size=batch, shuffle=False, callbacks=[rec_t.callback], verbose=0)
    w_recompute = [w.copy() for w in head.get_weights()]
    p_recompute = model.predict(x_te, batch_size=256, verbose=0)

    # cached: same start, features once, the head alone trains
    head.set_weights(start)
    t0 = time.perf_counter()
    f_tr = compute_features(features, x_tr, lambda s: None, "train")
    f_te = compute_features(features, x_te, lambda s: None, "test")
    cache_s = time.perf_counter() - t0
    cached_t = EpochTimes()
    compile_(head)
    fit_head_on_features(head, f_tr, y_tr, f_te, y_te, epochs, batch, [cached_t.callback], None, shuffle=False)
    w_cached = head.get_weights()
    p_cached = model.predict(x_te, batch_size=256, verbose=0)

    e_rec, e_cached = rec_t.seconds[-1], cached_t.seconds[-1]
    diff = max(float(np.abs(a - b).max()) for a, b in zip(w_recompute, w_cached))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(w_cached, start))
    agree = float((p_recompute.argmax(1) == p_cached.argmax(1)).mean())

    def acc(p):
        return float((p.argmax(1) == y_te.argmax(1)).mean())

    print(f"{name}: {len(x_tr)} train images, batch {batch}, epoch {epochs} of {epochs}")
    print(f"  recompute epoch {e_rec:.2f} s | cached epoch {e_cached:.3f} s | ratio {e_rec / e_cached:.0f}x "
          f"| caching once {cache_s:.2f} s (repaid after {cache_s / max(e_rec - e_cached, 1e-9):.1f} epochs)")
    print(f"  same result: head weights max |diff| {diff:.2e} (training moved them by up to {moved:.2e}); "
          f"test predictions agree {agree:.1%}; "
          f"test accuracy recompute {acc(p_recompute):.4f} vs cached {acc(p_cached):.4f}")


def main(argv=None) -> int:
    p = parser(__doc__.splitlines()[0], run_dir=False)
    p.add_argument("--fer-samples", type=int, default=2000, help="FER2013 training images in the subset")
    a = p.parse_args(argv)
    print_machine()
    epochs = 2
    ck_per_class = 12 if a.quick else 1000
    fer_per_class = max(1, (100 if a.quick else a.fer_samples) // 7)
    x, y, _ = image_folder(CKPLUS, ck_per_class)
    compare("CK+48", x, y, epochs, 32)
    x, y, _ = image_folder(FER2013 / "train", fer_per_class)
    compare("FER2013 subset", x, y, epochs, 64)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
