"""The backbone registry: every backbone builds and trains, weights from a file, ImageNet offline."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import run_cli

from fer_core.model.backbones import (
    BACKBONES,
    ModelConfigError,
    WeightsError,
    base_layers,
    build_features,
    build_model,
    freeze_base,
    get_backbone,
    resolve_input_size,
    shorten_batchnorm_memory,
    unfreeze_top,
)
from fer_core.model.kerasenv import keras
from fer_core.model.saving import load_model_safe

pytestmark = pytest.mark.slow

K = 3


def _batch(n=4, size=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, size, size, 1)).astype("float32")
    y = keras.utils.to_categorical(np.arange(n) % K, K).astype("float32")
    return x, y


@pytest.mark.parametrize("name", list(BACKBONES))
def test_every_backbone_builds_and_trains_one_step(name):
    model, features, head = build_model(name, K, image_size=48, input_size=32, weights="none", augment=True, seed=1)
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, K)
    assert [l.name for l in model.layers[-2:]] == ["features", "head"]
    assert model.get_layer("augmentation") is not None
    x, y = _batch()
    # eager: one real optimizer step without paying for graph tracing of the big nets
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", run_eagerly=True)
    before = [np.array(w) for w in features.trainable_weights]
    head_before = [np.array(w) for w in head.trainable_weights]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(float(np.asarray(loss).ravel()[0]))
    assert any(not np.array_equal(b, np.array(w)) for b, w in zip(before, features.trainable_weights))
    assert any(not np.array_equal(b, np.array(w)) for b, w in zip(head_before, head.trainable_weights))
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (4, K) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_a_built_model_round_trips_in_safe_mode(tmp_path):
    # (an ImageNet backbone's round trip is covered by the offline-weights test below)
    model, _, _ = build_model("fer_vgg", K, image_size=48, input_size=32, weights="none", augment=True, seed=2)
    model.save(tmp_path / "m.keras")
    loaded = load_model_safe(tmp_path / "m.keras")
    x, _ = _batch(seed=3)
    assert np.allclose(np.asarray(model(x, training=False)), np.asarray(loaded(x, training=False)), atol=1e-5)


@pytest.mark.parametrize("name, module", [("vgg16", "vgg16"), ("resnet50v2", "resnet_v2"),
                                          ("mobilenetv2", "mobilenet_v2"), ("efficientnetb0", "efficientnet")])
def test_preprocessing_inside_the_model_matches_keras_applications(name, module):
    """The gray pixels reach the ImageNet base exactly as keras.applications' preprocess_input would give them."""
    features = build_features(name, 48, 48, None)
    to_base = keras.Model(features.input, features.get_layer("preprocess").output)
    x, _ = _batch(n=2, seed=4)
    rgb = np.repeat(x, 3, axis=-1)
    want = getattr(keras.applications, module).preprocess_input(rgb.copy())
    assert np.allclose(np.asarray(to_base(x)), want, atol=1e-4)


@pytest.mark.parametrize("name", ["mobilenetv2", "fer_vgg"])
def test_fine_tuning_unfreezes_the_top_of_the_base_only(name):
    _, features, _ = build_model(name, K, image_size=48, input_size=32, weights="none", augment=False)
    blocks = base_layers(features)
    assert len(blocks) > 10, "the base's own layers, not one opaque block"
    freeze_base(features)
    assert features.trainable_weights == []
    n = unfreeze_top(features, 10)
    assert n > 0
    top = blocks[-10:]
    bn = keras.layers.BatchNormalization
    trainable = {id(l) for l in blocks if l.trainable and l.weights}
    assert trainable == {id(l) for l in top if l.weights and not isinstance(l, bn)}
    assert 0 < len(features.trainable_weights) < len(features.weights)
    with pytest.raises(ModelConfigError, match="beyond the model"):
        unfreeze_top(features, len(blocks) + 1)
    unfreeze_top(features, -1)
    assert all(l.trainable for l in blocks if l.weights and not isinstance(l, bn))


# ---------------------------------------------------------------- --weights PATH
def test_weights_path_for_an_imagenet_backbone(tmp_path):
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    saved = base.get_weights()
    path = tmp_path / "mine.weights.h5"
    base.save_weights(path)
    _, features, _ = build_model("mobilenetv2", K, image_size=48, input_size=32, weights=str(path), seed=99)
    got = features.get_layer("base").get_weights()
    assert len(got) == len(saved) and all(np.array_equal(a, b) for a, b in zip(got, saved))
    _, fresh, _ = build_model("mobilenetv2", K, image_size=48, input_size=32, weights="none", seed=99)
    assert not all(np.array_equal(a, b) for a, b in zip(fresh.get_layer("base").get_weights(), saved))


def test_weights_path_for_our_own_backbone(tmp_path):
    features = build_features("custom_cnn", 48, 48, None)
    path = tmp_path / "cnn.weights.h5"
    features.save_weights(path)
    _, loaded, _ = build_model("custom_cnn", K, image_size=48, input_size=48, weights=str(path), seed=123)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), features.get_weights()))


def test_impossible_weights_and_sizes_are_refused(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        build_model("vgg16", K, image_size=48, input_size=32, weights=str(tmp_path / "missing.h5"))
    with pytest.raises(ModelConfigError, match="no ImageNet weights"):
        build_model("custom_cnn", K, weights="imagenet")
    with pytest.raises(ModelConfigError, match="96"):
        build_model("mobilenetv2", K, image_size=48, input_size=32, weights="imagenet")
    with pytest.raises(ModelConfigError, match="too small"):
        resolve_input_size("vgg16", 16)
    with pytest.raises(ModelConfigError, match="choose one of"):
        get_backbone("alexnet")
    assert resolve_input_size("fer_vgg", 0) == 48


# ---------------------------------------------------------------- ImageNet offline
def _tiny_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for c in ("happy", "sad"):
        (root / c).mkdir(parents=True)
        for j in range(12):
            cv2.imwrite(str(root / c / f"{j}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
    return root


@pytest.mark.timeout(300)
def test_imagenet_offline_fails_fast_naming_the_file_then_works_once_placed(tmp_path):
    keras_home = tmp_path / "keras_home"
    data = _tiny_folder(tmp_path / "data")
    dead = "http://127.0.0.1:9"   # nothing listens there: every download fails at once, with or without internet
    env = {"KERAS_HOME": str(keras_home), "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead,
           "https_proxy": dead, "NO_PROXY": "", "no_proxy": ""}
    args = ["train", "--data", data, "--backbone", "mobilenetv2", "--weights", "imagenet", "--input-size", "96",
            "--epochs", "1", "--augment", "off", "--runs-dir", tmp_path / "runs"]
    t0 = time.time()
    r = run_cli(*args, env=env, timeout=180)
    assert time.time() - t0 < 150
    assert r.returncode != 0
    expected = keras_home / "models" / get_backbone("mobilenetv2").weights_file.format(size=96)
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "Traceback" not in r.stderr
    assert expected.name in last and str(expected.parent) in last
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5" in last

    # the advice works: place a file of that name there (keras-applications' h5 layout) and train offline
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(96, 96, 3))
    expected.parent.mkdir(parents=True, exist_ok=True)
    base.save(expected)
    r = run_cli(*args, "--max-samples", "16", env=env, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    run_dir = Path(r.stdout.strip().splitlines()[-1])
    model = load_model_safe(run_dir / "model.keras")
    got = model.get_layer("features").get_layer("base").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(got, base.get_weights()))
    assert "caching the base's features" in (run_dir / "train.log").read_text()


def _batchnorm_momenta(model):
    from fer_core.model.backbones import all_layers
    return sorted({round(l.momentum, 4) for l in all_layers(model) if isinstance(l, keras.layers.BatchNormalization)})


def test_short_epochs_shorten_batchnorm_memory_and_long_ones_keep_it():
    """A CK+ fold at batch 32 (25 steps an epoch) gets momentum 0.9; FER2013 at batch 64 (449) keeps 0.99."""
    model, _, _ = build_model("custom_cnn", K, input_size=48, weights="none", augment=False)
    assert shorten_batchnorm_memory(model, 449) is None and _batchnorm_momenta(model) == [0.99]
    assert shorten_batchnorm_memory(model, 25) == 0.9 and _batchnorm_momenta(model) == [0.9]
    mobilenet, _, _ = build_model("mobilenetv2", K, input_size=32, weights="none", augment=False)
    assert 0.999 in _batchnorm_momenta(mobilenet)   # Keras' MobileNetV2 remembers ~1,000 steps
    assert shorten_batchnorm_memory(mobilenet, 449) == 0.99 and _batchnorm_momenta(mobilenet) == [0.99]


@pytest.mark.parametrize("shorten", [False, True])
def test_shortened_momentum_is_what_fit_uses(shorten):
    """The attribute is set after the layer is built: fit must still use it (it traces after we set it)."""
    inp = keras.Input((4,))
    bn = keras.layers.BatchNormalization()
    model = keras.Model(inp, keras.layers.Dense(1)(bn(inp)))
    if shorten:
        assert shorten_batchnorm_memory(model, 20) == 0.9   # 1 - 4/20 = 0.8, floored at 0.9
    model.compile(optimizer="sgd", loss="mse")
    x = np.full((20 * 8, 4), 100.0, dtype="float32")        # 20 steps of batch 8, every feature at 100
    model.fit(x, np.zeros((len(x), 1)), batch_size=8, epochs=1, shuffle=False, verbose=0)
    moving_mean = float(np.asarray(bn.moving_mean)[0])
    expected = 100 * (1 - (0.9 if shorten else 0.99) ** 20)  # 87.8 vs 18.2
    assert moving_mean == pytest.approx(expected, rel=0.02)


def test_fer_vgg_wide_is_wider_than_fer_vgg_and_its_file_stays_under_10_mb(tmp_path):
    """The issue caps the default model's file at 10 MB; the wide variant is the candidate for it."""
    def conv_widths(name):
        _, features, _ = build_model(name, 7, image_size=48, input_size=24, weights="none", augment=False)
        return [l.filters for l in base_layers(features) if isinstance(l, keras.layers.Conv2D)]

    assert conv_widths("fer_vgg") == [32, 32, 64, 64, 128, 128, 256, 256]
    assert conv_widths("fer_vgg_wide") == [48, 48, 96, 96, 192, 192, 256, 256]
    model, _, _ = build_model("fer_vgg_wide", 7, image_size=48, input_size=24, weights="none", augment=True)
    model.save(tmp_path / "wide.keras")
    assert (tmp_path / "wide.keras").stat().st_size < 10_000_000
