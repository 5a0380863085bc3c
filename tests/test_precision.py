"""`auto` precision: bfloat16 only where the hardware computes it natively, float32 otherwise; the choice and
its reason are recorded in the run and shown on the Train form. The CPU's flags are injected to test both
branches on any machine."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from fer_core.config import TrainConfig
from fer_core.train import precision
from fer_core.train.precision import choose

pytestmark = pytest.mark.slow

ZEN3 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n"
        "flags\t\t: fpu sse2 avx avx2 fma bmi2 sha_ni\n")
ZEN5 = ("processor\t: 0\nmodel name\t: AMD EPYC 9B45\n"
        "flags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16 avx512_fp16\n")
SAPPHIRE = "model name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: avx2 avx512f amx_tile amx_bf16 amx_int8\n"


def test_cpu_flags_and_name_are_read_from_cpuinfo():
    assert "avx2" in precision.cpu_flags(ZEN3) and "avx512_bf16" not in precision.cpu_flags(ZEN3)
    assert "avx512_bf16" in precision.cpu_flags(ZEN5)
    assert precision.cpu_name(ZEN3) == "AMD EPYC 7B13 64-Core Processor"
    assert precision.cpu_flags("") == set()


@pytest.mark.parametrize("cpuinfo, used", [(ZEN3, "float32"), (ZEN5, "mixed_bfloat16"),
                                           (SAPPHIRE, "mixed_bfloat16")])
def test_auto_uses_bfloat16_only_with_bf16_instructions(cpuinfo, used):
    c = choose("auto", flags=precision.cpu_flags(cpuinfo), device=None, cpu=precision.cpu_name(cpuinfo))
    assert c.used == used and c.requested == "auto"
    assert c.device == precision.cpu_name(cpuinfo)
    if used == "float32":
        assert "no bf16 instructions" in c.reason
    else:
        assert any(f in c.reason for f in precision.BF16_CPU_FLAGS)


@pytest.mark.parametrize("name", ["ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"])
@pytest.mark.parametrize("cap, used", [("AVX2", "float32"), ("avx512_core", "float32"), ("AVX512_CORE_BF16",
                                        "mixed_bfloat16"), ("AVX512_CORE_FP16", "mixed_bfloat16"),
                                       ("", "mixed_bfloat16")])
def test_auto_honours_a_onednn_cap_that_takes_the_bf16_instructions_away(cap, used, name):
    """ONEDNN_MAX_CPU_ISA=AVX2 makes a bf16 CPU compute as an AVX2-only one (TensorFlow then refuses bf16
    convolutions outright): auto must train in float32 there."""
    c = choose("auto", flags=precision.cpu_flags(ZEN5), device=None, environ={name: cap})
    assert c.used == used
    if used == "float32":
        assert f"ONEDNN_MAX_CPU_ISA={cap.upper()}" in c.reason


def test_an_explicit_precision_is_kept_whatever_the_cpu():
    assert choose("mixed_bfloat16", flags={"avx2"}, device=None).used == "mixed_bfloat16"
    assert choose("float32", flags={"avx512_bf16"}, device=None).used == "float32"


def test_accelerators_decide_by_their_own_support():
    assert choose("auto", flags={"avx2"}, device=("TPU v4", True)).used == "mixed_bfloat16"
    assert choose("auto", flags={"avx512_bf16"}, device=("GPU Tesla T4", False)).used == "float32"


def test_auto_is_the_default_everywhere():
    from fer_core.train.presets import PRESETS
    assert TrainConfig().precision == "auto"
    assert all(p.options.get("precision", "auto") == "auto" for group in PRESETS.values() for p in group)


def test_preset_note_names_the_measured_precision_and_what_differs():
    from fer_core.train.presets import timing_note
    fig = {"precision": "mixed_bfloat16", "device": "AMD EPYC Zen 5 (AVX512-BF16), one core"}
    assert "on this machine too" in timing_note(fig, "mixed_bfloat16", False)
    assert "take longer" in timing_note(fig, "float32", False)
    assert "fewer epochs" in timing_note(fig, "float32", True)


def _tiny_folder(root: Path, n=12) -> Path:
    import cv2
    rng = np.random.default_rng(1)
    for c in ("happy", "sad"):
        (root / c).mkdir(parents=True)
        for j in range(n):
            cv2.imwrite(str(root / c / f"{j}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
    return root


@pytest.mark.parametrize("cpuinfo, used", [(ZEN3, "float32"), (ZEN5, "mixed_bfloat16")])
def test_a_run_trains_in_the_chosen_precision_and_records_why(tmp_path, monkeypatch, cpuinfo, used):
    from fer_core.model.kerasenv import keras
    from fer_core.model.saving import load_model_safe
    from fer_core.train.loop import train
    flags = precision.cpu_flags(cpuinfo)
    monkeypatch.setattr(precision, "cpu_flags", lambda text=None: flags)       # this CPU, as far as training knows
    monkeypatch.setattr(precision, "accelerator", lambda: None)
    cfg = TrainConfig(data=str(_tiny_folder(tmp_path / "data")), backbone="custom_cnn", input_size=32, epochs=1,
                      batch_size=8, runs_dir=str(tmp_path / "runs"), name="precision", split="random:0.25")
    try:
        run_dir = train(cfg)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "completed", info.get("error")
    assert info["config"]["precision"] == "auto"
    assert info["precision"]["used"] == used and info["precision"]["reason"].startswith(f"auto: {used}")
    model = load_model_safe(run_dir / "model.keras")
    from fer_core.model.backbones import all_layers
    compute = {layer.dtype_policy.compute_dtype for layer in all_layers(model) if layer.weights}
    assert ("bfloat16" in compute) == (used == "mixed_bfloat16"), compute
    assert f"precision: auto: {used}" in (run_dir / "train.log").read_text()


@pytest.mark.parametrize("cpuinfo, used", [(ZEN3, "float32"), (ZEN5, "mixed_bfloat16")])
def test_train_form_shows_the_choice_and_the_presets_say_what_they_were_measured_with(monkeypatch, ckplus,
                                                                                      cpuinfo, used):
    from streamlit.testing.v1 import AppTest

    from fer_core.runs import defaults
    flags = precision.cpu_flags(cpuinfo)
    monkeypatch.setattr(precision, "cpu_flags", lambda text=None: flags)
    monkeypatch.setattr(precision, "accelerator", lambda: None)
    monkeypatch.setenv("FER_RUNS_DIR", str(defaults.RUNS_DIR))     # the committed runs the presets quote (read only)
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "streamlit_app.py"), default_timeout=240)
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    at.text_input(key="data").set_value(str(ckplus)).run()
    assert not at.exception, at.exception

    def notes():
        return [c.value for c in at.caption if "measured in" in c.value]
    assert len(notes()) == 2                                         # one per preset, shown at once
    deadline = time.monotonic() + 240     # the timing runs in the background: the page never waits for it
    while not all("timed here" in n for n in notes()) and time.monotonic() < deadline:
        assert all("being measured and shows when you next use the form" in n for n in notes()), notes()
        time.sleep(2)
        at.run()                                                     # the user uses the form again
    captions = [c.value for c in at.caption]
    assert any(c.startswith(f"auto: {used}") for c in captions), captions
    notes = notes()
    from fer_core.data.datasets import load_dataset
    from fer_core.data.splits import training_faces
    from fer_core.train import presets
    faces = training_faces(load_dataset(str(ckplus)).summary())
    for preset, note in zip(presets.PRESETS["small"], notes):      # CK+: recipes counted in epochs
        assert "measured in mixed_bfloat16 on AMD EPYC" in note
        assert f"training steps timed here in {used}" in note, note  # the time is this machine's, in its precision
        minutes = presets.minutes_here(preset, faces, used)            # the same timing (taken once per process)
        assert minutes and note.startswith(f"{preset.what}: ~{max(1, round(minutes))} min"), (minutes, note)
