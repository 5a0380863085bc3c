"""What a face costs the model: `python -m bench.model_cost [RUN_DIR] [--quick]`.

Per-crop speed is arithmetic bound once the batch is large, so this prints the run's multiply-adds per face
(its convolution and dense layers), crops/s of its LiteRT copies (the exported model.tflite, and float32 and
float16 conversions made here), and the same net at narrower widths with random weights (float32 LiteRT, the
same conversion), which is what a cheaper model would buy before any training. Run it under
`python -m bench.as_avx2 --` to see an AVX2-only CPU: there int8 has no VNNI to run on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.common import check_run, parser, print_machine
from bench.throughput import crops_per_second, load_crops

WIDTHS = ((32, 64, 128, 256), (24, 48, 96, 192), (16, 32, 64, 128))


def multiply_adds(model) -> int:
    """Per face: every Conv2D's kernel size times its output positions, plus every Dense's kernel size."""
    from fer_core.model.backbones import all_layers
    total = 0
    for layer in all_layers(model):
        if type(layer).__name__ == "Conv2D":
            total += int(np.prod(layer.kernel.shape)) * int(np.prod(layer.output.shape[1:3]))
        elif type(layer).__name__ == "Dense":
            total += int(np.prod(layer.kernel.shape))
    return total


def vgg_at(widths: tuple[int, ...], classes: int = 7):
    """fer_vgg's layout (fer_core.model.backbones) at other widths, random weights, as a run's model is built."""
    from fer_core.model.backbones import build_head, vgg_stages
    from fer_core.model.kerasenv import keras
    from fer_core.model.layers import BackbonePreprocess
    inp = keras.Input((48, 48, 1), name="pixels")
    x = vgg_stages(BackbonePreprocess("unit", name="preprocess")(inp), widths)
    x = keras.layers.Flatten(name="flatten")(x)
    features = keras.Model(inp, x, name="features")
    head = build_head(features.output_shape[-1], classes, 256, 0.4, 1e-4)
    return keras.Model(inp, head(features(inp)), name="emotion_model")


def litert_rate(flatbuffer: bytes, x: np.ndarray, seconds: float) -> float:
    import tempfile

    from fer_core.model.predict import make_tflite_fn
    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(flatbuffer)
        f.flush()
        fn = make_tflite_fn(Path(f.name))
        return crops_per_second(lambda a: np.concatenate([fn(a[i:i + 256]) for i in range(0, len(a), 256)]),
                                x, seconds)


def line(name: str, macs: int, rate: float) -> str:
    return f"{name:44s} {macs / 1e6:8.1f} M {rate:12,.0f} {rate * macs / 1e9:10.0f}"


def main(argv=None) -> int:
    a = parser(__doc__.splitlines()[0]).parse_args(argv)
    run = Path(check_run(a.run_dir))
    from fer_core.model.saving import load_model_safe
    from fer_core.serve.export import convert_to_tflite, float32_copy
    print_machine()
    x, seconds = load_crops(512 if a.quick else 2048), 1.0 if a.quick else 4.0
    model = float32_copy(load_model_safe(run / "model.keras"))
    macs = multiply_adds(model)
    print(f"model: {run}; {len(x)} real 48x48 crops (FER2013 PrivateTest), batches of 256")
    print(f"{'LiteRT engine':44s} {'mult-adds':>10s} {'crops/s':>12s} {'G mult-add/s':>10s}")
    if (run / "model.tflite").is_file():
        print(line("the run's model.tflite (as exported)", macs, litert_rate((run / "model.tflite").read_bytes(),
                                                                               x, seconds)))
    for quantize in ("none", "float16"):
        name = f"the run's model, {'float32' if quantize == 'none' else quantize} conversion"
        print(line(name, macs, litert_rate(convert_to_tflite(model, quantize), x, seconds)))
    for widths in WIDTHS[:1 if a.quick else None]:
        net = vgg_at(widths)
        print(line(f"fer_vgg at {'-'.join(map(str, widths))}, random, float32", multiply_adds(net),
                   litert_rate(convert_to_tflite(net), x, seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
