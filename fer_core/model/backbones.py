"""The backbone registry and model assembly.

Every model has the same three named parts, so training, feature caching,
transfer between runs and fine-tuning can address them:

    input (S, S, 1) pixels 0..255
      -> "augmentation"  (Keras preprocessing layers; identity at inference)
      -> "features"      (preprocessing + base network + pooling)
      -> "head"          (dense + BatchNorm + dropout + softmax, L2 on dense)
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fer_core.config import MAX_INPUT_SIZE
from fer_core.errors import UserError
from fer_core.model.kerasenv import keras
from fer_core.model.layers import BackbonePreprocess, GrayToRGB

layers = keras.layers


class ModelConfigError(UserError, ValueError):
    """An impossible model option; the message says why and what would work."""


class WeightsError(UserError, RuntimeError):
    """Pre-trained weights could not be loaded; the message says what to do."""


@dataclass(frozen=True)
class Backbone:
    name: str
    default_size: int
    min_size: int
    preprocess: str           # BackbonePreprocess mode
    pooling: str              # "avg" or "flatten"
    imagenet: bool            # has keras.applications ImageNet weights
    weights_file: str = ""    # name of the no-top ImageNet file in ~/.keras/models/
    build: Callable | None = None   # (x, input_size, weights) -> feature map


BACKBONES: dict[str, Backbone] = {}   # filled by @register below, in the order shown everywhere
MOBILENET_IMAGENET_SIZES = (96, 128, 160, 192, 224)


def register(name: str, default_size: int, min_size: int, preprocess: str, pooling: str,
             weights_file: str = ""):
    """Add a backbone to the registry: the decorated function turns the preprocessed input into a feature map."""
    def add(build: Callable) -> Callable:
        BACKBONES[name] = Backbone(name, default_size, min_size, preprocess, pooling, bool(weights_file),
                                   weights_file, build)
        return build
    return add


def get_backbone(name: str) -> Backbone:
    if name not in BACKBONES:
        raise ModelConfigError(f"unknown backbone '{name}'; choose one of: {', '.join(BACKBONES)}")
    return BACKBONES[name]


# ---------------------------------------------------------------- our own conv stacks
def _conv_bn(x, filters, name):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


@register("custom_cnn", 48, 16, "unit", "flatten")
def custom_cnn(x, size, weights):
    """The seed notebooks' net: 6 conv (ReLU), 3 BatchNorm, 3 max-pool, 3 dropout (+ 2 dense in the head)."""
    for i, f in enumerate((64, 128, 256), start=1):
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"block{i}_conv1")(x)
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"block{i}_conv2")(x)
        x = layers.BatchNormalization(name=f"block{i}_bn")(x)
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
        x = layers.Dropout(0.25, name=f"block{i}_drop")(x)
    return x


def vgg_stages(x, widths):
    """Four stages of two 3x3 conv + BatchNorm, max-pool between, dropout growing with depth."""
    for i, f in enumerate(widths, start=1):
        x = _conv_bn(x, f, f"stage{i}a")
        x = _conv_bn(x, f, f"stage{i}b")
        x = layers.MaxPooling2D(2, name=f"stage{i}_pool")(x)
        if i >= 2:
            x = layers.Dropout(0.1 * (i - 1), name=f"stage{i}_drop")(x)
    return x


@register("fer_vgg", 48, 24, "unit", "flatten")
def fer_vgg(x, size, weights):
    """Our default: a VGG-style stack sized for 48x48 faces and a CPU budget (widths 32-64-128-256, ~1.2 M
    parameters); VGG-style nets hold the published FER2013 record."""
    return vgg_stages(x, (32, 64, 128, 256))


@register("fer_vgg_wide", 48, 24, "unit", "flatten")
def fer_vgg_wide(x, size, weights):
    """fer_vgg with wider first stages (48-96-192-256: about twice the FLOPs); the last stays at 256 to keep
    the file small. README's Results say how it compared."""
    return vgg_stages(x, (48, 96, 192, 256))


def _register_application(name: str, app_name: str, preprocess: str, weights_file: str) -> None:
    """A keras.applications base in the registry (the application is looked up only when a model is built)."""
    def build(x, size, weights):
        base = _imagenet_base(BACKBONES[name], getattr(keras.applications, app_name), size, weights)
        base.name = "base"   # a stable name, so fine-tuning and transfer find it (Keras 3: .name, not ._name)
        return base(x)
    register(name, 96, 32, preprocess, "avg", weights_file)(build)


_register_application("vgg16", "VGG16", "caffe", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
_register_application("vgg19", "VGG19", "caffe", "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
_register_application("resnet50v2", "ResNet50V2", "tf", "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5")
_register_application("mobilenetv2", "MobileNetV2", "tf",
                      "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5")
_register_application("efficientnetb0", "EfficientNetB0", "raw", "efficientnetb0_notop.h5")


# ---------------------------------------------------------------- ImageNet weights
def keras_cache_file(bb: Backbone, size: int) -> Path:
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    return cache / bb.weights_file.format(size=size if size in MOBILENET_IMAGENET_SIZES else 224)


def _imagenet_base(bb: Backbone, app: Callable, size: int, weights):
    """keras.applications base; `weights` is 'imagenet', None or a file path."""
    kwargs = dict(include_top=False, input_shape=(size, size, 3))
    if bb.name == "mobilenetv2" and weights == "imagenet" and size not in MOBILENET_IMAGENET_SIZES:
        raise ModelConfigError(f"MobileNetV2 ImageNet weights exist for input sizes {MOBILENET_IMAGENET_SIZES}; "
                               f"{size} was asked. Pick one of those sizes, or weights none.")
    if weights != "imagenet":
        return app(weights=weights, **kwargs)
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)   # fail fast when offline instead of hanging on a download
    try:
        return app(weights="imagenet", **kwargs)
    except Exception:  # the download failed (offline, proxy, ...): say what to do instead
        target = keras_cache_file(bb, size)
        raise WeightsError(
            f"could not download the ImageNet weights for {bb.name} (no internet connection?). "
            f"Place the file '{target.name}' in {target.parent}/ (download it on a machine with internet "
            f"from keras-applications' releases), or choose that file as the weights file, or train without "
            f"pre-trained weights."
        ) from None
    finally:
        socket.setdefaulttimeout(old_timeout)


# ---------------------------------------------------------------- assembly
def augmentation_layers(seed: int, photometric: bool = False) -> keras.Sequential:
    """Flip, small rotation, zoom, shift and contrast: what a webcam face varies by.

    Nearest-neighbour resampling on purpose: three bilinear resamplings blur every training
    face, and BatchNorm's running statistics then no longer fit sharp faces at inference
    (seen here: FER2013 validation accuracy stuck near 20% while training accuracy climbed).
    """
    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        *photometric_layers(seed + 10, photometric),
        layers.RandomRotation(0.04, fill_mode="reflect", interpolation="nearest", seed=seed + 1),
        layers.RandomZoom((-0.1, 0.1), fill_mode="reflect", interpolation="nearest", seed=seed + 2),
        layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", interpolation="nearest", seed=seed + 3),
        layers.RandomContrast(0.2, seed=seed + 4),
    ], name="augmentation")


def photometric_layers(seed: int, on: bool) -> list:
    """Lighting and occlusion: a face in a film still or a web photo is lit differently from FER2013's and is
    often partly covered (a hand, hair, glasses). No blur: blurred training faces unfit BatchNorm for sharp ones."""
    if not on:
        return []
    return [layers.RandomBrightness(0.2, seed=seed),
            layers.RandomErasing(factor=0.5, scale=(0.02, 0.12), seed=seed + 1)]


def build_features(backbone: str, image_size: int, input_size: int, weights=None) -> keras.Model:
    """Preprocessing + base + pooling, as one sub-model named 'features'."""
    bb = get_backbone(backbone)
    inp = keras.Input((image_size, image_size, 1), name="pixels")
    x = inp
    if input_size != image_size:
        x = layers.Resizing(input_size, input_size, interpolation="bilinear", name="resize")(x)
    if bb.imagenet:
        x = GrayToRGB(name="gray_to_rgb")(x)
    x = BackbonePreprocess(bb.preprocess, name="preprocess")(x)
    x = bb.build(x, input_size, weights)
    x = layers.Flatten(name="flatten")(x) if bb.pooling == "flatten" else layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, x, name="features")


def build_head(num_features: int, num_classes: int, units: int, dropout: float, l2: float) -> keras.Sequential:
    reg = keras.regularizers.L2(l2) if l2 else None
    return keras.Sequential([
        keras.Input((num_features,)),
        layers.Dropout(dropout / 2),
        layers.Dense(units, use_bias=False, kernel_regularizer=reg),
        layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.Dropout(dropout),
        # float32 output even under mixed precision: bf16 probabilities would round the loss
        layers.Dense(num_classes, activation="softmax", kernel_regularizer=reg, name="probabilities",
                     dtype="float32"),
    ], name="head")


def assemble(features: keras.Model, head: keras.Model, image_size: int, augment: bool, seed: int,
             photometric: bool = False) -> keras.Model:
    inp = keras.Input((image_size, image_size, 1), name="pixels")
    x = augmentation_layers(seed, photometric)(inp) if augment else inp
    out = head(features(x))
    return keras.Model(inp, out, name="emotion_model")


def base_layers(features: keras.Model) -> list:
    """The layers that carry learned weights in the base (the part frozen, fine-tuned or transferred)."""
    try:
        return features.get_layer("base").layers
    except ValueError:
        return [l for l in features.layers if l.weights]


def freeze_base(features: keras.Model) -> None:
    features.trainable = False


def unfreeze_top(features: keras.Model, n_layers: int) -> int:
    """Unfreeze the top n layers of the base (-1 = all), keeping BatchNorm frozen (keras-io recipe).

    Returns how many layers became trainable.
    """
    blocks = base_layers(features)
    if n_layers == -1 or n_layers > len(blocks):
        if n_layers > len(blocks):
            raise ModelConfigError(f"fine-tune depth {n_layers} is beyond the model: its base has "
                                   f"{len(blocks)} layers. Use at most {len(blocks)}, or -1 for all.")
        n_layers = len(blocks)
    features.trainable = True
    try:
        features.get_layer("base").trainable = True
    except ValueError:
        pass
    chosen = set(id(l) for l in blocks[len(blocks) - n_layers:])
    count = 0
    for layer in all_layers(features):
        if layer is features or isinstance(layer, keras.Model):
            continue
        train = id(layer) in chosen and not isinstance(layer, layers.BatchNormalization)
        layer.trainable = train
        count += int(train and bool(layer.weights))
    return count


def shorten_batchnorm_memory(model, steps_per_epoch: int) -> float | None:
    """Let BatchNorm's moving averages follow the weights within about a quarter of an epoch.

    Keras' momentum 0.99 averages over ~100 steps (MobileNetV2's 0.999 over ~1,000). A small dataset
    or a short time budget ends training before the averages catch up with the weights, and the
    model then fails at inference while its training accuracy looks fine (seen here: 6.8% on CK+
    after an 8-second budget; 14% at inference against 77% in training on 680 faces at batch 64).
    Long runs keep the default: FER2013 at batch 64 (449 steps an epoch) is unchanged.
    Returns the momentum set, or None where no layer needed it.
    """
    target = min(0.99, max(0.9, 1.0 - 4.0 / max(1, steps_per_epoch)))
    changed = 0
    for layer in all_layers(model):
        if isinstance(layer, layers.BatchNormalization) and layer.momentum > target + 1e-9:
            layer.momentum = target   # read by BatchNormalization.call, so set before fit traces it
            changed += 1
    return round(target, 4) if changed else None


def all_layers(model):
    """Every layer, nested models' layers included (the features sub-model, the head)."""
    for l in model.layers:
        yield l
        if isinstance(l, keras.Model):
            yield from all_layers(l)


def resolve_input_size(backbone: str, input_size: int) -> int:
    bb = get_backbone(backbone)
    size = input_size or bb.default_size
    if size < bb.min_size:
        raise ModelConfigError(f"input size {size} is too small for {backbone}: it needs at least "
                               f"{bb.min_size}x{bb.min_size} (its pooling stages would shrink the face to nothing).")
    if size > MAX_INPUT_SIZE:
        raise ModelConfigError(f"input size {size} is larger than this app supports ({MAX_INPUT_SIZE}); 48-224 are "
                               "sensible.")
    return size


def build_model(backbone: str, num_classes: int, *, image_size: int = 48, input_size: int = 0,
                weights: str = "none", head_units: int = 256, dropout: float = 0.5, l2: float = 1e-4,
                augment: bool = True, photometric: bool = False, seed: int = 1337):
    """-> (model, features, head). weights: 'imagenet', 'none' or a weights file path ('run:' is handled by
    training)."""
    bb = get_backbone(backbone)
    size = resolve_input_size(backbone, input_size)
    if weights == "imagenet" and not bb.imagenet:
        raise ModelConfigError(f"{backbone} has no ImageNet weights; choose weights none, or an earlier run.")
    w = None if weights in ("none", "", None) else weights
    w_file = None
    if w and w != "imagenet":
        if not Path(w).is_file():
            raise WeightsError(f"weights file not found: {w}")
        if not bb.imagenet:   # our own nets: the file holds the whole features sub-model
            w_file, w = w, None
    keras.utils.set_random_seed(seed)
    features = build_features(backbone, image_size, size, w)
    if w_file:
        features.load_weights(w_file)
    head = build_head(features.output.shape[-1], num_classes, head_units, dropout, l2)
    return assemble(features, head, image_size, augment, seed, photometric), features, head
