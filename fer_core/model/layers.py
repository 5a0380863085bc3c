"""Small serializable layers that put each backbone's preprocessing inside the model.

With preprocessing inside, every stored model takes the same input (grayscale
pixels 0-255, shape (S, S, 1)) and loads in Keras safe mode, which refuses Lambda layers.
"""

from keras import ops

from fer_core.model.kerasenv import keras

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
