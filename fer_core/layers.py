"""Small serializable layers that put each backbone's preprocessing inside the model.

With preprocessing inside, every stored model takes the same input (grayscale
pixels 0-255, shape (S, S, 1)) and loads in Keras safe mode, which refuses Lambda layers.
"""

from .kerasenv import keras
from keras import ops

# ImageNet means in BGR order, as keras.applications' "caffe" preprocess_input uses them.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="fer_core")
class GrayToRGB(keras.layers.Layer):
    """(S, S, 1) -> (S, S, 3) by repeating the channel; ImageNet backbones expect three."""

    def call(self, x):
        return ops.repeat(x, 3, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)


@keras.saving.register_keras_serializable(package="fer_core")
class BackbonePreprocess(keras.layers.Layer):
    """keras.applications' preprocess_input, as a layer, for pixels in 0..255.

    mode: "caffe" (VGG: BGR, mean subtracted), "tf" (-1..1: ResNetV2, MobileNetV2),
    "raw" (EfficientNet rescales inside the model), "unit" (0..1: our own nets).
    """

    def __init__(self, mode: str = "unit", **kwargs):
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, x):
        x = ops.cast(x, "float32")
        if self.mode == "caffe":
            x = ops.flip(x, axis=-1) if x.shape[-1] == 3 else x
            mean = ops.convert_to_tensor(_CAFFE_MEAN_BGR if x.shape[-1] == 3 else (sum(_CAFFE_MEAN_BGR) / 3,),
                                         dtype="float32")
            return x - mean
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "unit":
            return x / 255.0
        return x

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="fer_core")
class MatchSharpness(keras.layers.Layer):
    """At inference only, blurs input faces (Gaussian, sigma pixels) to the sharpness of the training faces.

    Why: a model trained on smoothed faces (the shared FER2013 copy's Training_* images are blurred with
    sigma ~3 px, its test images are sharp) sees sharp faces as out of domain; blurring them at inference
    puts them back in. During training the layer passes images through unchanged. sigma is a
    non-trainable weight, so it can be chosen on the validation set after training without a rebuild.
    """

    RADIUS = 12   # kernel half-width: enough for sigma up to 4

    def __init__(self, sigma: float = 0.0, min_gradient: float = 0.0, **kwargs):
        """min_gradient: only faces whose mean pixel gradient is above it are blurred (0 = every face), so
        a face already as smooth as the training faces (e.g. a validation part drawn from them) is left alone."""
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.initial_sigma = float(sigma)
        self.min_gradient = float(min_gradient)

    def build(self, input_shape):
        self.sigma = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.initial_sigma),
                                     trainable=False, name="sigma")

    def _kernel(self):
        t = ops.arange(-self.RADIUS, self.RADIUS + 1, dtype="float32")
        s = ops.maximum(ops.cast(self.sigma, "float32"), 1e-3)
        g = ops.exp(-(t * t) / (2.0 * s * s))
        delta = ops.cast(ops.equal(t, 0.0), "float32")
        g = ops.where(self.sigma > 0.05, g, delta)
        return g / ops.sum(g)

    def call(self, x, training=None):
        if training:
            return x
        x = ops.cast(x, "float32")
        g = self._kernel()
        r = self.RADIUS
        y = ops.pad(x, [[0, 0], [r, r], [r, r], [0, 0]], mode="reflect")
        y = ops.depthwise_conv(y, ops.reshape(g, (2 * r + 1, 1, 1, 1)), padding="valid")
        y = ops.depthwise_conv(y, ops.reshape(g, (1, 2 * r + 1, 1, 1)), padding="valid")
        if not self.min_gradient:
            return y
        gradient = ops.mean(ops.abs(x[:, :, 1:, :] - x[:, :, :-1, :]), axis=(1, 2, 3))
        sharp = ops.reshape(gradient > self.min_gradient, (-1, 1, 1, 1))
        return ops.where(sharp, y, x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "sigma": self.initial_sigma, "min_gradient": self.min_gradient}


def match_sharpness_layer(model):
    """The model's MatchSharpness layer, or None for a model trained without --match-sharpness."""
    return next((l for l in model.layers if isinstance(l, MatchSharpness)), None)
